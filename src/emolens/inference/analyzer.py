"""The inference engine: image -> faces -> emotions, with ONNX Runtime only.

    from emolens import Analyzer
    an = Analyzer()                      # default packaged model, best installed face detector
    res = an.analyze("photo.jpg")        # ImageResult: faces left to right, per-stage timings
    for res in an.analyze_many(paths, on_error=lambda src, err: print(src, err)):
        ...

One :class:`Analyzer` is built once and shared: it holds no per-call state, its ONNX Runtime
session is safe for concurrent runs and its detectors keep one native object per thread, so
concurrent :meth:`Analyzer.analyze` calls from several threads are safe.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import imgops
from ..errors import EmolensError, InvalidInput
from ..modelmeta import ModelMeta
from ..results import FaceResult, ImageResult
from .align import crop_face, eye_angle
from .detect import Detection, Detector, create_detector, to_gray
from .eyes import HaarEyeFinder
from .headpose import AttentionLimits, HeadPose, estimate_pose
from .imageio import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageSource, load_image
from .landmarks import LandmarkModel, shipped_landmark_path
from .onnx_model import EmotionModel, FaceClassifier
from .shipped import resolve_model

log = logging.getLogger(__name__)

DEFAULT_MARGIN = 0.08
"""Crop margin on each side, as a fraction of the face box (common box convention, brows to chin).
Measured: on 329 FER2013 faces the dlib box is 0.94 (median; mean of crop/box 1.165) of the crop side."""
DEFAULT_CENTER_SHIFT = -0.09
"""Where the crop centre sits relative to the box centre, in box sides along the face's vertical
axis (negative = towards the forehead): FER2013 crops show more forehead than chin."""
DEFAULT_MIN_FACE = 16
"""Faces whose box side is smaller than this many pixels are ignored."""
MIN_ROLL, MAX_ROLL = 1.0, 45.0
"""Tilts below MIN_ROLL degrees are not worth a rotation; above MAX_ROLL the eyes are not trusted."""
WHOLE_IMAGE_MAX_SIDE = 160
"""Images up to this many pixels on their longer side in which the detector finds no face may be taken as
one face filling the image (dataset face crops such as FER2013's 48x48), flagged ``whole_image``: see
:func:`looks_like_face_crop`."""
WHOLE_IMAGE_ASPECT = (0.8, 1.25)
WHOLE_IMAGE_MIN_STD = 8.0

ImageItem = ImageSource | tuple[str, ImageSource]
"""An item of :meth:`Analyzer.analyze_many`: an image, or ``(name, image)`` to name it in results."""
ErrorHandler = Callable[[str, EmolensError], None]


@dataclass
class _Prepared:
    """One decoded image with its faces cut out, waiting for classification."""

    source: str
    width: int
    height: int
    boxes: list[tuple[int, int, int, int]]
    scores: list[float]
    crops: list[np.ndarray]
    rolls: list[float | None]
    keypoints: list[dict[str, tuple[float, float]] | None]
    poses: list[HeadPose | None] = field(default_factory=list)
    whole_image: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


class Analyzer:
    """Find faces and read their emotions.

    ``model``: a path to an ``.onnx`` file, the name of a packaged model, a loaded
    :class:`EmotionModel` (or any :class:`~.onnx_model.FaceClassifier`, such as a Triton-backed model),
    or None for the default packaged model. ``detector``: a registry name
    (``auto``, ``haar``, ``dlib``, ``mediapipe``) or any object with ``detect(rgb)``. ``align``:
    level the eyes before cropping. ``tta``: also classify the mirrored crop and average.
    ``threads``: ONNX Runtime intra-op threads of the emotion and keypoint models and, when > 0,
    ``cv2.setNumThreads`` (process-wide); 0 = one thread per model (:data:`~.onnx_model.DEFAULT_THREADS`,
    measured fastest for these small models; use ``analyze_many(workers=...)`` for parallelism).
    ``keypoints``: the facial-keypoint model (:class:`~.landmarks.LandmarkModel`, a path, a packaged
    model's name, ``None`` for the packaged keypoint model when one ships, ``False`` for none). With
    one, every face gets ``keypoints`` (name -> (x, y) in image pixels, the model's names: for the
    packaged model ``left_*`` is the subject's left) and ``roll`` from its eye centres, with or
    without ``align``. Without one, the eyes come from the detector's landmarks or OpenCV's eye
    cascade, and ``keypoints`` holds just those two (``left_eye`` = the image-left one).
    ``align``: turn each face so its eyes are level (rolls from MIN_ROLL to MAX_ROLL degrees) before
    the emotion model; the crop keeps the detector box's calibrated scale and centre (``margin``,
    ``crop_shift``), turned with the face. A ``cropped`` image is turned about its centre, its
    framing kept (only with a keypoint model: there is no box to find eyes in otherwise).
    ``margin``: crop margin per side, as a fraction of the face box (default: the model's
    ``extra["crop_margin"]`` when its metadata has one, else :data:`DEFAULT_MARGIN`; the crop
    centre likewise follows ``extra["crop_shift"]`` or :data:`DEFAULT_CENTER_SHIFT`). ``min_face``: smallest face
    side in pixels. ``max_pixels`` / ``max_bytes``: input limits (:class:`~emolens.errors.MediaTooLarge`).
    ``attention``: the yaw/pitch limits within which a face counts as ``looking`` at the camera
    (:class:`~.headpose.AttentionLimits`, default 30/25 degrees); every face gets ``yaw``, ``pitch`` and
    ``looking`` from the detector's five landmarks (YuNet) or, failing those, the keypoint model's.
    ``whole_image_fallback``: an image of at most :data:`WHOLE_IMAGE_MAX_SIDE` pixels in which no face is
    found is analysed as one face filling it, flagged ``whole_image`` (detection score 0).
    """

    def __init__(
        self,
        model: str | Path | FaceClassifier | None = None,
        detector: str | Detector = "auto",
        align: bool = True,
        tta: bool = False,
        threads: int = 0,
        margin: float | None = None,
        min_face: int = DEFAULT_MIN_FACE,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        providers: Sequence[str] | None = None,
        keypoints: str | Path | LandmarkModel | bool | None = None,
        attention: AttentionLimits | None = None,
        whole_image_fallback: bool = True,
    ) -> None:
        if min_face < 1 or max_pixels < 1 or max_bytes < 1 or threads < 0:
            raise InvalidInput("min_face, max_pixels and max_bytes must be positive and threads >= 0")
        if threads > 0:
            imgops.set_threads(threads)
        self.model: FaceClassifier = model if isinstance(model, FaceClassifier) else EmotionModel(
            resolve_model(model), threads=threads, providers=providers
        )
        if isinstance(detector, str):
            self.detector: Detector = create_detector(detector)
        elif callable(getattr(detector, "detect", None)):
            self.detector = detector
        else:
            raise InvalidInput(f"detector must be a name or have a detect(rgb) method, got {type(detector).__name__}")
        extra = self.model.meta.extra
        self.margin = float(extra.get("crop_margin", DEFAULT_MARGIN) if margin is None else margin)
        self.center_shift = float(extra.get("crop_shift", DEFAULT_CENTER_SHIFT))
        if not 0.0 <= self.margin <= 2.0:
            raise InvalidInput(f"margin must be between 0 and 2 (fraction of the face box), got {self.margin}")
        self.align, self.tta, self.min_face = align, tta, min_face
        self.max_pixels, self.max_bytes = max_pixels, max_bytes
        self.landmarks = _landmark_model(keypoints, threads, providers)
        # Without a keypoint model the eyes come from the detector's landmarks, else from OpenCV's eye cascade
        # (when OpenCV is installed).
        self._eyes = HaarEyeFinder() if align and self.landmarks is None and imgops.HAVE_CV2 else None
        if attention is not None and not isinstance(attention, AttentionLimits):
            raise InvalidInput(f"attention must be an AttentionLimits, got {type(attention).__name__}")
        self.attention = attention or AttentionLimits()
        self.whole_image_fallback = whole_image_fallback

    @property
    def meta(self) -> ModelMeta:
        return self.model.meta

    @property
    def labels(self) -> tuple[str, ...]:
        return self.model.labels

    @property
    def model_name(self) -> str:
        return self.model.name

    # ------------------------------------------------------------ stages

    def detect_faces(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB image, at least ``min_face`` pixels, sorted left to right."""
        dets = [d for d in self.detector.detect(rgb) if min(d.box[2], d.box[3]) >= self.min_face]
        return sorted(dets, key=lambda d: (d.box[0], d.box[1]))

    def head_pose(
        self, det: Detection | None, keypoints: dict[str, tuple[float, float]] | None, size: tuple[int, int]
    ) -> HeadPose | None:
        """Head pose of one face in an image of ``size`` = (height, width), from the detector's five
        landmarks, else the keypoint model's points; None when neither gives the five points."""
        pose = estimate_pose(det.landmarks, size) if det is not None and det.landmarks else None
        return pose if pose is not None else estimate_pose(keypoints, size)

    def align_face(
        self, rgb: np.ndarray, det: Detection, gray: np.ndarray | None = None
    ) -> tuple[np.ndarray, float | None, dict[str, tuple[float, float]] | None]:
        """(crop, roll in degrees or None, keypoints or None) for one detection (see the class docstring)."""
        if self.landmarks is not None:
            return self._landmark_faces(rgb, [det.box])[0]
        eyes = None
        marks = det.landmarks
        if self.align and marks and "left_eye" in marks and "right_eye" in marks:
            eyes = (marks["left_eye"], marks["right_eye"])
        elif self._eyes is not None:
            found = self._eyes.find(to_gray(rgb) if gray is None else gray, det.box)
            if found is not None:
                eyes = found
                marks = {**(marks or {}), "left_eye": found[0], "right_eye": found[1]}
        roll = eye_angle(*eyes) if eyes is not None else None
        return self._crop(rgb, det.box, roll), roll, marks

    def _crop(self, rgb: np.ndarray, box: tuple[int, int, int, int], roll: float | None,
              cropped: bool = False) -> np.ndarray:
        """The emotion model's crop of one face, turned by ``roll`` when aligning and it is in range."""
        rotate = roll if self.align and roll is not None and MIN_ROLL <= abs(roll) <= MAX_ROLL else None
        x, y, w, h = box
        if cropped:  # the image is the face: keep its framing, turn about its centre
            return rgb if rotate is None else crop_face(rgb, box, 0.0, rotate, (w / 2.0, h / 2.0))
        t = math.radians(rotate or 0.0)  # shift along the face's own vertical axis
        d = self.center_shift * max(w, h)
        center = (x + w / 2.0 + d * math.sin(t), y + h / 2.0 + d * math.cos(t))
        return crop_face(rgb, box, self.margin, rotate, center)

    def _landmark_faces(
        self, rgb: np.ndarray, boxes: Sequence[tuple[int, int, int, int]], cropped: bool = False
    ) -> list[tuple[np.ndarray, float | None, dict[str, tuple[float, float]] | None]]:
        """(crop, roll, keypoints) per box, the keypoints from the landmark model (one batched run)."""
        assert self.landmarks is not None
        out: list[tuple[np.ndarray, float | None, dict[str, tuple[float, float]] | None]] = []
        for box, lm in zip(boxes, self.landmarks.locate(rgb, boxes), strict=True):
            out.append((self._crop(rgb, box, lm.roll, cropped), lm.roll, lm.as_dict()))
        return out

    def _prepare(self, image: ImageSource, source: str | None, cropped: bool) -> _Prepared:
        """Decode, detect and align one image (with its decoding warnings)."""
        t0 = time.perf_counter()
        img = load_image(image, max_bytes=self.max_bytes, max_pixels=self.max_pixels, name=source)
        p = self._prepare_loaded(img.rgb, img.source, cropped, t0)
        p.warnings = img.warnings
        return p

    def _prepare_loaded(self, rgb: np.ndarray, source: str, cropped: bool, t0: float) -> _Prepared:
        h, w = rgb.shape[:2]
        t1 = time.perf_counter()
        if cropped:  # the caller says the whole image is one face (FER-style crops)
            p = self._prepare_whole(source, rgb, score=1.0)
            p.timings = {"decode": _ms(t0, t1), "detect": 0.0, "align": _ms(t1, time.perf_counter())}
            return p
        dets = self.detect_faces(rgb)
        if not dets and self.whole_image_fallback and looks_like_face_crop(rgb):
            t2 = time.perf_counter()
            p = self._prepare_whole(source, rgb, score=0.0)
            p.timings = {"decode": _ms(t0, t1), "detect": _ms(t1, t2), "align": _ms(t2, time.perf_counter())}
            return p
        t2 = time.perf_counter()
        if self.landmarks is not None:
            aligned = self._landmark_faces(rgb, [d.box for d in dets])
        else:
            gray = to_gray(rgb) if dets and self._eyes is not None else None
            aligned = [self.align_face(rgb, d, gray) for d in dets]
        t3 = time.perf_counter()
        p = _Prepared(
            source, w, h, [d.box for d in dets], [d.score for d in dets],
            [a[0] for a in aligned], [a[1] for a in aligned], [a[2] for a in aligned],
            [self.head_pose(d, a[2], (h, w)) for d, a in zip(dets, aligned, strict=True)],
        )
        p.timings = {"decode": _ms(t0, t1), "detect": _ms(t1, t2), "align": _ms(t2, t3)}
        return p

    def _prepare_whole(self, source: str, rgb: np.ndarray, score: float) -> _Prepared:
        """The image as one face filling it (no detection): framing kept, levelled by the keypoint model."""
        h, w = rgb.shape[:2]
        crop, roll, marks = (rgb, None, None) if self.landmarks is None else self._landmark_faces(
            rgb, [(0, 0, w, h)], cropped=True)[0]
        pose = self.head_pose(None, marks, (h, w))
        return _Prepared(source, w, h, [(0, 0, w, h)], [score], [crop], [roll], [marks], [pose], whole_image=True)

    def _result(self, p: _Prepared, probs: np.ndarray, classify_ms: float) -> ImageResult:
        faces = []
        for i, box in enumerate(p.boxes):
            row = probs[i]
            k = int(np.argmax(row))
            pose = p.poses[i] if i < len(p.poses) else None
            faces.append(FaceResult(
                box=box, detection_score=float(p.scores[i]), emotion=self.labels[k],
                probabilities={lab: float(v) for lab, v in zip(self.labels, row, strict=True)},
                keypoints=p.keypoints[i], roll=p.rolls[i],
                yaw=None if pose is None else pose.yaw, pitch=None if pose is None else pose.pitch,
                looking=self.attention.looking(pose), whole_image=p.whole_image,
            ))
        timings = {**p.timings, "classify": classify_ms}
        return ImageResult(p.source, p.width, p.height, tuple(faces), timings, self.model_name, p.warnings)

    # ------------------------------------------------------------ public API

    def analyze(self, image: ImageSource, *, source: str | None = None, cropped: bool = False) -> ImageResult:
        """Analyse one image (path, encoded bytes or RGB array; see :func:`~emolens.inference.imageio.load_image`).

        ``source`` names the image in the result. ``cropped=True`` skips detection and treats the
        whole image as one face. Raises the decode errors of ``load_image``; an image without
        faces gives a result with no faces.
        """
        p = self._prepare(image, source, cropped)
        t0 = time.perf_counter()
        probs = self.model.predict(p.crops, tta=self.tta)
        return self._result(p, probs, _ms(t0, time.perf_counter()))

    def analyze_many(
        self,
        images: Iterable[ImageItem],
        *,
        batch_size: int = 64,
        cropped: bool = False,
        on_error: ErrorHandler | None = None,
        workers: int = 1,
    ) -> Iterator[ImageResult]:
        """Analyse a stream of images, classifying faces in batches across images; yields results in order.

        Items are images or ``(name, image)`` pairs. An item that cannot be read (missing file,
        not an image, corrupt, too large: any :class:`~emolens.errors.EmolensError` while decoding
        or detecting) is passed to ``on_error(source, error)`` and skipped; without ``on_error`` the
        error is raised. ``workers`` > 1 decodes and detects that many images at once in threads
        (results keep the input order). At most about ``batch_size`` faces (plus ``2 * workers``
        images in flight) wait in memory. The ``classify`` timing of each image is its share of
        its batch's time, by number of faces.
        """
        if batch_size < 1 or workers < 1:
            raise InvalidInput(f"batch_size and workers must be >= 1, got {batch_size} and {workers}")
        pending: list[_Prepared] = []
        n_faces = 0
        for name, outcome in self._prepare_all(images, cropped, workers):
            if isinstance(outcome, EmolensError):
                if on_error is None:
                    raise outcome
                on_error(name, outcome)
                continue
            pending.append(outcome)
            n_faces += len(outcome.crops)
            if n_faces >= batch_size:
                yield from self._flush(pending, batch_size)
                pending, n_faces = [], 0
        if pending:
            yield from self._flush(pending, batch_size)

    def _prepare_all(
        self, images: Iterable[ImageItem], cropped: bool, workers: int
    ) -> Iterator[tuple[str, _Prepared | EmolensError]]:
        """(source, prepared image or its error) for every item, in order."""

        def one(i: int, item: ImageItem) -> tuple[str, _Prepared | EmolensError]:
            name, image = item if isinstance(item, tuple) else (None, item)
            if name is None:
                name = str(image) if isinstance(image, str | Path) else f"<item {i}>"
            try:
                return name, self._prepare(image, name, cropped)
            except EmolensError as err:
                return name, err

        if workers == 1:
            yield from (one(i, item) for i, item in enumerate(images))
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emolens") as pool:
            window: deque[Future[tuple[str, _Prepared | EmolensError]]] = deque()
            for i, item in enumerate(images):
                window.append(pool.submit(one, i, item))
                if len(window) >= 2 * workers:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()

    def _flush(self, pending: list[_Prepared], batch_size: int) -> Iterator[ImageResult]:
        crops = [c for p in pending for c in p.crops]
        t0 = time.perf_counter()
        probs = self.model.predict(crops, batch_size=batch_size, tta=self.tta)
        per_face = _ms(t0, time.perf_counter()) / max(1, len(crops))
        start = 0
        for p in pending:
            k = len(p.crops)
            yield self._result(p, probs[start : start + k], per_face * k)
            start += k

    def classify_crops(self, crops: Sequence[np.ndarray], batch_size: int = 64) -> list[dict[str, float]]:
        """Face crops (RGB or gray uint8, any size, no detection) -> label -> probability, one dict each."""
        probs = self.model.predict(list(crops), batch_size=batch_size, tta=self.tta)
        return [{lab: float(v) for lab, v in zip(self.labels, row, strict=True)} for row in probs]

    def __repr__(self) -> str:
        kp = None if self.landmarks is None else self.landmarks.name
        return (f"Analyzer(model={self.model_name!r}, detector={getattr(self.detector, 'name', '?')!r}, "
                f"keypoints={kp!r}, align={self.align}, tta={self.tta})")


def looks_like_face_crop(rgb: np.ndarray) -> bool:
    """Whether an image in which no face was found may still be a face crop: at most
    :data:`WHOLE_IMAGE_MAX_SIDE` pixels, nearly square (:data:`WHOLE_IMAGE_ASPECT`, as dataset crops are)
    and not flat (grey-level standard deviation of at least :data:`WHOLE_IMAGE_MIN_STD`: a blank or
    single-colour image is no face)."""
    h, w = rgb.shape[:2]
    if max(h, w) > WHOLE_IMAGE_MAX_SIDE or not WHOLE_IMAGE_ASPECT[0] <= w / h <= WHOLE_IMAGE_ASPECT[1]:
        return False
    return float(to_gray(rgb).std()) >= WHOLE_IMAGE_MIN_STD


def _landmark_model(
    spec: str | Path | LandmarkModel | bool | None, threads: int, providers: Sequence[str] | None
) -> LandmarkModel | None:
    """The keypoint model an Analyzer uses (see its ``keypoints`` argument)."""
    if spec is False:
        return None
    if isinstance(spec, LandmarkModel):
        return spec
    if spec is None:
        path = shipped_landmark_path()
        return None if path is None else LandmarkModel(path, threads=threads, providers=providers)
    if spec is True:
        path = shipped_landmark_path()
        if path is None:
            raise InvalidInput("keypoints=True asks for the packaged keypoint model, but none ships")
        return LandmarkModel(path, threads=threads, providers=providers)
    return LandmarkModel(resolve_model(spec), threads=threads, providers=providers)


def _ms(t0: float, t1: float) -> float:
    return (t1 - t0) * 1000.0
