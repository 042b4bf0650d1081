"""CLI command ``emolens video PATH | --webcam INDEX``: emotions of every face through a video or live.

A thin shell over :func:`emolens.video.stream.iter_video` and
:class:`emolens.video.outputs.VideoRecorder`: it streams the video, records the outputs into
``--out DIR`` as frames arrive (CSV, Parquet, per-second table, per-track summaries, timelines,
optional annotated H.264 MP4), probabilities smoothed by default (:data:`DEFAULT_SMOOTHING`),
shows a live window when a display exists (otherwise prints a summary line every few
seconds on stderr) with a progress bar, and ends with a table of the tracks (or JSON). Ctrl-C
stops cleanly: everything analysed so far is written and summarised, and the exit code is 130.
A file that cannot be read fails before any frame (exit code 3); one whose frames do not all decode
(or that ends before the frames it announced) is a partial result: outputs written, ``warnings`` in
the JSON, exit code 8. torch is never imported here.

Several files (``emolens video a.mp4 b.mp4 --out ROOT``) are analysed one after the other, each into
``ROOT/<name>/`` (``clip``, ``clip_2`` for a second ``clip.*``); with ``--ray`` / ``--ray-address`` they are
analysed on Ray actors that load the models once (:mod:`emolens.cluster.ray_batch`, cluster extra), writing
the same files. A file that cannot be read is reported with its named error and the others go on: the run
then ends with exit code 8 (partial), or with that error's code when no file could be read.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import EmolensError, InvalidInput, UnsupportedMedia
from ..partial import PARTIAL_EXIT_CODE, video_warnings
from ..video.smoothing import half_life_s
from .walk import pipe_kind

DEFAULT_SMOOTHING = 0.95
"""Default EMA factor of ``emolens video`` (half-life 0.45 s): single-frame flicker is damped while a
change of expression still shows within half a second."""

if TYPE_CHECKING:
    from ..video.outputs import VideoRecorder
    from ..video.stream import VideoOptions, VideoStream
    from ..video.tracksummary import TrackSummary


class VideoFormat(StrEnum):
    """What ``emolens video`` prints on stdout."""

    table = "table"
    json = "json"
    jsonl = "jsonl"


def _progress_bar(stream: VideoStream, force: bool | None) -> Any:
    from tqdm import tqdm

    show = force if force is not None else sys.stderr.isatty()
    total = stream.progress.frames_total
    return tqdm(total=total, file=sys.stderr, disable=not show, unit="frame", leave=False, dynamic_ncols=True)


def _window(show: bool | None, blur: bool, live: bool) -> Any:
    """A LiveWindow when one is wanted and possible, else None (with a note when it was asked for)."""
    from ..video.live import LiveWindow, display_available

    if show is False:
        return None
    if not display_available():
        if show:
            typer.echo("note: no display here (or OpenCV without GUI support): running headless", err=True)
        return None
    if show is None and not live:  # files run headless unless --show
        return None
    return LiveWindow("emolens (q to stop)", blur=blur)


def _run(stream: VideoStream, recorder: VideoRecorder | None, *, window: Any, bar: Any,
         summary_every: float, jsonl: bool) -> tuple[list[TrackSummary] | None, bool]:
    """Consume the stream; returns (track summaries when no recorder built them, interrupted)."""
    from ..video.live import PeriodicReporter
    from ..video.tracksummary import TrackSummaryBuilder

    builder = TrackSummaryBuilder(stream.analyzer.labels, 1.0 / stream.info.fps if stream.info.fps else None)
    reporter = PeriodicReporter(lambda line: bar.write(line, file=sys.stderr),
                                summary_every if window is None else 0.0)
    interrupted = False
    try:
        for frame, rgb in stream.with_frames():
            if recorder is not None:
                recorder.add(frame, rgb)
            else:
                builder.add(frame)
            if jsonl:
                sys.stdout.write(json.dumps(frame.to_dict()) + "\n")
            bar.update(1)
            reporter.add(frame, stream.progress)
            if window is not None and not window.show(rgb, frame):
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stream.close()
        if window is not None:
            window.close()
        bar.close()
    return (None if recorder is not None else builder.build()), interrupted


def _outcome(stream: VideoStream, recorder: VideoRecorder | None,
             built: list[TrackSummary] | None) -> tuple[list[TrackSummary], dict[str, Any]]:
    """(track summaries, the JSON body printed with ``--format json``); closes the recorder."""
    if recorder is not None:
        summary = recorder.close(stream.progress)
        tracks, body = list(summary.tracks), summary.to_dict()
    else:
        tracks = built or []
        body = {"frames": stream.progress.frames_done, "tracks": [t.to_dict() for t in tracks],
                "stream": stream.progress.to_dict()}
    body["source"] = stream.info.source
    return tracks, body


def _final_line(stream: VideoStream, n_tracks: int, out: Path | None) -> str:
    return _progress_line(stream.progress, n_tracks, out)


def _progress_line(p: Any, n_tracks: int, out: Path | None) -> str:
    """The closing line of one video from its final progress (a VideoProgress, or its dict as attributes)."""
    line = (f"{p.frames_done} frames ({p.time_s:.1f} s of video) in {p.elapsed_s:.1f} s, {p.fps:.1f} fps; "
            f"{n_tracks} track(s), {p.broken_frames} broken frame(s)")
    if p.missing_frames:
        line += f"; {p.missing_frames} frame(s) the file announced never came (truncated?)"
    if p.dropped_frames:
        line += f"; {p.dropped_frames} camera frame(s) dropped to keep up"
    return line + (f"; outputs in {out}" if out is not None else "")


def _print_result(fmt: VideoFormat, tracks: list[TrackSummary], body: dict[str, Any]) -> None:
    from .output import print_table

    if fmt is VideoFormat.json:
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    if fmt is VideoFormat.jsonl:
        return
    rows = [[f"#{t.track_id}", f"{t.first_seen_s:.2f}", f"{t.last_seen_s:.2f}", f"{t.on_screen_s:.1f}",
             t.top_emotion, f"{t.emotion_shares[t.top_emotion]:.0%}"] for t in tracks]
    print_table(sys.stdout, ["track", "first (s)", "last (s)", "on screen (s)", "top emotion", "share"], rows,
                title=f"{len(tracks)} face track(s)")


def _engine(model: str | None, detector: str, threads: int, no_align: bool, no_keypoints: bool, max_yaw: float,
            max_pitch: float) -> dict[str, Any]:
    """The engine options, as :class:`~emolens.cluster.worker.EngineSpec` fields (threads: as given)."""
    return dict(model=model, detector=detector, threads=threads, align=not no_align, keypoints=not no_keypoints,
                max_yaw=max_yaw, max_pitch=max_pitch)


def _analyzer(engine: dict[str, Any]) -> Any:
    from ..inference.analyzer import Analyzer
    from ..inference.headpose import AttentionLimits

    return Analyzer(model=engine["model"], detector=engine["detector"], threads=engine["threads"],
                    align=engine["align"], keypoints=None if engine["keypoints"] else False,
                    attention=AttentionLimits(engine["max_yaw"], engine["max_pitch"]))


class _Batch:
    """Several video files (or ``--ray``): each analysed as the single-file command does, into its own
    folder under ``--out``; its tracks (table) or its body (JSON) printed, a failed file reported with its
    named error and the run going on. Exit: 0 when every file is whole, 8 (partial) when a file failed or
    lost frames, the first error's code when none could be read, 130 after Ctrl-C."""

    def __init__(self, files: list[str], out: Path | None, fmt: VideoFormat) -> None:
        from ..cluster.ray_batch import output_folders

        self.files, self.out, self.fmt = files, out, fmt
        if out is None:
            self.folders: list[Path | None] = [None] * len(files)
        else:  # one file: --out is its folder, as without --ray; several: OUT/<name>/
            self.folders = [out] if len(files) == 1 else list(output_folders(files, out))
        self.bodies: list[dict[str, Any]] = []
        self.errors: list[tuple[str, EmolensError]] = []

    def local(self, engine: dict[str, Any], options: VideoOptions, *, annotate: bool, blur: bool,
              progress: bool | None, summary_every: float) -> bool:
        """Analyse the files one after the other in this process; False when Ctrl-C stopped the batch."""
        from ..video.outputs import VideoRecorder
        from ..video.stream import iter_video

        analyzer = _analyzer(engine)
        for path, folder in zip(self.files, self.folders, strict=True):
            try:
                stream = iter_video(analyzer, path, options)
                recorder = None
                if folder is not None:
                    recorder = VideoRecorder(folder, analyzer.labels, annotate_mp4=annotate, blur_faces=blur,
                                             fps=stream.info.fps)
                built, interrupted = _run(stream, recorder, window=None, bar=_progress_bar(stream, progress),
                                          summary_every=summary_every, jsonl=False)
                _, body = _outcome(stream, recorder, built)
            except EmolensError as err:
                self.failed(path, err)
                continue
            body["interrupted"] = interrupted
            self.done(body, stream.progress, folder)
            if interrupted:
                return False
        return True

    def on_ray(self, engine: dict[str, Any], options: VideoOptions, *, annotate: bool, blur: bool,
               progress: bool | None, address: str | None) -> None:
        """Analyse the files on Ray actors (:func:`emolens.cluster.ray_batch.analyze_videos`), in input order."""
        from types import SimpleNamespace

        from ..cluster.ray_batch import analyze_videos
        from ..cluster.worker import EngineSpec

        folders = [f for f in self.folders if f is not None]
        if len(folders) != len(self.files):
            raise InvalidInput("--ray writes each video's outputs into a folder: give --out ROOT")
        spec = EngineSpec(**{**engine, "threads": max(1, engine["threads"])})
        for o in analyze_videos(self.files, None, spec, options=options, annotate=annotate, blur=blur,
                                folders=folders, address=address, progress=progress):
            if o.error is not None:
                self.failed(o.path, o.error)
                continue
            body = dict(o.value)
            body["interrupted"] = False
            self.done(body, SimpleNamespace(**body["stream"]), self.folders[o.index])

    def failed(self, path: str, err: EmolensError) -> None:
        msg = str(err) or type(err).__name__
        typer.echo(f"error: {msg}" if path in msg else f"error: {path}: {msg}", err=True)
        self.errors.append((path, err))

    def done(self, body: dict[str, Any], progress: Any, folder: Path | None) -> None:
        body["warnings"] = video_warnings(progress)
        self.bodies.append(body)
        if self.fmt is VideoFormat.table:
            _print_track_rows(body)
        typer.echo(f"{body['source']}: " + _progress_line(progress, len(body["tracks"]), folder), err=True)

    def finish(self, interrupted: bool) -> None:
        """Print the JSON (``-f json``) and the closing lines; exit with the batch's code."""
        if self.fmt is VideoFormat.json:
            errors = [{"source": p, "error": type(e).__name__, "message": str(e)} for p, e in self.errors]
            sys.stdout.write(json.dumps({"videos": self.bodies, "errors": errors}, indent=2) + "\n")
        n = len(self.files)
        where = f"; outputs in {self.out}" if self.out is not None else ""
        typer.echo(f"{len(self.bodies)} of {n} video(s) analysed, {len(self.errors)} failed{where}", err=True)
        if interrupted:
            typer.echo("interrupted: results so far are written", err=True)
            raise typer.Exit(130)
        if not self.bodies:
            first = self.errors[0][1]
            raise type(first)(f"none of the {n} video(s) could be read; first: {first}")
        lossy = [b["source"] for b in self.bodies if b["warnings"]]
        if self.errors or lossy:
            parts = [f"{len(self.errors)} video(s) could not be read"] if self.errors else []
            parts += [f"{len(lossy)} video(s) with frames missing"] if lossy else []
            typer.echo("partial: " + "; ".join(parts), err=True)
            raise typer.Exit(PARTIAL_EXIT_CODE)


