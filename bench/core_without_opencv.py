"""The core install (no OpenCV: emolens.imgops on numpy) against the same engine with OpenCV: speed and
agreement on the media photos.

Each side runs in its own process (``sys.modules['cv2'] = None`` hides OpenCV from the first), builds the
default Analyzer, analyses every photo once to warm up, then ``--repeats`` times; the best run counts.

    .venv/bin/python bench/core_without_opencv.py
    .venv/bin/python bench/core_without_opencv.py --photos ../shared/data/media/photos --repeats 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = REPO.parent / "shared" / "data" / "media" / "photos"

WORKER = """
import json, sys, time
from pathlib import Path
if sys.argv[1] == "numpy":
    sys.modules["cv2"] = None
from emolens import Analyzer
from emolens.inference.imageio import load_image
files = sorted(p for p in Path(sys.argv[2]).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
images = [load_image(p).rgb for p in files]
an = Analyzer()
results = [an.analyze(img) for img in images]
best = float("inf")
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    for img in images:
        an.analyze(img)
    best = min(best, time.perf_counter() - t)
faces = [[{"box": list(f.box), "emotion": f.emotion, "p": dict(f.probabilities)} for f in r.faces] for r in results]
print(json.dumps({"images_per_s": len(images) / best, "n": len(images), "faces": faces}))
"""


def run(side: str, photos: Path, repeats: int) -> dict:
    out = subprocess.run([sys.executable, "-c", WORKER, side, str(photos), str(repeats)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if not args.photos.is_dir():
        print(f"no photo folder at {args.photos}", file=sys.stderr)
        return 2
    got = {side: run(side, args.photos, args.repeats) for side in ("numpy", "opencv")}
    for side, r in got.items():
        print(f"{side:<7} {r['images_per_s']:7.1f} images/s  ({r['n']} photos, decoded beforehand, best of "
              f"{args.repeats}, one image at a time)")
    pairs = [(a, b) for fa, fb in zip(got["numpy"]["faces"], got["opencv"]["faces"], strict=True)
             for a, b in zip(fa, fb, strict=False)]
    counts = [len(f) for f in got["numpy"]["faces"]], [len(f) for f in got["opencv"]["faces"]]
    box = [max(abs(u - v) for u, v in zip(a["box"], b["box"], strict=True)) for a, b in pairs]
    prob = [max(abs(a["p"][k] - b["p"][k]) for k in a["p"]) for a, b in pairs]
    same = sum(a["emotion"] == b["emotion"] for a, b in pairs)
    print(f"faces: {sum(counts[0])} without OpenCV, {sum(counts[1])} with; same count on "
          f"{sum(x == y for x, y in zip(*counts, strict=True))} of {len(counts[0])} photos")
    print(f"same emotion on {same} of {len(pairs)} faces; box difference max {max(box, default=0):.0f} px; "
          f"largest probability difference median {np.median(prob) if prob else 0:.4f}, max {max(prob, default=0):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
