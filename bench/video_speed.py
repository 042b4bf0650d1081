"""Speed and memory of streamed video analysis (``emolens.video.stream.iter_video``) on this machine.

It prints, beside the project's target (>= 30 fps at 640x360 with every frame classified):

1. for each clip of ``shared/data/media/videos``, frames analysed per wall second with every frame
   classified and with ``--every 3``, against the clip's own frame rate (x real time);
2. what each speed measure buys, on every clip: the naive stream (full-frame detection and an eye
   search on every frame, decoding inline), then region detection between key frames, then the
   per-track eye cache, then the decoding thread: the default stream;
3. the process's resident memory sampled while one clip is looped to ``--soak-minutes`` of video
   time and recorded (CSV, Parquet, tracks, timelines) into a temporary folder: it should stay flat.

Each speed figure is the best of ``--repeats`` runs (the one least disturbed by other work on a
shared machine); the load average at the start is printed, because it matters on 2 cores.

    .venv/bin/python bench/video_speed.py                        # default packaged model
    .venv/bin/python bench/video_speed.py --model m.onnx --soak-minutes 1 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from emolens.inference.analyzer import Analyzer
from emolens.video.outputs import VideoRecorder
from emolens.video.reader import probe_video
from emolens.video.stream import VideoOptions, iter_video

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOLENS_SHARED", REPO.parent / "shared")) / "data"
VIDEOS = SHARED / "media" / "videos"
TARGET_FPS = 30.0
STAGES = ("read", "detect", "track", "align", "classify")

DEFAULT = VideoOptions()
VARIANTS: dict[str, VideoOptions] = {
    "naive (full detect + eye search every frame)": replace(DEFAULT, detect_interval_s=0.0, eyes_interval_s=0.0,
                                                            prefetch=0),
    "+ regions between key frames (0.5 s)": replace(DEFAULT, eyes_interval_s=0.0, prefetch=0),
    "+ eye cache per track (0.5 s)": replace(DEFAULT, prefetch=0),
    "+ decoding thread = default": DEFAULT,
    "default, --every 3": replace(DEFAULT, every=3),
}


def rss_mb() -> float:
    """Current resident memory of this process in MiB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_once(an: Analyzer, clip: Path, options: VideoOptions) -> tuple[float, int, dict[str, float]]:
    """(frames per wall second, frames, mean ms per stage)."""
    sums = dict.fromkeys(STAGES, 0.0)
    n = 0
    t0 = time.perf_counter()
    for frame in iter_video(an, clip, options):
        n += 1
        for k in STAGES:
            sums[k] += frame.timings_ms.get(k, 0.0)
    dt = time.perf_counter() - t0
    return n / dt, n, {k: v / max(n, 1) for k, v in sums.items()}


def best_of(an: Analyzer, clip: Path, options: VideoOptions, repeats: int) -> tuple[float, int, dict[str, float]]:
    runs = [run_once(an, clip, options) for _ in range(repeats)]
    return max(runs, key=lambda r: r[0])


def speed_table(an: Analyzer, clips: list[Path], repeats: int, variants: list[str]) -> None:
    print(f"\n== speed: frames per wall second (best of {repeats}); x = times the clip's own frame rate")
    for clip in clips:
        info = probe_video(clip)
        rate = info.fps or 30.0
        print(f"\n{clip.name}: {info.width}x{info.height}, {rate:.2f} fps, {info.frame_count} frames")
        for name in variants:
            fps, _, stages = best_of(an, clip, VARIANTS[name], repeats)
            split = " ".join(f"{k} {stages[k]:.1f}" for k in STAGES)
            target = ""
            if (info.width, info.height) == (640, 360) and VARIANTS[name].every == 1:
                target = "  [target >= 30 fps: " + ("met]" if fps >= TARGET_FPS else "NOT met]")
            print(f"  {name:<46} {fps:6.1f} fps  x{fps / rate:4.1f}  ms/frame: {split}{target}")


def soak(an: Analyzer, clip: Path, minutes: float, samples: int = 20) -> None:
    """Loop ``clip`` to ``minutes`` of video, recording outputs; print RSS over time."""
    info = probe_video(clip)
    clip_s = info.duration_s or 10.0
    loops = max(1, int(minutes * 60 / clip_s) + 1)
    options = replace(DEFAULT, loop=loops, max_duration_s=minutes * 60)
    print(f"\n== memory: {clip.name} looped to {minutes:g} min of video, recorded to a temporary folder")
    with tempfile.TemporaryDirectory() as tmp:
        stream = iter_video(an, clip, options)
        recorder = VideoRecorder(Path(tmp), an.labels, fps=info.fps)
        step = max(1, int(minutes * 60 * (info.fps or 30.0) / samples))
        points: list[tuple[int, float, float]] = []
        t0 = time.perf_counter()
        for frame in stream:
            recorder.add(frame)
            if frame.index % step == 0:
                points.append((frame.index, frame.time_s, rss_mb()))
        before_close = rss_mb()
        summary = recorder.close(stream.progress)
        wall = time.perf_counter() - t0
        points.append((summary.frames, summary.duration_s, before_close))
        after_close = rss_mb()
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 2**20
    for index, t, mb in points:
        print(f"  frame {index:6d}  video {t / 60:5.2f} min  RSS {mb:7.1f} MiB")
    first = points[len(points) // 5][2]  # after warm-up: a fifth into the run (the first Parquet row group is in)
    peak = max(p[2] for p in points)  # while streaming (the last point: before the outputs are closed)
    print(f"  {summary.frames} frames, {summary.face_rows} face rows, {len(summary.tracks)} track(s) in {wall:.0f} s "
          f"({summary.frames / wall:.1f} fps); outputs {size:.1f} MiB on disk")
    print(f"  streaming: RSS after warm-up {first:.1f} MiB, peak {peak:.1f} MiB, growth {peak - first:+.1f} MiB")
    print(f"  after closing the outputs (tracks, timeline PNGs: matplotlib loaded) {after_close:.1f} MiB; "
          f"ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="ONNX model (default: the packaged one)")
    ap.add_argument("--detector", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--clips", nargs="*", default=None, help="clip file names (default: all in media/videos)")
    ap.add_argument("--variants", choices=["all", "default"], default="all",
                    help="all: every speed measure in turn; default: the default stream and --every 3")
    ap.add_argument("--soak-minutes", type=float, default=10.0, help="video minutes for the memory run (0 = skip)")
    ap.add_argument("--soak-clip", default="fer_woman2.mp4")
    args = ap.parse_args(argv)
    if not VIDEOS.is_dir():
        print(f"no videos at {VIDEOS}", file=sys.stderr)
        return 1
    clips = sorted(VIDEOS.iterdir()) if not args.clips else [VIDEOS / c for c in args.clips]
    an = Analyzer(model=args.model, detector=args.detector, threads=args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{an!r}; {os.cpu_count()} CPUs, load average {load:.2f} at start")
    variants = list(VARIANTS) if args.variants == "all" else ["+ decoding thread = default", "default, --every 3"]
    speed_table(an, clips, args.repeats, variants)
    if args.soak_minutes > 0:
        soak(an, VIDEOS / args.soak_clip, args.soak_minutes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
