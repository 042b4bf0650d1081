"""Face detection behind one small interface, with a registry of interchangeable backends.

Every backend ships its model inside a pip package, so nothing is downloaded at run time:

``yunet`` (default)
    YuNet, a small CNN trained on WIDER FACE, packaged with emolens and run by ONNX Runtime; 5
    landmarks per face (:mod:`emolens.inference.yunet`).
``haar``
    OpenCV's Haar cascade (``frontalface_alt2`` by default; ``cascade="default"`` for the other
    frontal one; ``profile=True`` adds the profile cascade). Needs OpenCV, which the core install
    leaves out: ``pip install 'emolens[opencv]'`` (every extra that reads video brings it too).
``dlib``
    dlib's HOG + linear SVM frontal detector. Optional: ``pip install 'emolens[dlib]'`` (the
    prebuilt ``dlib-bin`` wheel) or ``dlib``.
``mediapipe``
    MediaPipe's BlazeFace (full-range model, with eye landmarks). Optional: needs a mediapipe that
    still bundles ``mediapipe.solutions.face_detection`` (<= 0.10.21), which pins numpy<2.

``create_detector("auto")`` picks the best one installed, in the order of :data:`AUTO_ORDER`
(measured by ``python bench/detectors.py``). All backends report boxes in one convention, the
tight box of dlib/imglab annotations (brows to chin), so margins and crops mean the same thing
whichever detector ran: each backend's raw boxes are mapped by a scale and a vertical shift
fitted on the 43 boxes of ``dlib_{training,testing}_faceboxes.xml``. Detectors are safe to share across threads: each
thread gets its own native detector object.
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from .. import imgops
from ..errors import InvalidInput

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Detection:
    """One face: ``box`` = (x, y, w, h) in pixels of the image given to the detector; ``score`` in
    [0, 1] (comparable only within one backend); ``landmarks`` maps names such as ``left_eye`` /
    ``right_eye`` (as seen in the image: ``left_eye`` has the smaller x) to (x, y), when the
    backend gives them."""

    box: Box
    score: float
    landmarks: dict[str, tuple[float, float]] | None = None


@runtime_checkable
class Detector(Protocol):
    """Anything with a ``name`` and ``detect(rgb) -> list[Detection]`` (rgb: ``uint8 (H, W, 3)``)."""

    name: str

    def detect(self, rgb: np.ndarray) -> list[Detection]: ...


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., Detector]
    available: Callable[[], bool]
    install_hint: str
    description: str


_REGISTRY: dict[str, _Entry] = {}
AUTO_ORDER: tuple[str, ...] = ("yunet", "dlib", "mediapipe", "haar")
"""Preference of ``auto``, the measured best first (``bench/detectors.py``): YuNet (packaged, always
available) finds all 43 annotated faces, turned and occluded ones included, about 10x faster than
dlib's HOG, and gives 5 landmarks; the others remain for comparison and as fallbacks."""


def register_detector(
    name: str, *, available: Callable[[], bool] = lambda: True, install_hint: str = "", description: str = ""
) -> Callable[[Callable[..., Detector]], Callable[..., Detector]]:
    """Decorator adding a detector factory to the registry under ``name``."""

    def deco(factory: Callable[..., Detector]) -> Callable[..., Detector]:
        _REGISTRY[name] = _Entry(factory, available, install_hint, description)
        return factory

    return deco


def list_detectors(include_unavailable: bool = False) -> list[str]:
    """Names ``create_detector`` accepts here (besides ``auto``), the installed ones unless asked."""
    return [n for n, e in _REGISTRY.items() if include_unavailable or e.available()]


def describe_detectors() -> dict[str, dict[str, Any]]:
    """name -> {available, description, install} for every registered backend (for listings)."""
    return {
        n: {"available": e.available(), "description": e.description, "install": e.install_hint}
        for n, e in _REGISTRY.items()
    }


