"""Facial keypoints with an emolens ONNX keypoint model, run by ONNX Runtime (no torch).

A keypoint model (metadata ``task="keypoints"``, ``labels`` = point names) maps a face framed as in
its training data (a square about 1.5 times the face, eyes roughly level) to unit coordinates
``u = (x + 0.5) / width``, ``v = (y + 0.5) / height``, one ``u, v`` pair per point.

:meth:`LandmarkModel.locate` finds the points of a face in a whole image in two passes: a first
look through a square frame around the detector's box, then a second through a frame turned so
the eyes are level and placed where the training crops sat relative to faces of this shape
(``extra["framing"]``, learned at training time by :func:`fit_framing`; models without it put the
first points on the average training face, ``extra["mean_shape"]``). Both frames are similarity warps
(:func:`frame_matrix`), so points map back to image pixels exactly. Point names follow the model:
for the shipped Kaggle-15 model, ``left_*`` is the **subject's** left (on the right of the image).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import imgops
from ..errors import InvalidInput, ModelFormatError
from ..modelmeta import ModelMeta
from ..preprocess import normalize, prepare_uint8, to_channels
from . import shipped
from .onnx_model import _FLOAT_TYPES, _dim, _open_session, _session_meta

INIT_SCALE = 1.6
"""Side of the first-pass frame, in detector-box sides. The training crops are 1.5 times the
68-landmark box, which is a little larger than the detectors' brows-to-chin box."""
AREA_BELOW = 0.75
"""Frames smaller than this fraction of the face's pixels shrink the face with area averaging first."""
LOOKS = 2
"""Looks per face in :meth:`LandmarkModel.locate`: one through the box's frame, one through the refined frame.
With YuNet's boxes a third look no longer pays (400 test faces, 2x upscaled in a larger image, found by YuNet:
NME 0.0539 / 0.0541 for 2 / 3 looks upright, 0.0515 / 0.0516 turned 20 deg; one look: 0.0554 / 0.0593), and
each look costs as much as the other two stages of a face."""
MAX_FIT_ROLL = 60.0
"""A first pass whose eye line is tilted more than this is not trusted to turn the second frame."""

Matrix = np.ndarray  # float64 (2, 3): image pixels -> frame pixels


