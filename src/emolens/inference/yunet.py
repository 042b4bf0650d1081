"""YuNet, the default face detector: a 75k-parameter CNN with 5 landmarks per face, run by ONNX Runtime.

The model (``assets/yunet/yunet_s_dynamic.onnx``, Apache-2.0, licence beside it) ships inside the
package. It takes a BGR image of any size whose sides are multiples of 32 (we pad) and gives, per
stride 8/16/32 and per grid cell, a class and an objectness score (already sigmoid), a box
``(dx, dy, log w, log h)`` and 5 landmarks, all in units of the stride. Decoding follows OpenCV's
``FaceDetectorYN`` exactly (score = sqrt(cls * obj)); NMS is OpenCV's ``dnn.NMSBoxes``. Running it
in ONNX Runtime measured 2.4x faster than ``cv2.FaceDetectorYN`` on the same model here
(``bench/detectors.py``), and it needs no fixed input size.

Landmarks come out as ``left_eye``, ``right_eye``, ``nose``, ``mouth_left``, ``mouth_right``, named
as seen in the image (``left_eye`` is the one with the smaller x: the subject's right eye).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from .. import imgops
from ..errors import InvalidInput
from .detect import Detection, calibrate_box, register_detector
from .onnx_model import _open_session

STRIDES = (8, 16, 32)
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
"""YuNet's landmark order, named as seen in the image (left = smaller x)."""
SMALL_SIDE = 160
"""Images whose longer side is at most this many pixels (dataset face crops) are padded and enlarged
before detection: YuNet needs some context around a face and finds few faces under ~20 px."""
SMALL_PAD = 0.3
SMALL_TARGET = 224


def model_path() -> Path:
    """The packaged YuNet model."""
    return Path(__file__).resolve().parents[1] / "assets" / "yunet" / "yunet_s_dynamic.onnx"


