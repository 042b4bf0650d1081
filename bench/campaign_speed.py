"""Campaign analysis speed: recordings per minute for N one-minute recordings, growth with N, cached re-run.

    .venv/bin/python bench/campaign_speed.py                       # N = 1 2 4 at 2 sampled fps
    .venv/bin/python bench/campaign_speed.py --n 1 2 4 8 --sample-fps 5

Builds max(N) one-minute viewer recordings in a temporary folder by looping a real clip of
``../shared/data/media/videos`` (each viewer starts at another point of the loop, odd viewers
mirrored), or from generated frames when the media is absent. For each N it analyses a campaign of
the first N recordings (one 55 s ad starting 2 s into each recording) with a fresh cache and the
packaged model, then fits time = a + b·N (least squares) and prints the worst relative deviation
from the line, and finally re-runs the largest campaign with its cache in place.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOLENS_SHARED", REPO.parent / "shared")) / "data" / "media" / "videos"
CLIP = "fer_woman2.mp4"
SECONDS, AD_S, OFFSET_S = 60.0, 55.0, 2.0


def source_frames(fps: float) -> tuple[list[np.ndarray], float]:
    """The BGR frames of the source clip and its fps (generated frames when the clip is absent)."""
    path = SHARED / CLIP
    cap = cv2.VideoCapture(str(path))
    frames = []
    while cap.isOpened():
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(bgr, (bgr.shape[1] // 2 * 2, bgr.shape[0] // 2 * 2)))
    rate = float(cap.get(cv2.CAP_PROP_FPS) or fps)
    cap.release()
    if frames:
        return frames, rate
    print(f"note: {path} not found: generated frames (no real faces)")
    yy, xx = np.mgrid[0:336, 0:596]
    return [np.dstack([(xx + 4 * i) % 256, (yy + 2 * i) % 256, np.full_like(xx, 90)]).astype(np.uint8)
            for i in range(int(fps * 4))], fps


def write_recordings(folder: Path, n: int) -> list[Path]:
    """``n`` one-minute recordings made by looping the source clip."""
    frames, fps = source_frames(30.0)
    total = int(SECONDS * fps)
    paths = []
    for v in range(n):
        path = folder / f"viewer{v:02d}.mp4"
        h, w = frames[0].shape[:2]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
        start = v * len(frames) // max(n, 1)
        for i in range(total):
            bgr = frames[(start + i) % len(frames)]
            writer.write(bgr[:, ::-1] if v % 2 else bgr)
        writer.release()
        paths.append(path)
    return paths


def write_manifest(folder: Path, recordings: list[Path], name: str) -> Path:
    lines = ["ads:", f"  - {{name: spot, duration_s: {AD_S}}}", "recordings:"]
    lines += [f"  - {{viewer: v{i}, ad: spot, recording: {p}, offset_s: {OFFSET_S}}}" for i, p in enumerate(recordings)]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1, 2, 4], help="campaign sizes (recordings)")
    ap.add_argument("--sample-fps", type=float, default=2.0, help="video frames analysed per second")
    ap.add_argument("--bootstrap", type=int, default=500)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from emolens import Analyzer
    from emolens.campaign import CampaignSettings, analyze_campaign

    analyzer = Analyzer()
    settings = CampaignSettings(sample_fps=args.sample_fps, bootstrap=args.bootstrap)
    print(f"model {analyzer.model_name}, detector {getattr(analyzer.detector, 'name', '?')}, "
          f"sample_fps {args.sample_fps}, {os.cpu_count()} CPU(s), {SECONDS:.0f} s recordings, {AD_S:.0f} s ad")
    with tempfile.TemporaryDirectory(prefix="emolens-campaign-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        recordings = write_recordings(root, max(args.n))
        print(f"wrote {len(recordings)} recordings in {time.perf_counter() - t0:.1f} s")
        times = []
        for n in args.n:
            manifest = write_manifest(root, recordings[:n], f"n{n}")
            t0 = time.perf_counter()
            analyze_campaign(manifest, root / f"out{n}", analyzer, settings, progress=False)
            dt = time.perf_counter() - t0
            times.append(dt)
            print(f"N={n:3d}: {dt:7.1f} s, {dt / n:6.1f} s per recording, {60 * n / dt:6.2f} recordings/min")
        if len(args.n) >= 2:
            b, a = np.polyfit(args.n, times, 1)
            fitted = a + b * np.asarray(args.n)
            worst = float(np.max(np.abs(np.asarray(times) - fitted) / fitted))
            t = np.asarray(times)
            r2 = 1 - np.sum((t - fitted) ** 2) / max(float(np.sum((t - t.mean()) ** 2)), 1e-12)
            print(f"fit: time = {a:.1f} s + {b:.1f} s x N (R^2 {r2:.4f}, worst deviation {worst:.1%}); "
                  f"{60 / b:.2f} recordings/min at scale")
        n = max(args.n)
        t0 = time.perf_counter()
        res = analyze_campaign(root / f"n{n}.yaml", root / f"out{n}", analyzer, settings, progress=False)
        dt = time.perf_counter() - t0
        print(f"cached re-run N={n}: {dt:.2f} s ({res.analysed} analysed, {res.from_cache} from the cache)")


if __name__ == "__main__":
    main()