@dataclass(frozen=True)
class FaceLandmarks:
    """The points of one face in image pixels, ``names`` in model order, and the head ``roll`` in
    degrees (positive = counter-clockwise on screen: the eye on the image's right is higher)."""

    names: tuple[str, ...]
    points: np.ndarray  # float64 (P, 2)
    roll: float

    def as_dict(self) -> dict[str, tuple[float, float]]:
        return {n: (float(x), float(y)) for n, (x, y) in zip(self.names, self.points, strict=True)}

    def eyes(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(image-left eye, image-right eye) centres."""
        return eye_centres(self.points, self.names)


def eye_centres(points: np.ndarray, names: Sequence[str]) -> tuple[tuple[float, float], tuple[float, float]]:
    """The two eye centres (image-left first) from Kaggle names or iBUG-68 points."""
    idx = {n: i for i, n in enumerate(names)}
    if "left_eye_center" in idx and "right_eye_center" in idx:
        a, b = points[idx["left_eye_center"]], points[idx["right_eye_center"]]
    elif len(names) == 68:
        a, b = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    else:
        raise ModelFormatError(f"keypoint model has no eye centres among its points {list(names)[:6]}...")
    (x0, y0), (x1, y1) = sorted([(float(a[0]), float(a[1])), (float(b[0]), float(b[1]))])
    return (x0, y0), (x1, y1)


def roll_of(left: Sequence[float], right: Sequence[float]) -> float:
    """Tilt of the eye line in degrees, positive counter-clockwise (as :func:`~.align.eye_angle`)."""
    return math.degrees(math.atan2(float(left[1]) - float(right[1]), float(right[0]) - float(left[0])))


def frame_matrix(center: Sequence[float], side: float, roll: float, size: int) -> Matrix:
    """The similarity map from image pixels to a ``size`` frame showing the square of ``side`` image
    pixels centred on ``center``, turned by ``-roll`` so a face tilted by ``roll`` comes out level."""
    if not side > 0:
        raise InvalidInput(f"frame side must be positive, got {side}")
    m = imgops.rotation_matrix((float(center[0]), float(center[1])), -float(roll), size / float(side))
    m[0, 2] += (size - 1) / 2.0 - center[0]
    m[1, 2] += (size - 1) / 2.0 - center[1]
    return m


def fit_frame(points: np.ndarray, template: np.ndarray, roll: float) -> Matrix:
    """The map image -> frame that turns by ``-roll`` and then scales and shifts ``points`` onto
    ``template`` (frame pixels) in the least-squares sense."""
    r = math.radians(roll)
    rot = np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])  # undoes a CCW screen tilt
    ok = np.isfinite(points).all(axis=1) & np.isfinite(template).all(axis=1)
    p, q = points[ok] @ rot.T, template[ok]
    pc, qc = p - p.mean(axis=0), q - q.mean(axis=0)
    denom = float((pc**2).sum())
    if len(p) < 2 or denom <= 1e-9:
        raise InvalidInput("cannot fit a frame to fewer than two distinct points")
    s = float((pc * qc).sum()) / denom
    if s <= 0:
        raise InvalidInput("the points do not look like the template (negative scale)")
    t = q.mean(axis=0) - s * p.mean(axis=0)
    return np.hstack([s * rot, t[:, None]])


def _level(v: np.ndarray, roll: float) -> np.ndarray:
    """Vectors ``(..., 2)`` turned by ``-roll`` (a counter-clockwise screen tilt undone)."""
    r = math.radians(roll)
    return v @ np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]]).T


def _framing_features(points: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, float, float, np.ndarray]:
    """(centroid, RMS radius, roll, levelled normalised shape + 1) of one face's points ``(P, 2)``."""
    c = points.mean(axis=0)
    s = float(np.sqrt(((points - c) ** 2).sum(axis=1).mean()))
    roll = roll_of(*eye_centres(points, names))
    q = _level(points - c, roll) / max(s, 1e-9)
    return c, s, roll, np.append(q.ravel(), 1.0)


def fit_framing(points: np.ndarray, names: Sequence[str], ridge: float = 1e-2) -> list[list[float]]:
    """Learn where training crops sit relative to their points: ``(2P + 1, 3)`` ridge-regression
    weights from a face's levelled, normalised shape to the crop's centre (offset from the points'
    centroid, levelled, in RMS radii) and log side. ``points`` are ``(N, P, 2)`` unit coordinates
    of training faces (the crop is the unit square); faces with missing points are left out.
    :meth:`LandmarkModel.locate` uses the weights (``extra["framing"]``) to frame its second look
    the way training crops were framed."""
    rows, targets = [], []
    for p in np.asarray(points, dtype=np.float64):
        if not np.isfinite(p).all():
            continue
        c, s, roll, x = _framing_features(p, names)
        rows.append(x)
        targets.append([*(_level(np.array([0.5, 0.5]) - c, roll) / s), math.log(1.0 / s)])
    if len(rows) < 4 * len(names):
        raise InvalidInput(f"fitting the framing needs at least {4 * len(names)} complete faces, got {len(rows)}")
    x_, y_ = np.array(rows), np.array(targets)
    reg = ridge * np.eye(x_.shape[1])
    reg[-1, -1] = 0.0  # the intercept is not shrunk
    w = np.linalg.solve(x_.T @ x_ + reg, x_.T @ y_)
    return [[round(float(v), 6) for v in row] for row in w]


def framing_frame(points: np.ndarray, names: Sequence[str], weights: np.ndarray, size: int) -> Matrix:
    """The frame (eyes level) in which a face with these image ``points`` sits as training crops did."""
    c, s, roll, x = _framing_features(np.asarray(points, dtype=np.float64), names)
    dx, dy, log_side = x @ weights
    centre = c + s * _level(np.array([dx, dy]), -roll)
    return frame_matrix((float(centre[0]), float(centre[1])), s * math.exp(log_side), roll, size)


def invert(m: Matrix) -> Matrix:
    """The inverse of a 2x3 affine map."""
    return imgops.invert_affine(m)


def apply(m: Matrix, points: np.ndarray) -> np.ndarray:
    """Map ``(P, 2)`` points with a 2x3 affine matrix."""
    return np.asarray(points, dtype=np.float64) @ m[:, :2].T + m[:, 2]


def warp_frame(image: np.ndarray, m: Matrix, size: int) -> np.ndarray:
    """The ``size`` x ``size`` frame of ``image`` under map ``m`` (border pixels repeated).

    A frame that shrinks the face by more than :data:`AREA_BELOW` first shrinks just the face's
    region with area averaging, as the training crops were made, so small frames of large faces are
    not aliased by bilinear sampling.
    """
    scale = math.sqrt(abs(float(np.linalg.det(m[:, :2]))))
    if scale >= AREA_BELOW:
        return imgops.warp_affine(image, m, (size, size))
    corners = apply(invert(m), np.array([[-1.0, -1.0], [size, -1.0], [-1.0, size], [size, size]]))
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 2
    region = _crop_replicate(image, int(x0), int(y0), int(x1), int(y1))
    w, h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    small = imgops.resize(region, (w, h), imgops.AREA)
    fx, fy = w / (x1 - x0), h / (y1 - y0)
    # small pixel -> image pixel: x = (xs + 0.5) / fx - 0.5 + x0; compose with m.
    to_image = np.array([[1 / fx, 0.0, 0.5 / fx - 0.5 + x0], [0.0, 1 / fy, 0.5 / fy - 0.5 + y0]])
    composed = m[:, :2] @ to_image[:, :2]
    shift = m[:, :2] @ to_image[:, 2] + m[:, 2]
    return imgops.warp_affine(small, np.hstack([composed, shift[:, None]]), (size, size))


def _crop_replicate(img: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """``img[y0:y1, x0:x1]`` with border pixels repeated where the window leaves the image."""
    h, w = img.shape[:2]
    ys = np.clip(np.arange(y0, y1), 0, h - 1)
    xs = np.clip(np.arange(x0, x1), 0, w - 1)
    return np.ascontiguousarray(img[ys[:, None], xs[None, :]])


class LandmarkModel:
    """A loaded keypoint model. ``threads``/``providers`` as for the emotion model.

    Raises :class:`~emolens.errors.ModelFormatError` when the file is missing, not ONNX, not an
    emolens keypoint model, or its graph disagrees with its metadata.
    """

    def __init__(self, path: str | Path, threads: int = 0, providers: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        self.name = self.path.stem
        self._session = _open_session(self.path, threads, providers, optimize=True)
        self.meta: ModelMeta = _session_meta(self._session, self.path)
        if self.meta.task != "keypoints":
            raise ModelFormatError(f"{self.path} is a {self.meta.task!r} model, not a keypoint model")
        self.names: tuple[str, ...] = self.meta.labels
        self.size = int(self.meta.input_size[0])
        if self.meta.input_size[0] != self.meta.input_size[1]:
            raise ModelFormatError(f"{self.path}: keypoint models take square input, got {self.meta.input_size}")
        self.template = self._mean_shape() * self.size - 0.5  # frame pixels
        self.framing = self._framing()
        self._check_graph()

    def _mean_shape(self) -> np.ndarray:
        shape = np.asarray(self.meta.extra.get("mean_shape", []), dtype=np.float64)
        if shape.shape != (len(self.names), 2) or not np.isfinite(shape).all():
            raise ModelFormatError(f"{self.path}: metadata extra.mean_shape must hold {len(self.names)} [u, v] pairs")
        return shape

    def _framing(self) -> np.ndarray | None:
        given = self.meta.extra.get("framing")
        if given is None:
            return None
        w = np.asarray(given, dtype=np.float64)
        if w.shape != (2 * len(self.names) + 1, 3) or not np.isfinite(w).all():
            raise ModelFormatError(f"{self.path}: metadata extra.framing must be {2 * len(self.names) + 1}x3 numbers")
        return w

    def _check_graph(self) -> None:
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or not outputs or inputs[0].type not in _FLOAT_TYPES:
            raise ModelFormatError(f"{self.path}: expected one float input and an output")
        shape, out = list(inputs[0].shape), list(outputs[0].shape or [])
        want = [self.meta.channels, self.size, self.size]
        if len(shape) != 4 or any(_dim(g) is not None and g != w for g, w in zip(shape[1:], want, strict=True)):
            raise ModelFormatError(f"{self.path}: graph input {shape} disagrees with the metadata (N, {want})")
        if len(out) != 2 or (_dim(out[1]) is not None and out[1] != 2 * len(self.names)):
            raise ModelFormatError(f"{self.path}: graph output {out} is not (N, {2 * len(self.names)}) for "
                                   f"{len(self.names)} points")
        self._input, self._output = inputs[0].name, outputs[0].name
        self._dtype = _FLOAT_TYPES[inputs[0].type]

    def predict_input(self, x: np.ndarray) -> np.ndarray:
        """A normalised float ``(N, C, S, S)`` batch -> ``(N, P, 2)`` unit coordinates."""
        want = (self.meta.channels, self.size, self.size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise InvalidInput(f"keypoint model {self.name} needs input (N, {want[0]}, {want[1]}, {want[2]}), "
                               f"got {x.shape}")
        if len(x) == 0:
            return np.zeros((0, len(self.names), 2))
        try:
            y = self._session.run([self._output], {self._input: np.ascontiguousarray(x, dtype=self._dtype)})[0]
        except Exception as e:  # onnxruntime's own error types
            raise ModelFormatError(f"{self.path}: ONNX Runtime failed on input {x.shape}: {e}") from e
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (len(x), 2 * len(self.names)) or not np.isfinite(y).all():
            raise ModelFormatError(f"{self.path}: graph returned {y.shape} or non-finite values")
        return y.reshape(len(x), len(self.names), 2)

    def predict_frames(self, frames: np.ndarray, tta: bool = False) -> np.ndarray:
        """uint8 frames ``(N, S, S)`` (gray) or ``(N, S, S, 3)`` at the model size -> ``(N, P, 2)`` frame pixels.

        ``tta``: also look at the mirrored frames (one batch) and average, each mirrored point moved
        back and put in its partner's place (``extra["flip"]``; ModelFormatError without it).
        """
        c = self.meta.channels
        batch = np.stack([to_channels(f, c) for f in frames]) if len(frames) else np.zeros((0, self.size, self.size))
        batch = batch[:, None] if c == 1 else batch.transpose(0, 3, 1, 2)
        x = normalize(batch.astype(np.uint8), self.meta.mean, self.meta.std)
        if not tta:
            return self.predict_input(x) * self.size - 0.5
        flip = self._flip()
        both = self.predict_input(np.concatenate([x, x[..., ::-1]]))
        n = len(x)
        mirrored = both[n:][:, flip] * [-1.0, 1.0] + [1.0, 0.0]  # u -> 1 - u, partners swapped
        return (both[:n] + mirrored) / 2 * self.size - 0.5

    def _flip(self) -> list[int]:
        flip = self.meta.extra.get("flip")
        if not isinstance(flip, list) or sorted(flip) != list(range(len(self.names))):
            raise ModelFormatError(f"{self.path}: flip averaging needs extra.flip, a permutation of the points")
        return flip

    def predict(self, crops: Sequence[np.ndarray], tta: bool = False) -> np.ndarray:
        """Face crops (uint8, any size, framed like the training data) -> ``(N, P, 2)`` pixels of each crop.

        Each crop is resized to the model input exactly as training data was
        (:func:`~emolens.preprocess.prepare_uint8`); ``tta`` as in :meth:`predict_frames`.
        """
        if not len(crops):
            return np.zeros((0, len(self.names), 2))
        frames = prepare_uint8(crops, (self.size, self.size), self.meta.channels)
        frames = frames[:, 0] if self.meta.channels == 1 else frames.transpose(0, 2, 3, 1)
        unit = (self.predict_frames(frames, tta) + 0.5) / self.size
        sizes = np.array([[c.shape[1], c.shape[0]] for c in crops], dtype=np.float64)[:, None, :]
        return unit * sizes - 0.5

    def _warp(self, images: Sequence[np.ndarray], maps: Sequence[Matrix]) -> np.ndarray:
        return np.stack([warp_frame(img, m, self.size) for img, m in zip(images, maps, strict=True)])

    def locate(self, image: np.ndarray, boxes: Sequence[Sequence[float]], tta: bool = False,
               looks: int = LOOKS) -> list[FaceLandmarks]:
        """The points of each face ``box`` (x, y, w, h) in ``image`` (uint8 gray or RGB), in image pixels.

        ``looks``: how many times the model looks (the first through the box's frame, each later one
        through the frame the previous points give, see the module docstring). ``tta``: the last look
        also averages with the mirrored frame (see :meth:`predict_frames`).
        """
        if looks < 1:
            raise InvalidInput(f"looks must be at least 1, got {looks}")
        if not boxes:
            return []
        img = to_channels(np.asarray(image), self.meta.channels)
        maps = [frame_matrix((x + w / 2.0, y + h / 2.0), INIT_SCALE * max(w, h), 0.0, self.size)
                for x, y, w, h in boxes]
        pts = self._look(img, maps, tta and looks == 1)
        for k in range(1, looks):
            maps = [self._next_frame(p, m) for p, m in zip(pts, maps, strict=True)]
            pts = self._look(img, maps, tta and k == looks - 1)
        return [FaceLandmarks(self.names, p, roll_of(*eye_centres(p, self.names))) for p in pts]

    def _next_frame(self, points: np.ndarray, previous: Matrix) -> Matrix:
        """The frame for the next look at a face whose points were last seen at ``points``."""
        if abs(roll_of(*eye_centres(points, self.names))) > MAX_FIT_ROLL:
            return previous
        try:
            if self.framing is not None:
                return framing_frame(points, self.names, self.framing, self.size)
            return fit_frame(points, self.template, roll_of(*eye_centres(points, self.names)))
        except InvalidInput:
            return previous

    def _look(self, image: np.ndarray, maps: Sequence[Matrix], tta: bool = False) -> list[np.ndarray]:
        """Points in image pixels seen through each frame map."""
        frame_pts = self.predict_frames(self._warp([image] * len(maps), maps), tta)
        return [apply(invert(m), p) for m, p in zip(maps, frame_pts, strict=True)]

    def __repr__(self) -> str:
        return f"LandmarkModel({str(self.path)!r}, points={len(self.names)}, input={self.meta.input_size})"


def shipped_landmark_path(folder: Path | None = None) -> Path | None:
    """The packaged keypoint model (the ``assets/models.json`` entry with ``"task": "keypoints"``), or None."""
    import json

    folder = shipped.assets_dir() if folder is None else folder
    index = folder / shipped.INDEX
    if not index.is_file():
        return None
    try:
        entries = json.loads(index.read_text(encoding="utf-8")).get("models", [])
    except (OSError, ValueError, AttributeError) as e:
        raise ModelFormatError(f"{index} is not a valid model index: {e}") from e
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("task") == "keypoints" and isinstance(entry.get("file"), str):
            path = folder / entry["file"]
            if not path.is_file():
                raise ModelFormatError(f"{index} lists the keypoint model {entry.get('name')!r} but {path} is missing")
            return path
    return None