@register_detector(
    "yunet",
    description="YuNet CNN (WIDER FACE, Apache-2.0) with 5 landmarks, ONNX Runtime; the default",
)
class YuNetDetector:
    """YuNet face detector.

    ``score_threshold``: minimum face score (0.8: all 43 annotated faces of the media photos and no
    box on the dog and cartoon photos; 0.7 takes a dog for a face). ``nms_threshold``: IoU above which
    the weaker of two boxes is dropped. ``max_side``: larger images are shrunk so their longer side is
    at most this before detection (speed; faces then need >= ~12 px at that scale; 0 = never).
    ``threads``: ONNX Runtime intra-op threads (0 = its default). Raises
    :class:`~emolens.errors.InvalidInput` for settings out of range and
    :class:`~emolens.errors.ModelFormatError` when the model file cannot be loaded (the same session
    settings and errors as the emotion and keypoint models).
    """

    # raw YuNet box -> common (dlib) convention, fitted on the 43 boxes of the dlib XML files
    BOX_SCALE: ClassVar[float] = 1.17  # YuNet's square side is 1.17x the annotated box (median of 43)
    BOX_SHIFT: ClassVar[float] = 0.06  # and its centre 0.06 side above the annotated centre

    def __init__(
        self,
        score_threshold: float = 0.8,
        nms_threshold: float = 0.3,
        max_side: int = 1280,
        threads: int = 0,
        providers: Sequence[str] | None = None,
        path: str | Path | None = None,
    ) -> None:
        if not 0.0 < score_threshold < 1.0 or not 0.0 < nms_threshold <= 1.0:
            raise InvalidInput("yunet needs 0 < score_threshold < 1 and 0 < nms_threshold <= 1")
        if max_side < 0 or threads < 0:
            raise InvalidInput("yunet needs max_side >= 0 and threads >= 0")
        self.name = "yunet"
        self.score_threshold, self.nms_threshold, self.max_side = score_threshold, nms_threshold, max_side
        file = Path(path) if path is not None else model_path()
        self._session = _open_session(file, threads, providers, optimize=True)
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB (or gray) ``uint8`` image, boxes in its pixels, each with 5 landmarks."""
        bgr = _to_bgr(rgb)
        h, w = bgr.shape[:2]
        if h < 1 or w < 1:
            return []
        if max(h, w) <= SMALL_SIDE:
            img, f, (ox, oy) = _enlarge_small(bgr)
        else:
            f = min(1.0, self.max_side / max(h, w)) if self.max_side > 0 else 1.0
            img = bgr if f >= 1.0 else imgops.resize(bgr, (max(1, round(w * f)), max(1, round(h * f))), imgops.AREA)
            ox = oy = 0
        raw = self._raw(img)
        out = []
        for x, y, bw, bh, score, marks in raw:
            box_raw = ((x - ox) / f, (y - oy) / f, bw / f, bh / f)
            box = calibrate_box(box_raw, self.BOX_SCALE, self.BOX_SHIFT, (h, w))
            if box[2] <= 0 or box[3] <= 0:
                continue
            lms = {n: ((px - ox) / f, (py - oy) / f) for n, (px, py) in zip(LANDMARK_NAMES, marks, strict=True)}
            out.append(Detection(box, score, lms))
        return out

    def _raw(self, bgr: np.ndarray) -> list[tuple[float, float, float, float, float, list[tuple[float, float]]]]:
        """(x, y, w, h, score, landmarks) in ``bgr``'s pixels after NMS."""
        h, w = bgr.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        x = np.zeros((1, 3, ph, pw), np.float32)
        x[0, :, :h, :w] = bgr.transpose(2, 0, 1)
        outs = dict(zip(self._outputs, self._session.run(None, {self._input: x}), strict=True))
        boxes: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        kps: list[np.ndarray] = []
        for s in STRIDES:
            cols = pw // s
            score = np.sqrt(np.clip(outs[f"cls_{s}"][0, :, 0], 0, 1) * np.clip(outs[f"obj_{s}"][0, :, 0], 0, 1))
            keep = np.nonzero(score >= self.score_threshold)[0]
            if keep.size == 0:
                continue
            r, c = np.divmod(keep, cols)
            b = outs[f"bbox_{s}"][0, keep]
            cx, cy = (c + b[:, 0]) * s, (r + b[:, 1]) * s
            bw, bh = np.exp(b[:, 2]) * s, np.exp(b[:, 3]) * s
            boxes.append(np.stack([cx - bw / 2, cy - bh / 2, bw, bh], 1))
            scores.append(score[keep])
            k = outs[f"kps_{s}"][0, keep].reshape(-1, 5, 2)
            kps.append(np.stack([(k[:, :, 0] + c[:, None]) * s, (k[:, :, 1] + r[:, None]) * s], 2))
        if not boxes:
            return []
        all_boxes, all_scores, all_kps = np.concatenate(boxes), np.concatenate(scores), np.concatenate(kps)
        finite = np.isfinite(all_boxes).all(1) & np.isfinite(all_kps).all((1, 2))
        all_boxes, all_scores, all_kps = all_boxes[finite], all_scores[finite], all_kps[finite]
        idx = imgops.nms(all_boxes, all_scores, self.score_threshold, self.nms_threshold)
        order = sorted(idx.tolist(), key=lambda i: -all_scores[i])
        return [
            (*(float(v) for v in all_boxes[i]), float(all_scores[i]),
             [(float(px), float(py)) for px, py in all_kps[i]])  # type: ignore[misc]
            for i in order
        ]


def _to_bgr(img: np.ndarray) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise InvalidInput("a detector needs a uint8 image array")
    if img.ndim == 2:
        return imgops.gray_to_rgb(img)
    if img.ndim == 3 and img.shape[2] == 3:
        return np.ascontiguousarray(img[:, :, ::-1])
    raise InvalidInput(f"a detector needs an RGB (H, W, 3) or gray (H, W) image, got shape {img.shape}")


def _enlarge_small(bgr: np.ndarray) -> tuple[np.ndarray, float, tuple[float, float]]:
    """A small image (a face crop) padded by :data:`SMALL_PAD` of its side with its edge pixels and
    enlarged so its longer side is :data:`SMALL_TARGET`; returns the image, the scale and the offset
    of the original's origin in it (coordinates map back as ``(x - ox) / f``)."""
    h, w = bgr.shape[:2]
    p = max(1, math.ceil(SMALL_PAD * max(h, w)))
    padded = imgops.pad_replicate(bgr, p, p, p, p)
    f = SMALL_TARGET / max(padded.shape[:2])
    big = imgops.resize(padded, (round(padded.shape[1] * f), round(padded.shape[0] * f)), imgops.CUBIC)
    return big, f, (p * f, p * f)