def create_detector(name: str = "auto", **kw: Any) -> Detector:
    """A detector by name; ``auto`` is the best installed (:data:`AUTO_ORDER`). ``kw`` go to the backend.

    Raises :class:`~emolens.errors.InvalidInput` for an unknown name (with a suggestion), a backend
    whose package is not installed (with the pip command), or options the backend does not take.
    """
    if name == "auto":
        name = next(n for n in AUTO_ORDER if n in _REGISTRY and _REGISTRY[n].available())
        log.debug("auto detector: %s", name)
    entry = _REGISTRY.get(name)
    if entry is None:
        names = [*list(_REGISTRY), "auto"]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidInput(f"unknown face detector {name!r}{hint}; known: {', '.join(names)}")
    if not entry.available():
        raise InvalidInput(f"face detector {name!r} is not installed here: {entry.install_hint}")
    try:
        return entry.factory(**kw)
    except TypeError as e:
        raise InvalidInput(f"bad option for face detector {name!r}: {e}") from e


# ---------------------------------------------------------------- shared helpers


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0.0, iw) * max(0.0, ih)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def _overlap_small(a: Sequence[float], b: Sequence[float]) -> float:
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    small = min(a[2] * a[3], b[2] * b[3])
    return float(max(0.0, iw) * max(0.0, ih) / small) if small > 0 else 0.0


def nms(dets: Sequence[Detection], iou_thr: float = 0.3, contain_thr: float = 0.7) -> list[Detection]:
    """Greedy suppression by score: drop a box that overlaps a kept one by IoU > ``iou_thr`` or lies
    mostly (> ``contain_thr`` of its area) inside it (Haar often nests a face in a face)."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(iou(d.box, k.box) <= iou_thr and _overlap_small(d.box, k.box) <= contain_thr for k in kept):
            kept.append(d)
    return kept


def calibrate_box(
    box: Sequence[float], scale: float, shift: float, size: tuple[int, int] | None = None
) -> Box:
    """Map a backend's raw box to the common convention: a square of side ``max(w, h) / scale``
    whose centre moves down by ``shift`` x side; clipped to ``size`` = (height, width) if given."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) / scale
    cx, cy = x + w / 2.0, y + h / 2.0 + shift * max(w, h)
    x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
    x1, y1 = x0 + round(side), y0 + round(side)
    if size is not None:
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(size[1], x1), min(size[0], y1)
    return (int(x0), int(y0), int(max(0, x1 - x0)), int(max(0, y1 - y0)))


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """RGB or gray ``uint8`` -> gray ``uint8 (H, W)``."""
    if rgb.ndim == 2:
        return rgb
    if rgb.ndim == 3 and rgb.shape[2] == 3:
        return imgops.rgb_to_gray(rgb)
    raise InvalidInput(f"a detector needs an RGB (H, W, 3) or gray (H, W) image, got shape {rgb.shape}")


