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
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import InvalidInput, UnsupportedMedia
from ..partial import PARTIAL_EXIT_CODE, video_warnings
from ..video.smoothing import half_life_s
from .walk import pipe_kind

DEFAULT_SMOOTHING = 0.95
"""Default EMA factor of ``emolens video`` (half-life 0.45 s): single-frame flicker is damped while a
change of expression still shows within half a second."""

if TYPE_CHECKING:
    from ..video.outputs import VideoRecorder
    from ..video.stream import VideoStream
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
    p = stream.progress
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


def _quiet_native_logs() -> None:
    """Keep OpenCV's and FFmpeg's own warnings off the terminal (our errors say what went wrong);
    variables already set by the user win."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


def register(app: typer.Typer) -> None:
    """Add ``video`` to the app."""

    @app.command("video")
    def video(
        path: str | None = typer.Argument(None, help="video file (any container/codec FFmpeg reads)"),
        webcam: int | None = typer.Option(None, "--webcam", min=0, help="analyse this webcam instead of a file"),
        out: Path | None = typer.Option(None, "--out", help="write frames.csv/.parquet, tracks, timelines here"),
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
    ) -> None:
        """Follow every face through a video (or webcam) and read its emotions frame by frame."""
        if (path is None) == (webcam is None):
            raise InvalidInput("give either a video PATH or --webcam INDEX (exactly one)")
        if path is not None and (pipe := pipe_kind(path)) is not None:  # opening it would block forever
            raise UnsupportedMedia(f"{path} is {pipe}, not a video file")
        if annotate and out is None:
            raise InvalidInput("--annotate writes annotated.mp4 into the --out folder: give --out DIR")
        _quiet_native_logs()
        from ..inference.analyzer import Analyzer
        from ..inference.headpose import AttentionLimits
        from ..video.outputs import VideoRecorder
        from ..video.stream import VideoOptions, iter_video

        options = VideoOptions(every=every, smoothing=0.0 if no_smoothing else smoothing, max_duration_s=max_seconds,
                               loop=loop)
        analyzer = Analyzer(model=model, detector=detector, threads=threads, align=not no_align,
                            keypoints=False if no_keypoints else None, attention=AttentionLimits(max_yaw, max_pitch))
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