def _print_track_rows(body: dict[str, Any]) -> None:
    """One video's track table (from its body's ``tracks`` dicts), titled with the video."""
    from .output import print_table

    tracks = body["tracks"]
    rows = [[f"#{t['track_id']}", f"{t['first_seen_s']:.2f}", f"{t['last_seen_s']:.2f}", f"{t['on_screen_s']:.1f}",
             t["top_emotion"], f"{t['emotion_shares'][t['top_emotion']]:.0%}"] for t in tracks]
    print_table(sys.stdout, ["track", "first (s)", "last (s)", "on screen (s)", "top emotion", "share"], rows,
                title=f"{body['source']}: {len(tracks)} face track(s)")


def _quiet_native_logs() -> None:
    """Keep OpenCV's and FFmpeg's own warnings off the terminal (our errors say what went wrong);
    variables already set by the user win."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


def register(app: typer.Typer) -> None:
    """Add ``video`` to the app."""

    @app.command("video")
    def video(
        paths: list[str] | None = typer.Argument(
            None, help="video file(s) (any container/codec FFmpeg reads); with several, --out ROOT holds one "
                       "folder per file (ROOT/<name>/)"),
        webcam: int | None = typer.Option(None, "--webcam", min=0, help="analyse this webcam instead of a file"),
        out: Path | None = typer.Option(
            None, "--out", help="write frames.csv/.parquet, tracks, timelines here (several files: OUT/<name>/ each)"),
        every: int = typer.Option(1, "--every", min=1, help="classify every Nth frame (track on all)"),
        smoothing: float = typer.Option(
            DEFAULT_SMOOTHING, "--smoothing", min=0.0, max=0.99,
            help=f"EMA factor per 1/30 s for probabilities; the default {DEFAULT_SMOOTHING} has a half-life of "
                 f"{half_life_s(DEFAULT_SMOOTHING):.2f} s (0 = raw)"),
        no_smoothing: bool = typer.Option(False, "--no-smoothing",
                                          help="raw per-frame probabilities (same as --smoothing 0)"),
        annotate: bool = typer.Option(False, "--annotate", help="also write annotated.mp4 into --out"),
        blur: bool = typer.Option(False, "--blur", help="blur faces in the annotated video and window"),
        model: str | None = typer.Option(None, "--model", help="ONNX file or packaged model name"),
        detector: str = typer.Option("auto", "--detector", help="face detector name"),
        max_seconds: float | None = typer.Option(None, "--max-seconds", min=0.001, help="stop after this much video"),
        show: bool | None = typer.Option(None, "--show/--no-show",
                                         help="live window (default: for webcams when a display exists)"),
        fmt: VideoFormat = typer.Option(VideoFormat.table, "--format", "-f", help="what to print on stdout"),
        summary_every: float = typer.Option(5.0, "--summary-every", min=0.0,
                                            help="seconds between summary lines on stderr when headless (0 = off)"),
        progress: bool | None = typer.Option(None, "--progress/--no-progress", help="progress bar (default: on a tty)"),
        loop: int = typer.Option(1, "--loop", min=1, help="play the file this many times (soak tests)"),
        threads: int = typer.Option(0, "--threads", min=0,
                                    help="ONNX Runtime threads per model (0 = one, measured fastest here)"),
        no_align: bool = typer.Option(False, "--no-align", help="do not rotate faces upright first"),
        no_keypoints: bool = typer.Option(
            False, "--no-keypoints", help="skip the facial-keypoint model (no keypoints/roll in the output)"
        ),
        max_yaw: float = typer.Option(30.0, "--max-yaw", min=0.1, max=90.0,
                                      help="a face is 'looking' at the camera within this yaw (degrees)"),
        max_pitch: float = typer.Option(25.0, "--max-pitch", min=0.1, max=90.0,
                                        help="... and within this pitch (degrees)"),
        use_ray: bool = typer.Option(False, "--ray", help="analyse the files on a local Ray (cluster extra)"),
        ray_address: str | None = typer.Option(
            None, "--ray-address", help="... or on this Ray cluster (e.g. ray://head:10001; implies --ray)"
        ),
    ) -> None:
        """Follow every face through videos (or a webcam) and read their emotions frame by frame."""
        files = list(paths or [])
        if (not files) == (webcam is None):
            raise InvalidInput("give either video PATH(s) or --webcam INDEX (exactly one)")
        for p in files:
            if (pipe := pipe_kind(p)) is not None:  # opening it would block forever
                raise UnsupportedMedia(f"{p} is {pipe}, not a video file")
        if annotate and out is None:
            raise InvalidInput("--annotate writes annotated.mp4 into the --out folder: give --out DIR")
        on_ray = use_ray or ray_address is not None
        if (len(files) > 1 or on_ray) and (show or fmt is VideoFormat.jsonl):
            raise InvalidInput("--show and -f jsonl follow one video as it plays: not with several files or --ray "
                               "(use -f json, or read OUT/<name>/frames.csv)")
        if on_ray and out is None:
            raise InvalidInput("--ray writes each video's outputs into a folder: give --out ROOT")
        if on_ray:
            from ..cluster.ray_batch import require_ray

            require_ray()  # a missing cluster extra is named before any work
        _quiet_native_logs()
        from ..video.outputs import VideoRecorder
        from ..video.stream import VideoOptions, iter_video

        options = VideoOptions(every=every, smoothing=0.0 if no_smoothing else smoothing, max_duration_s=max_seconds,
                               loop=loop)
        engine = _engine(model, detector, threads, no_align, no_keypoints, max_yaw, max_pitch)
        if len(files) > 1 or on_ray:
            batch = _Batch(files, out, fmt)
            whole = True
            if on_ray:  # one actor per --threads CPUs (default 1), the files written as without --ray
                batch.on_ray(engine, options, annotate=annotate, blur=blur, progress=progress, address=ray_address)
            else:
                whole = batch.local(engine, options, annotate=annotate, blur=blur, progress=progress,
                                    summary_every=summary_every)
            batch.finish(interrupted=not whole)
            return
        path = files[0] if files else None
        analyzer = _analyzer(engine)
        stream = iter_video(analyzer, path if path is not None else int(webcam or 0), options)
        recorder = None
        if out is not None:
            recorder = VideoRecorder(out, analyzer.labels, annotate_mp4=annotate, blur_faces=blur, fps=stream.info.fps)
        window = _window(show, blur, stream.info.live)
        if blur and not annotate and window is None:
            typer.echo("note: --blur applies to --annotate and the live window; neither is on", err=True)
        bar = _progress_bar(stream, progress)
        built, interrupted = _run(stream, recorder, window=window, bar=bar, summary_every=summary_every,
                                  jsonl=fmt is VideoFormat.jsonl)
        tracks, body = _outcome(stream, recorder, built)
        body["interrupted"] = interrupted
        body["warnings"] = video_warnings(stream.progress)  # frames missing: a partial result (exit 8)
        _print_result(fmt, tracks, body)
        typer.echo(_final_line(stream, len(tracks), out), err=True)
        if interrupted:
            typer.echo("interrupted: results so far are written", err=True)
            raise typer.Exit(130)
        if body["warnings"]:
            typer.echo("partial: " + "; ".join(body["warnings"]), err=True)
            raise typer.Exit(PARTIAL_EXIT_CODE)
