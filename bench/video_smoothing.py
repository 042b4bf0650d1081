"""How steady `emolens video` timelines are, raw and with the default smoothing.

    .venv/bin/python bench/video_smoothing.py                                   # fer_woman2.mp4, first 10 s
    .venv/bin/python bench/video_smoothing.py --clip ../shared/data/media/videos/fer_test.mp4 --seconds 5

Runs ``emolens video CLIP --max-seconds S`` twice (``--no-smoothing``, then the default smoothing) into
a temporary folder and prints, for the longest track of each run: the median and 95th percentile of
the largest change of any label's probability between consecutive frames, and the largest range of
any label's probability within any 0.1 s window.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media" / "videos" / "fer_woman2.mp4"


def steadiness(frames_csv: Path) -> tuple[int, float, float, float]:
    """(frames, median step, p95 step, max range within 0.1 s) of the longest track."""
    f = pd.read_csv(frames_csv)
    f = f[f["track_id"] == f["track_id"].value_counts().idxmax()].sort_values("time_s")
    labels = json.loads((frames_csv.parent / "summary.json").read_text())["labels"]
    p = f[labels].to_numpy(dtype=float)
    step = np.abs(np.diff(p, axis=0)).max(axis=1)
    t = f["time_s"].to_numpy(dtype=float)
    ends = np.searchsorted(t, t + 0.1, side="right")
    window = max(((p[i:j].max(axis=0) - p[i:j].min(axis=0)).max() for i, j in enumerate(ends)), default=0.0)
    return len(f), float(np.median(step)), float(np.percentile(step, 95)), float(window)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in (("raw (--no-smoothing)", ["--no-smoothing"]), ("default smoothing", [])):
            out = Path(tmp) / name.split()[0]
            subprocess.run([sys.executable, "-m", "emolens", "video", str(args.clip), "--out", str(out),
                            "--max-seconds", str(args.seconds), "--no-progress", "--summary-every", "0", *flags],
                           check=True, stdout=subprocess.DEVNULL)
            n, med, p95, win = steadiness(out / "frames.csv")
            print(f"{name:22s} frames {n:4d}  frame-to-frame change: median {med:.3f}, p95 {p95:.3f}; "
                  f"largest range within 0.1 s {win:.3f}")


if __name__ == "__main__":
    main()
