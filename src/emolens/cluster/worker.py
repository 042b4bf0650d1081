"""What one batch worker does, in-process or inside a Ray actor: build the engine once, analyse one file.

:class:`EngineSpec` is the picklable recipe of an :class:`~emolens.inference.analyzer.Analyzer`
(the options of ``emolens analyze`` / ``emolens video``) with a thread budget: ONNX Runtime's
intra-op threads of every model, the detector's and OpenCV's threads. :class:`FileWorker` holds one
engine and analyses one image or one video per call; a file the engine refuses comes back as its
named error (:class:`~emolens.errors.EmolensError`), anything else is raised for the caller to retry.
It also reads one campaign recording into its frame table (:meth:`FileWorker.recording`).
:func:`record_video` writes one video's outputs as ``emolens video --out`` does, so a batch run and
a single-process run write the same files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EmolensError, InvalidInput

if TYPE_CHECKING:
    from ..inference.analyzer import Analyzer
    from ..video.stream import VideoOptions

DEFAULT_VIDEO_SMOOTHING = 0.95
"""The EMA factor ``emolens video`` uses by default (half-life 0.45 s)."""


@dataclass(frozen=True)
class EngineSpec:
    """How each worker builds its Analyzer. ``threads``: CPU threads per worker for ONNX Runtime
    (emotion, keypoint and detector models) and OpenCV (>= 1: a worker never takes every core);
    ``keypoints``: use the packaged keypoint model; the rest as :class:`~emolens.inference.analyzer.Analyzer`."""

    model: str | None = None
    detector: str = "auto"
    align: bool = True
    tta: bool = False
    keypoints: bool = True
    max_yaw: float = 30.0
    max_pitch: float = 25.0
    threads: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise InvalidInput(f"a batch worker needs threads >= 1, got {self.threads}")


def build_analyzer(spec: EngineSpec) -> Analyzer:
    """The Analyzer ``spec`` describes, every model limited to ``spec.threads`` threads."""
    from ..inference.analyzer import Analyzer
    from ..inference.detect import create_detector
    from ..inference.headpose import AttentionLimits

    try:
        detector = create_detector(spec.detector, threads=spec.threads)
    except InvalidInput:  # a backend without a thread setting (haar, dlib)
        detector = create_detector(spec.detector)
    return Analyzer(model=spec.model, detector=detector, align=spec.align, tta=spec.tta, threads=spec.threads,
                    keypoints=None if spec.keypoints else False,
                    attention=AttentionLimits(spec.max_yaw, spec.max_pitch), **spec.extra)


def default_video_options() -> VideoOptions:
    """``emolens video``'s defaults: every frame classified, probabilities smoothed (0.95)."""
    from ..video.stream import VideoOptions

    return VideoOptions(smoothing=DEFAULT_VIDEO_SMOOTHING)


def record_video(analyzer: Analyzer, path: str | Path, out_dir: str | Path,
                 options: VideoOptions | None = None, *, annotate: bool = False,
                 blur: bool = False) -> dict[str, Any]:
    """Analyse one video into ``out_dir`` (frames/seconds CSV and Parquet, tracks.csv, summary.json,
    timelines; ``annotate``: annotated.mp4 too, faces pixelated with ``blur``) as
    ``emolens video PATH --out OUT_DIR [--annotate] [--blur]`` does; returns the summary as a dict."""
    from ..video.outputs import VideoRecorder
    from ..video.stream import iter_video

    stream = iter_video(analyzer, str(path), options or default_video_options())
    try:
        recorder = VideoRecorder(Path(out_dir), analyzer.labels, annotate_mp4=annotate, blur_faces=blur,
                                 fps=stream.info.fps)
        for frame, rgb in stream.with_frames():
            recorder.add(frame, rgb)
    finally:
        stream.close()
    summary = recorder.close(stream.progress).to_dict()
    summary["source"] = stream.info.source
    return summary


Factory = Callable[[EngineSpec], Any]


class FileWorker:
    """One engine (built once by ``factory``, default :func:`build_analyzer`) analysing one file per call.

    Each call returns ``("ok", value)`` or ``("error", EmolensError)``; any other exception propagates.
    An engine that cannot be built (a missing model: its named error) is raised by :meth:`ready`, where a
    caller can read it, rather than by the constructor.
    """

    def __init__(self, spec: EngineSpec, factory: Factory | None = None) -> None:
        self.failure: EmolensError | None = None
        self.analyzer: Any = None
        self._recordings: Any = None  # the campaign's EngineAnalyser, built on the first recording
        try:
            self.analyzer = (factory or build_analyzer)(spec)
        except EmolensError as err:
            self.failure = err

    def ready(self) -> Sequence[str]:
        """The engine's labels (a cheap call that proves the worker started), or the error that stopped it."""
        if self.failure is not None:
            raise self.failure
        return tuple(self.analyzer.labels)

    def image(self, path: str, cropped: bool = False) -> tuple[str, Any]:
        try:
            return "ok", self.analyzer.analyze(path, cropped=cropped)
        except EmolensError as err:
            return "error", err

    def video(self, path: str, out_dir: str, options: VideoOptions | None = None, annotate: bool = False,
              blur: bool = False) -> tuple[str, Any]:
        try:
            return "ok", record_video(self.analyzer, path, out_dir, options, annotate=annotate, blur=blur)
        except EmolensError as err:
            return "error", err

    def recording(self, kind: str, path: str, window: tuple[float, float], sample_fps: float) -> tuple[str, Any]:
        """The frame table of one campaign recording (:func:`emolens.campaign.recording.read_recording`),
        sampled at ``sample_fps``; the analyser is built once per rate."""
        from ..campaign.recording import EngineAnalyser, read_recording

        if self._recordings is None or self._recordings.sample_fps != float(sample_fps):
            self._recordings = EngineAnalyser(self.analyzer, sample_fps)
        try:
            return "ok", read_recording(kind, Path(path), window, self._recordings)
        except EmolensError as err:
            return "error", err