def _downscale(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink so the longer side is at most ``max_side``; returns the image and the factor used."""
    h, w = img.shape[:2]
    f = min(1.0, max_side / max(h, w)) if max_side > 0 else 1.0
    if f >= 1.0:
        return img, 1.0
    return imgops.resize(img, (round(w * f), round(h * f)), imgops.AREA), f


# ---------------------------------------------------------------- Haar (OpenCV)


def cascade_path(name: str) -> str:
    """Path of one of OpenCV's bundled Haar cascades, e.g. ``frontalface_alt2`` or ``eye``."""
    data = getattr(imgops.require_cv2("the Haar cascades (detector 'haar', eye finding without keypoints)"),
                   "data", None)
    if data is None:
        raise InvalidInput("this OpenCV build has no bundled Haar cascades (cv2.data); use opencv-python 4.x")
    return f"{data.haarcascades}haarcascade_{name}.xml"


class ThreadLocalCascade:
    """One ``cv2.CascadeClassifier`` per thread (a classifier must not be shared by running threads)."""

    def __init__(self, name: str) -> None:
        self.path = cascade_path(name)
        self._local = threading.local()
        self.get()  # fail now, in the constructor, if the file is missing

    def get(self) -> Any:
        c = getattr(self._local, "cascade", None)
        if c is None:
            c = imgops.require_cv2("the Haar cascades").CascadeClassifier(self.path)
            if c.empty():
                raise InvalidInput(f"cannot load the Haar cascade {self.path}")
            self._local.cascade = c
        return c


@register_detector("haar", available=lambda: imgops.HAVE_CV2, install_hint="pip install 'emolens[opencv]'",
                   description="OpenCV Haar cascade (frontal alt2; profile optional)")
class HaarDetector:
    """OpenCV Haar cascade detector; the defaults were tuned with ``bench/detectors.py``.

    ``cascade``: ``alt2`` or ``default`` (frontal); ``profile``: also run the profile cascade on the
    image and its mirror; ``max_side``: images are shrunk so their longer side is at most this
    before detection (speed; faces then need to be >= ``min_size`` at that scale).
    """

    # raw Haar box -> common convention (fitted on the 43 boxes of the dlib XML files)
    BOX_SCALE: ClassVar[dict[str, float]] = {"alt2": 1.135, "default": 1.135, "profileface": 1.2}
    BOX_SHIFT: ClassVar[dict[str, float]] = {"alt2": 0.09, "default": 0.08, "profileface": 0.05}

    def __init__(
        self,
        cascade: str = "alt2",
        scale_factor: float = 1.1,
        min_neighbors: int = 3,
        min_size: int = 20,
        max_side: int = 1280,
        equalize: bool = False,
        profile: bool = False,
    ) -> None:
        if cascade not in ("alt2", "default"):
            raise InvalidInput(f"Haar cascade must be 'alt2' or 'default', got {cascade!r}")
        if scale_factor <= 1.0 or min_neighbors < 0 or min_size < 1:
            raise InvalidInput("Haar needs scale_factor > 1, min_neighbors >= 0 and min_size >= 1")
        self.name = "haar" if cascade == "alt2" and not profile else f"haar-{cascade}{'+profile' * profile}"
        self.cascade = cascade
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_size, self.max_side, self.equalize = min_size, max_side, equalize
        self._frontal = ThreadLocalCascade(f"frontalface_{cascade}")
        self._profile = ThreadLocalCascade("profileface") if profile else None

    def _run(self, c: Any, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, counts = c.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(counts).reshape(-1)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        gray, f = _downscale(to_gray(rgb), self.max_side)
        if self.equalize:
            gray = imgops.require_cv2("histogram equalisation").equalizeHist(gray)
        size = rgb.shape[:2]
        found: list[Detection] = []
        runs = [("alt2" if self.cascade == "alt2" else "default", self._frontal.get(), False)]
        if self._profile is not None:
            c = self._profile.get()
            runs += [("profileface", c, False), ("profileface", c, True)]
        for kind, c, mirror in runs:
            boxes, counts = self._run(c, gray[:, ::-1].copy() if mirror else gray)
            for (x, y, w, h), n in zip(boxes, counts, strict=True):
                if mirror:
                    x = gray.shape[1] - x - w
                raw = (x / f, y / f, w / f, h / f)
                box = calibrate_box(raw, self.BOX_SCALE[kind], self.BOX_SHIFT[kind], size)
                score = float(1.0 - np.exp(-float(n) / 8.0))  # neighbour count squashed to (0, 1)
                found.append(Detection(box, score if kind != "profileface" else 0.8 * score))
        return nms([d for d in found if d.box[2] > 0 and d.box[3] > 0])


# ---------------------------------------------------------------- dlib HOG (optional)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@register_detector(
    "dlib",
    available=lambda: _has("dlib"),
    install_hint="pip install 'emolens[dlib]' (the prebuilt dlib-bin wheel) or pip install dlib (compiles)",
    description="dlib HOG + linear SVM frontal detector (optional package)",
)
class DlibDetector:
    """dlib's HOG frontal face detector. ``upsample``: how many times to double the image first
    (``None``: once when the longer side is <= ``upsample_below`` pixels, so ~40 px faces are
    found, else never); ``threshold``: SVM margin a detection must pass (0 = dlib's default)."""

    BOX_SCALE, BOX_SHIFT = 1.0, 0.0  # dlib boxes define the common convention

    def __init__(self, upsample: int | None = None, threshold: float = 0.0, upsample_below: int = 1000) -> None:
        import dlib  # optional dependency

        self._dlib = dlib
        self.name = "dlib"
        self.upsample, self.threshold, self.upsample_below = upsample, threshold, upsample_below
        self._local = threading.local()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        det = getattr(self._local, "det", None)
        if det is None:
            det = self._local.det = self._dlib.get_frontal_face_detector()
        img = np.ascontiguousarray(rgb if rgb.ndim == 3 else imgops.gray_to_rgb(rgb))
        up = self.upsample
        if up is None:
            up = 1 if max(img.shape[:2]) <= self.upsample_below else 0
        rects, scores, _ = det.run(img, up, self.threshold)
        out = []
        for r, s in zip(rects, scores, strict=True):
            raw = (r.left(), r.top(), r.width(), r.height())
            box = calibrate_box(raw, self.BOX_SCALE, self.BOX_SHIFT, img.shape[:2])
            out.append(Detection(box, float(1.0 / (1.0 + np.exp(-2.0 * (s + 0.5))))))
        return nms([d for d in out if d.box[2] > 0 and d.box[3] > 0])


# ---------------------------------------------------------------- MediaPipe BlazeFace (optional)


def _mediapipe_bundles_model() -> bool:
    """True when the installed mediapipe still ships ``solutions.face_detection`` and its model."""
    if not _has("mediapipe"):
        return False
    try:
        spec = importlib.util.find_spec("mediapipe.python.solutions.face_detection")
    except (ImportError, ValueError):
        return False
    return spec is not None


@register_detector(
    "mediapipe",
    available=_mediapipe_bundles_model,
    install_hint="pip install 'mediapipe<=0.10.21' (the last releases that bundle the BlazeFace model; numpy<2)",
    description="MediaPipe BlazeFace full-range detector with eye landmarks (optional package)",
)
class MediaPipeDetector:
    """MediaPipe BlazeFace. ``model_selection``: 1 = full range (faces up to ~5 m, default), 0 =
    short range (selfie distance); ``min_confidence``: detection score threshold."""

    BOX_SCALE, BOX_SHIFT = 1.03, 0.01

    def __init__(self, model_selection: int = 1, min_confidence: float = 0.5) -> None:
        from mediapipe.python.solutions import face_detection  # optional dependency

        self._fd = face_detection
        self.name = "mediapipe"
        self.model_selection, self.min_confidence = model_selection, min_confidence
        self._local = threading.local()
        self._graph()  # load now so a broken install fails in the constructor

    def _graph(self) -> Any:
        g = getattr(self._local, "graph", None)
        if g is None:
            g = self._local.graph = self._fd.FaceDetection(
                model_selection=self.model_selection, min_detection_confidence=self.min_confidence
            )
        return g

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        img = np.ascontiguousarray(rgb if rgb.ndim == 3 else imgops.gray_to_rgb(rgb))
        h, w = img.shape[:2]
        res = self._graph().process(img)
        out = []
        for d in res.detections or []:
            rb = d.location_data.relative_bounding_box
            raw = (rb.xmin * w, rb.ymin * h, rb.width * w, rb.height * h)
            box = calibrate_box(raw, self.BOX_SCALE, self.BOX_SHIFT, (h, w))
            kp = d.location_data.relative_keypoints
            eyes = sorted([(kp[0].x * w, kp[0].y * h), (kp[1].x * w, kp[1].y * h)])
            marks = {"left_eye": eyes[0], "right_eye": eyes[1], "nose": (kp[2].x * w, kp[2].y * h)}
            out.append(Detection(box, float(d.score[0]), marks))
        return nms([d for d in out if d.box[2] > 0 and d.box[3] > 0])


# The packaged default registers itself; imported last because it builds on the helpers above.
from . import yunet as _yunet  # noqa: E402, F401
