"""Streamed video analysis: one :class:`~emolens.results.FrameResult` per decoded frame, faces with track ids.

    from emolens import Analyzer, iter_video
    from emolens.video.stream import VideoOptions
    for frame in iter_video(Analyzer(), "clip.mp4", VideoOptions(every=3, smoothing=0.8)):
        for face in frame.faces:
            print(frame.time_s, face.track_id, face.emotion)

Per frame: faces are found (:mod:`.regions`: full detection on key frames, regions around tracks
between), given identities (:mod:`.tracker`), and, on every ``every``-th frame, aligned and
classified in one batch; on the frames between, each face carries its track's last probabilities
(``FrameResult.classified`` is False; a face whose track is new is classified anyway so every face
has probabilities). With ``smoothing`` > 0 the probabilities are a time-aware EMA per track
(:mod:`.smoothing`) and ``emotion`` is the top smoothed label. Faces come sorted by track id.

:func:`iter_video` opens the source at once: a missing, empty, unreadable or truncated-beyond-repair
file raises :class:`~emolens.errors.UnsupportedMedia` before any frame. Broken frames later on are
skipped and counted (:attr:`VideoStream.progress`). Memory stays flat: nothing is kept per frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInput
from ..inference.detect import Detection, to_gray
from ..results import FaceResult, FrameResult
from .eyecache import EyeCache
from .reader import FrameReader, VideoInfo, VideoSource
from .regions import RegionDetector
from .smoothing import EmaSmoother
from .tracker import FaceTracker, default_confirm_score, default_high_score

if TYPE_CHECKING:
    from ..inference.analyzer import Analyzer


@dataclass(frozen=True)
class VideoOptions:
    """How a video is analysed.

    ``every``: classify every Nth frame (track on all). ``smoothing``: EMA factor per 1/30 s in
    [0, 1), 0 = raw probabilities. ``max_frames``: stop after that many frames; ``max_duration_s``:
    stop before the first frame at or after that video time (None = no limit). ``track_max_age_s``:
    how long a vanished face keeps its id.
    ``detect_interval_s``: seconds between full-frame detections (0, the default = every frame, cheap
    with YuNet: about 10 ms at 640x360; > 0: between them faces are searched near their tracks only,
    which paid off with dlib's slow HOG detector). ``roi_face_px``: face size the region search
    rescales to. ``eyes_interval_s``: how long a track's eye positions are reused before the eyes
    are searched again (0 = every frame; :mod:`.eyecache`). ``track_high_score``: first-stage
    detection score (None: per detector backend).
    ``loop``: read the source this many times in a row (soak tests). ``prefetch``: frames decoded
    ahead in a background thread (0 = decode inline).
    ``start_s``: skip frames before that video time (they are decoded, not analysed).
    ``sample_fps``: analyse at most one frame per ``1 / sample_fps`` seconds of video, counted from
    ``start_s`` (None = every frame); skipped frames are neither detected, tracked nor classified.
    """

    every: int = 1
    smoothing: float = 0.0
    max_frames: int | None = None
    max_duration_s: float | None = None
    track_max_age_s: float = 1.0
    detect_interval_s: float = 0.0
    roi_face_px: int = 64
    eyes_interval_s: float = 0.5
    track_high_score: float | None = None
    loop: int = 1
    prefetch: int = 2
    start_s: float = 0.0
    sample_fps: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.every < 1:
            problems.append(f"every must be >= 1, got {self.every}")
        if not 0.0 <= self.smoothing < 1.0:
            problems.append(f"smoothing must be in [0, 1) (0 = off), got {self.smoothing}")
        if self.max_frames is not None and self.max_frames < 1:
            problems.append(f"max_frames must be >= 1, got {self.max_frames}")
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            problems.append(f"max_duration_s must be > 0, got {self.max_duration_s}")
        if min(self.track_max_age_s, self.detect_interval_s, self.eyes_interval_s) < 0:
            problems.append("track_max_age_s, detect_interval_s and eyes_interval_s must be >= 0")
        if self.start_s < 0 or (self.sample_fps is not None and self.sample_fps <= 0):
            problems.append(f"start_s must be >= 0 and sample_fps > 0, got {self.start_s} and {self.sample_fps}")
        if self.roi_face_px < 8 or self.loop < 1 or self.prefetch < 0:
            problems.append("roi_face_px must be >= 8, loop >= 1 and prefetch >= 0")
        if problems:
            raise InvalidInput("bad video options: " + "; ".join(problems))


@dataclass(frozen=True)
class VideoProgress:
    """Where a stream stands: frames analysed, frames expected (None when unknown), video time
    reached, wall seconds spent, analysis speed (frames per wall second), seconds left (None when
    unknown), broken frames skipped, frames the container promised but never gave (truncated
    files: known at the end), webcam frames dropped to keep up with real time, and whether the
    stream has ended."""

    frames_done: int
    frames_total: int | None
    time_s: float
    elapsed_s: float
    fps: float
    eta_s: float | None
    broken_frames: int
    missing_frames: int = 0
    dropped_frames: int = 0
    done: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressCallback = Callable[[VideoProgress], None]


_Pose = tuple[tuple[float, float, float, float], Any, Any]
"""(box, roll, keypoints) of a track where its face was last classified."""


class _TrackState:
    """Per-track probabilities (the last ones, carried forward between classifications), the smoother,
    and the pose (box, roll, keypoints) where the face was last classified."""

    def __init__(self, smoothing: float) -> None:
        self.smoother = EmaSmoother(smoothing)
        self.last: dict[int, np.ndarray] = {}
        self.pose: dict[int, _Pose] = {}

    def keep_only(self, ids: set[int]) -> None:
        self.smoother.keep_only(ids)
        self.last = {k: v for k, v in self.last.items() if k in ids}
        self.pose = {k: v for k, v in self.pose.items() if k in ids}

    def carried(self, tid: int, box: Sequence[float]) -> tuple[Any, Any] | None:
        """(roll, keypoints) for a face carried forward: its last keypoints moved and scaled with the
        box (the roll kept); None when the track has no pose yet."""
        pose = self.pose.get(tid)
        if pose is None:
            return None
        (x0, y0, w0, h0), roll, marks = pose
        if not marks:
            return roll, marks
        x, y, w, h = (float(v) for v in box)
        s = ((w / w0) + (h / h0)) / 2.0 if w0 > 0 and h0 > 0 else 1.0
        cx0, cy0, cx, cy = x0 + w0 / 2.0, y0 + h0 / 2.0, x + w / 2.0, y + h / 2.0
        moved = {k: (cx + s * (px - cx0), cy + s * (py - cy0)) for k, (px, py) in marks.items()}
        return roll, moved

    def observe(self, tid: int, probs: np.ndarray, t: float) -> None:
        self.last[tid] = self.smoother.update(tid, probs, t)


class VideoStream(Iterator[FrameResult]):
    """Iterator of :class:`~emolens.results.FrameResult` over a video (see the module docstring).

    :attr:`info` describes the source, :attr:`progress` the latest :class:`VideoProgress`,
    :attr:`last_rgb` the upright RGB frame of the latest result (for drawing; do not modify it).
    :meth:`with_frames` yields ``(result, rgb)`` pairs instead. Closing (or exhausting) the stream
    releases the source; ``progress`` is called after every frame and once more at the end with
    ``done=True``.
    """

    def __init__(
        self,
        analyzer: Analyzer,
        source: VideoSource,
        options: VideoOptions | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.analyzer, self.options = analyzer, options or VideoOptions()
        opts = self.options
        self._reader = FrameReader(source, loop=opts.loop, prefetch=opts.prefetch, max_pixels=analyzer.max_pixels)
        self.info: VideoInfo = self._reader.info
        name = str(getattr(analyzer.detector, "name", ""))
        high = opts.track_high_score if opts.track_high_score is not None else default_high_score(name)
        self.tracker = FaceTracker(high_score=high, max_age_s=opts.track_max_age_s,
                                   confirm_score=default_confirm_score(name))
        self.regions = RegionDetector(
            analyzer.detector, min_face=analyzer.min_face, full_interval_s=opts.detect_interval_s,
            roi_face_px=opts.roi_face_px,
        )
        self._state = _TrackState(opts.smoothing)
        self._eyes = EyeCache(opts.eyes_interval_s)
        self._callback = progress
        self._frames = sample_frames(iter(self._reader), opts.start_s, opts.sample_fps)
        self._t0 = time.perf_counter()
        self._done = 0
        self._finished = False
        self.last_rgb: np.ndarray | None = None
        self.progress = self._progress(0.0, done=False)

    # ------------------------------------------------------------ iteration

    def __iter__(self) -> VideoStream:
        return self

    def __next__(self) -> FrameResult:
        if self._finished:
            raise StopIteration
        t_read = time.perf_counter()
        frame = next(self._frames, None) if not self._limit_reached() else None
        limit = self.options.max_duration_s
        if frame is not None and limit is not None and self._done > 0 and frame.time_s >= limit:
            frame = None
        if frame is None:
            self._finish()
            raise StopIteration
        try:
            result = self._analyse(frame.index, frame.time_s, frame.rgb, _ms(t_read, time.perf_counter()))
        except BaseException:
            self.close()
            raise
        self._done += 1
        self.last_rgb = frame.rgb
        self.progress = self._progress(result.time_s, done=False)
        if self._callback is not None:
            self._callback(self.progress)
        return result

    def with_frames(self) -> Iterator[tuple[FrameResult, np.ndarray]]:
        """``(result, upright RGB frame)`` pairs, for drawing or writing annotated video."""
        for result in self:
            assert self.last_rgb is not None
            yield result, self.last_rgb

    def _limit_reached(self) -> bool:
        return self.options.max_frames is not None and self._done >= self.options.max_frames

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._reader.close()
        self.progress = self._progress(self.progress.time_s, done=True)
        if self._callback is not None:
            self._callback(self.progress)

    def close(self) -> None:
        """Stop early and release the source (the final progress report is still made)."""
        self._finish()

    def __enter__(self) -> VideoStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _progress(self, t: float, done: bool) -> VideoProgress:
        elapsed = time.perf_counter() - self._t0
        fps = self._done / elapsed if elapsed > 0 else 0.0
        total = self._expected_frames()
        eta = None
        if total is not None and fps > 0:
            eta = 0.0 if done else max(0, total - self._done) / fps
        return VideoProgress(
            self._done, total, float(t), elapsed, fps, eta, self._reader.broken, self._reader.truncated,
            self._reader.dropped, done,
        )

    def _expected_frames(self) -> int | None:
        o, count = self.options, self.info.frame_count
        limits = [] if count is None else [count * o.loop]
        if o.max_frames is not None:
            limits.append(o.max_frames)
        if o.max_duration_s is not None and self.info.fps is not None:
            limits.append(int(np.ceil(o.max_duration_s * self.info.fps)))
        return min(limits) if limits else None

    # ------------------------------------------------------------ one frame

    def _analyse(self, index: int, t: float, rgb: np.ndarray, read_ms: float) -> FrameResult:
        t0 = time.perf_counter()
        predicted = [box for _, box in self.tracker.predicted(t)]
        dets, _ = self.regions.detect(rgb, t, predicted)
        t1 = time.perf_counter()
        ids = self.tracker.update([d.box for d in dets], [d.score for d in dets], t)
        if self.tracker.newly_lost:
            self.regions.request_key_frame()
        self._state.keep_only(self.tracker.live_ids)
        self._eyes.keep_only(self.tracker.live_ids)
        kept = [(d, tid) for d, tid in zip(dets, ids, strict=True) if tid is not None]
        classify_all = index % self.options.every == 0
        todo = [(d, tid) for d, tid in kept if classify_all or tid not in self._state.last]
        t2 = time.perf_counter()
        aligned = self._align(rgb, todo, t)
        t3 = time.perf_counter()
        if todo:
            probs = self.analyzer.model.predict([a[0] for a in aligned], tta=self.analyzer.tta)
            for (_, tid), row in zip(todo, probs, strict=True):
                self._state.observe(tid, row, t)
        t4 = time.perf_counter()
        extras: dict[int, tuple[Any, Any] | None] = {}
        for (det, tid), a in zip(todo, aligned, strict=True):
            extras[tid] = (a[1], a[2])
            self._state.pose[tid] = (tuple(float(v) for v in det.box), a[1], a[2])  # type: ignore[assignment]
        for det, tid in kept:
            if tid not in extras:
                extras[tid] = self._state.carried(tid, det.box)
        h, w = rgb.shape[:2]
        faces = [self._face(d, tid, extras.get(tid), (h, w)) for d, tid in sorted(kept, key=lambda p: p[1])]
        timings = {"read": read_ms, "detect": _ms(t0, t1), "track": _ms(t1, t2), "align": _ms(t2, t3),
                   "classify": _ms(t3, t4)}
        return FrameResult(index, float(t), int(w), int(h), tuple(faces), classify_all, timings)

    def _align(self, rgb: np.ndarray, todo: list[tuple[Detection, int]], t: float) -> list[tuple[np.ndarray, Any, Any]]:
        """(crop, roll, keypoints) per face; eyes come from the track's cache when it is fresh."""
        out = []
        gray: np.ndarray | None = None
        # a keypoint model (Analyzer(keypoints=...)) locates the eyes itself: no eye search to save
        cache = self.analyzer.align and getattr(self.analyzer, "landmarks", None) is None
        for det, tid in todo:
            cached = self._eyes.lookup(tid, det, t) if cache else None
            if cached is not None:
                crop, roll, marks = self.analyzer.align_face(rgb, cached.detection, None)
                out.append((crop, None, det.landmarks) if cached.placeholder else (crop, roll, marks))
                continue
            if gray is None and self.analyzer.align:
                gray = to_gray(rgb)
            crop, roll, marks = self.analyzer.align_face(rgb, det, gray)
            if cache:
                self._eyes.store(tid, det, marks, t)
            out.append((crop, roll, marks))
        return out

    def _face(self, det: Detection, tid: int, extra: tuple[Any, Any] | None, size: tuple[int, int]) -> FaceResult:
        row = self._state.last[tid]
        labels = self.analyzer.labels
        roll, marks = extra if extra is not None else (None, None)
        pose = self.analyzer.head_pose(det, marks, size)  # this frame's landmarks: fresh on every frame
        return FaceResult(
            box=tuple(int(v) for v in det.box),  # type: ignore[arg-type]
            detection_score=float(det.score),
            emotion=labels[int(np.argmax(row))],
            probabilities={lb: float(v) for lb, v in zip(labels, row, strict=True)},
            keypoints=marks, roll=roll, track_id=int(tid),
            yaw=None if pose is None else pose.yaw, pitch=None if pose is None else pose.pitch,
            looking=self.analyzer.attention.looking(pose),
        )


def sample_frames(frames: Iterator[Any], start_s: float, fps: float | None) -> Iterator[Any]:
    """The frames (objects with ``time_s``) at or after ``start_s``, at most one per ``1 / fps`` slot
    (slot k = [start_s + k / fps, start_s + (k + 1) / fps)); all of them when ``fps`` is None."""
    next_k = 0
    for f in frames:
        if f.time_s < start_s:
            continue
        if fps is None:
            yield f
            continue
        k = int(np.floor((f.time_s - start_s) * fps + 1e-9))
        if k >= next_k:
            next_k = k + 1
            yield f


def iter_video(
    analyzer: Analyzer,
    source: VideoSource,
    options: VideoOptions | None = None,
    progress: ProgressCallback | None = None,
) -> VideoStream:
    """Analyse ``source`` (a video path or a webcam index) frame by frame; see :class:`VideoStream`.

    Raises :class:`~emolens.errors.UnsupportedMedia` at once for a source that cannot be read,
    :class:`~emolens.errors.MediaTooLarge` for frames over the analyzer's ``max_pixels`` and
    :class:`~emolens.errors.InvalidInput` for bad options."""
    if options is not None and not isinstance(options, VideoOptions):
        raise InvalidInput(f"options must be a VideoOptions, got {type(options).__name__}")
    return VideoStream(analyzer, source, options, progress)


def _ms(t0: float, t1: float) -> float:
    return (t1 - t0) * 1000.0
