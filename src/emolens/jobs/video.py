"""The ``video`` job: analyse an uploaded video in the background and keep every output.

:func:`probe_video` checks an upload before a job is created (OpenCV opens it and decodes one
frame; duration from its frame count and rate when the container tells them). :func:`video_kind`
builds the job kind: it runs :func:`emolens.video.stream.iter_video` with progress reports, feeds every frame
result to a :class:`~emolens.video.outputs.VideoRecorder` writing into the job's folder and
returns the recorder's summary as the job's result. The upload is deleted once the job has ended
(or moved to ``keep_dir``).

Job params (JSON): ``source`` (the client's file name), ``options`` (``every``, ``smoothing``,
``annotate``, ``blur``), ``max_seconds`` (None: no limit) and ``_upload`` (the server path of the
upload; keys starting with ``_`` are server-private and never shown to clients).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import EmolensError, MediaTooLarge
from ..partial import video_warnings
from ..results import FrameResult
from .models import JobRecord
from .runner import JobContext, JobInterrupted, JobKind

log = logging.getLogger(__name__)

VIDEO_KIND = "video"


@dataclass(frozen=True)
class VideoProbe:
    """What a quick look at a video tells: frame size, rate and (when known) length."""

    width: int
    height: int
    fps: float | None
    frames: int | None
    duration_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_video(path: Path, name: str, max_pixels: int | None = None) -> VideoProbe:
    """Open ``path`` with the video reader (OpenCV/FFmpeg) and decode its first frame.

    Raises :class:`UnsupportedMedia` (naming ``name``, the client's file name, never the server
    path) when the file is empty, is not a video or has no decodable frame, and
    :class:`MediaTooLarge` when its frames have more than ``max_pixels`` pixels."""
    from ..video.reader import FrameReader

    try:
        with FrameReader(path, max_pixels=max_pixels) as reader:
            info = reader.info
    except EmolensError as e:
        raise _renamed(e, path, name) from e
    return VideoProbe(info.width, info.height, info.fps, info.frame_count, info.duration_s)


def check_duration(probe: VideoProbe, max_seconds: float | None, name: str) -> None:
    """:class:`MediaTooLarge` when the probed length passes ``max_seconds`` (unknown length passes;
    the job then stops at the limit instead)."""
    if max_seconds is not None and probe.duration_s is not None and probe.duration_s > max_seconds:
        raise MediaTooLarge(f"{name}: the video lasts {probe.duration_s:.1f} s; the limit is {max_seconds:g} s")


class VideoStreamLike(Protocol):
    """What ``iter_video`` returns (:class:`emolens.video.stream.VideoStream`)."""

    def __iter__(self) -> Iterator[FrameResult]: ...

    def with_frames(self) -> Iterator[tuple[FrameResult, Any]]: ...

    def close(self) -> None: ...


class VideoAnalyzer(Protocol):
    """The part of the analyzer a video job uses."""

    @property
    def labels(self) -> Sequence[str]: ...

    def iter_video(self, source: Any, options: Any = None, progress: Any = None) -> VideoStreamLike: ...


class Recorder(Protocol):
    """The part of :class:`emolens.video.outputs.VideoRecorder` a video job uses."""

    def add(self, frame: FrameResult, rgb: Any = None) -> None: ...

    def close(self, stream: Any = None) -> Any: ...


RecorderFactory = Callable[..., Recorder]
"""``factory(out_dir, labels, *, annotate_mp4, blur_faces)`` -> a recorder writing into ``out_dir``."""


def _real_recorder(out_dir: Path, labels: Sequence[str], **kw: Any) -> Recorder:
    from ..video.outputs import VideoRecorder

    recorder: Recorder = VideoRecorder(out_dir, labels, **kw)
    return recorder


def _video_options(options: Mapping[str, Any]) -> Any:
    from ..video.stream import VideoOptions

    return VideoOptions(every=int(options.get("every", 1)), smoothing=float(options.get("smoothing", 0.0)))


def _progress_report(ctx: JobContext) -> Callable[[Any], None]:
    """A progress callback for ``iter_video`` forwarding its figures (:class:`VideoProgress`) to the job."""

    def on_progress(p: Any) -> None:
        figures = asdict(p) if is_dataclass(p) and not isinstance(p, type) else dict(vars(p))
        ended = bool(figures.pop("done", False))
        done, total = figures.get("frames_done"), figures.get("frames_total")
        fraction = done / total if isinstance(done, int) and isinstance(total, int) and total > 0 else None
        message = f"{done} frames analysed" if done is not None else None
        try:
            ctx.report(fraction, message, force=ended, **figures)
        except JobInterrupted:
            if not ended:  # the stream's last report comes while it closes: nothing left to stop
                raise

    return on_progress


def _open_stream(analyzer: Any, upload: Path, options: Any, progress: Any) -> Any:
    """The frame stream of ``upload``: :func:`emolens.video.stream.iter_video` over the engine, or the
    analyzer's own ``iter_video`` when it streams video itself (a test double, a remote backend)."""
    own = getattr(analyzer, "iter_video", None)
    if callable(own):
        return own(upload, options, progress=progress)
    from ..video.stream import iter_video

    return iter_video(analyzer, upload, options, progress)


