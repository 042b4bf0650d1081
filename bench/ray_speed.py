"""Files per second on this machine: one process (as ``emolens analyze`` / ``emolens video`` run) vs Ray actors
(:mod:`emolens.cluster.ray_batch`), for the media photos and the six media clips, and the paper estimate
of docs/scale.md: wall time and node-hours for ``--recordings`` recordings of ``--minutes`` each on N nodes.

1. Photos: ``shared/data/media/photos`` repeated ``--image-repeats`` times. One process: the CLI's engine
   (``Analyzer()``, every core, ``analyze_many`` with one decode thread per core). Ray: one actor per core, one
   thread each. Ray's start (``ray.init``) is timed apart; the Ray figure includes building the actors.
2. Clips: the six clips of ``shared/data/media/videos``, each sampled at ``--sample-fps`` frames per second of
   video (the campaign setting) and recorded as ``emolens video --out`` records (CSV, Parquet, tracks,
   timelines). The figure that scales is wall seconds per second of video.
3. The estimate: a node like this one analyses ``video s per wall s`` (the Ray figure: every core busy) of
   video; N nodes N times that (files are independent; Ray's scheduling cost per file is in the measurement).

The machine is shared (the load average is printed first); each figure is the best of ``--repeats`` runs.

    .venv/bin/python bench/ray_speed.py
    .venv/bin/python bench/ray_speed.py --repeats 1 --image-repeats 1 --node-price 0.085
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from emolens.cluster.ray_batch import analyze_images, analyze_videos
from emolens.cluster.worker import EngineSpec, record_video
from emolens.inference.analyzer import Analyzer
from emolens.video.reader import probe_video
from emolens.video.stream import VideoOptions

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOLENS_SHARED", REPO.parent / "shared")) / "data"
PHOTOS = SHARED / "media" / "photos"
VIDEOS = SHARED / "media" / "videos"


def best_of(repeats: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--image-repeats", type=int, default=3, help="times the photo folder is listed")
    ap.add_argument("--sample-fps", type=float, default=2.0)
    ap.add_argument("--recordings", type=int, default=2000)
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--node-price", type=float, default=0.085,
                    help="price of one node-hour in USD (default: a 2-vCPU on-demand cloud VM; give yours)")
    args = ap.parse_args()
    import ray

    cpus = os.cpu_count() or 1
    print(f"machine: {cpus} CPU cores, load average {os.getloadavg()[0]:.2f} at start")
    photos = sorted(str(p) for p in PHOTOS.iterdir() if p.suffix.lower() in (".jpg", ".png")) * args.image_repeats
    clips = sorted(str(p) for p in VIDEOS.iterdir())
    video_s = sum(probe_video(c).duration_s or 0.0 for c in clips)
    options = VideoOptions(smoothing=0.95, sample_fps=args.sample_fps)

    local = Analyzer()
    one_img = best_of(args.repeats, lambda: list(local.analyze_many(photos, workers=min(8, cpus))))
    with tempfile.TemporaryDirectory() as tmp:
        one_vid = best_of(args.repeats, lambda: [record_video(local, c, Path(tmp) / Path(c).stem, options)
                                                 for c in clips])
    t0 = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray_start = time.perf_counter() - t0
    spec = EngineSpec(threads=1)
    ray_img = best_of(args.repeats, lambda: list(analyze_images(photos, spec, progress=False)))
    with tempfile.TemporaryDirectory() as tmp:
        ray_vid = best_of(args.repeats, lambda: list(analyze_videos(clips, tmp, spec, options=options,
                                                                     progress=False)))
    ray.shutdown()

    print(f"ray.init (local, {cpus} CPUs): {ray_start:.1f} s, once per job")
    print(f"photos, {len(photos)} files:  one process {len(photos) / one_img:.2f} files/s   "
          f"Ray ({cpus} actors x 1 thread) {len(photos) / ray_img:.2f} files/s   x{one_img / ray_img:.2f}")
    print(f"clips, {len(clips)} files, {video_s:.1f} s of video at {args.sample_fps:g} samples/s:  "
          f"one process {len(clips) / one_vid:.3f} files/s ({one_vid / video_s:.3f} wall s per video s)   "
          f"Ray {len(clips) / ray_vid:.3f} files/s ({ray_vid / video_s:.3f} wall s per video s)   "
          f"x{one_vid / ray_vid:.2f}")
    per_rec = ray_vid / video_s * args.minutes * 60.0
    one_rec = one_vid / video_s * args.minutes * 60.0
    print(f"one {args.minutes:g}-minute recording: {one_rec:.1f} s of wall time in one process; "
          f"a node analyses one every {per_rec:.1f} s with Ray")
    total_node_h = args.recordings * per_rec / 3600.0
    print(f"estimate for {args.recordings} recordings of {args.minutes:g} min: {total_node_h:.2f} node-hours "
          f"(~${total_node_h * args.node_price:.2f} at ${args.node_price}/node-hour)")
    for n in args.nodes:
        print(f"  {n:>3} node(s): {total_node_h / n * 60.0:8.1f} min of wall time")


if __name__ == "__main__":
    main()