def _analyse(
    ctx: JobContext, analyzer: VideoAnalyzer, recorder: Recorder, upload: Path, options: Any, limit: float | None
) -> tuple[int, Any]:
    """Feed every frame result (with its RGB frame when the recorder draws) to ``recorder``; returns
    the number of frames and the stream's final progress. A video longer than ``limit`` seconds is
    :class:`MediaTooLarge`."""
    stream = _open_stream(analyzer, upload, options, _progress_report(ctx))
    draw = bool(ctx.params.get("options", {}).get("annotate"))
    frames = 0
    try:
        pairs = stream.with_frames() if draw else ((result, None) for result in stream)
        for frame, rgb in pairs:
            ctx.check()
            if limit is not None and frame.time_s > limit:
                raise MediaTooLarge(f"{ctx.params.get('source')}: the video is longer than the limit of {limit:g} s")
            recorder.add(frame, rgb)
            frames += 1
    finally:
        stream.close()
    return frames, getattr(stream, "progress", None)


def _public_summary(summary: Any, out_dir: Path) -> dict[str, Any]:
    """The recorder's summary as JSON, its ``files`` as names inside the job's folder (no server paths)."""
    body: dict[str, Any] = summary.to_dict() if hasattr(summary, "to_dict") else dict(summary or {})
    files = body.get("files")
    if isinstance(files, Mapping):
        root = out_dir.resolve()
        names = {}
        for key, value in files.items():
            path = Path(str(value)).resolve()
            if path.is_relative_to(root):
                names[key] = path.relative_to(root).as_posix()
        body["files"] = names
    return body


def _private_path(message: str, upload: Path, name: str) -> str:
    return message.replace(str(upload), name)


def _renamed(err: EmolensError, upload: Path, name: str) -> EmolensError:
    """``err`` with the server path of the upload replaced by the client's file name."""
    message = _private_path(str(err), upload, name)
    if message == str(err):
        return err
    try:
        return type(err)(message)
    except TypeError:  # an error class with another signature: keep it as it is
        return err


def video_kind(
    analyzer_for: Callable[[], VideoAnalyzer],
    *,
    recorder_factory: RecorderFactory | None = None,
    options_factory: Callable[[Mapping[str, Any]], Any] | None = None,
    keep_dir: Path | None = None,
) -> JobKind:
    """The ``video`` job kind. ``analyzer_for()`` gives the (shared) analyzer; ``recorder_factory``
    and ``options_factory`` default to :mod:`emolens.video`'s recorder and options (tests swap
    them); ``keep_dir`` keeps each upload there instead of deleting it."""
    make_recorder = recorder_factory or _real_recorder
    make_options = options_factory or _video_options

    def run(ctx: JobContext) -> dict[str, Any]:
        params = ctx.params
        upload, name = Path(params["_upload"]), str(params.get("source") or "video")
        opts = dict(params.get("options") or {})
        analyzer = analyzer_for()
        ctx.report(0.0, "starting", force=True)
        recorder = make_recorder(
            ctx.out_dir,
            tuple(analyzer.labels),
            annotate_mp4=bool(opts.get("annotate")),
            blur_faces=bool(opts.get("blur")),
        )
        try:
            frames, final = _analyse(ctx, analyzer, recorder, upload, make_options(opts), params.get("max_seconds"))
        except EmolensError as e:  # the client knows the file by its own name, not the server path
            _close_quietly(recorder)
            raise _renamed(e, upload, name) from e
        except BaseException:
            _close_quietly(recorder)
            raise
        body = _public_summary(recorder.close(final), ctx.out_dir)
        for warning in video_warnings(final):  # the job ends partial, not succeeded
            ctx.warn(f"{name}: {warning}")
        summary_file = ctx.out_dir / "summary.json"
        if summary_file.is_file():  # the recorder's copy names server paths: keep the public one
            summary_file.write_text(json.dumps(body, indent=2), encoding="utf-8")
        return {"source": name, "frames": frames, "options": opts, "summary": body}

    def cleanup(record: JobRecord) -> None:
        upload = record.params.get("_upload")
        if upload:
            _dispose_upload(Path(upload), record.id, keep_dir)

    return JobKind(VIDEO_KIND, run, cleanup)


def _close_quietly(recorder: Recorder) -> None:
    try:
        recorder.close()
    except Exception:
        log.debug("closing the recorder of a failed job failed too", exc_info=True)


def _dispose_upload(upload: Path, job_id: str, keep_dir: Path | None) -> None:
    """Delete the upload, or move it to ``keep_dir`` as ``<job id><suffix>``."""
    if not upload.exists():
        return
    try:
        if keep_dir is not None:
            keep_dir.mkdir(parents=True, exist_ok=True)
            shutil.move(upload, keep_dir / f"{job_id}{upload.suffix}")
        else:
            upload.unlink()
    except OSError as e:
        log.warning("could not dispose of the upload %s: %s", upload, e)
