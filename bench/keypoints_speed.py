"""Speed and size of the facial-keypoint model (ONNX Runtime, no torch) on this machine.

It prints, beside the targets of issue 7 (a model of at most 3 MB, at least 500 faces/s):

1. the model file's size;
2. model faces/s at batch 1 and batch 64 (``LandmarkModel.predict_input`` on normalised 96x96
   test faces of ``shared/data/facial-keypoints`` resized to the model's input: the network alone);
3. engine faces/s of ``LandmarkModel.locate`` (two passes per face: frame warps, two model runs,
   mapping back), one face per call and 8 faces per call, the cost the Analyzer pays per face.

Each figure is the best of ``--repeats`` timed runs of ``--seconds`` each: the run least disturbed
by other work on a shared machine. The load average is printed, since other work slows every figure.

    .venv/bin/python bench/keypoints_speed.py
    .venv/bin/python bench/keypoints_speed.py --model runs/keypoints15/keypoints15.onnx --threads 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emolens.inference.landmarks import LandmarkModel, shipped_landmark_path
from emolens.preprocess import to_model_input

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOLENS_SHARED", REPO.parent / "shared")) / "data"
TARGET_BYTES = 3_000_000
TARGET_FACES_S = 500.0


def test_faces(n: int) -> np.ndarray:
    """The first ``n`` test faces (96x96 gray) of the keypoint data, or seeded noise without it."""
    path = SHARED / "facial-keypoints" / "keypoints68.npz"
    if path.is_file():
        with np.load(path) as z:
            return np.asarray(z["test_images"][:n])
    print(f"({path} not found: timing on noise images)", file=sys.stderr)
    return np.random.default_rng(0).integers(0, 256, (n, 96, 96), dtype=np.uint8)


def best_rate(fn: Callable[[], int], seconds: float, repeats: int) -> float:
    """Items per second of ``fn`` (which returns how many items it did): the best of ``repeats`` runs."""
    fn()  # warm-up
    rates = []
    for _ in range(repeats):
        t0, done = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            done += fn()
        rates.append(done / (time.perf_counter() - t0))
    return max(rates)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="keypoint .onnx (default: the packaged one)")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0 = one per core)")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    path = args.model or shipped_landmark_path()
    if path is None:
        print("no keypoint model: pass --model or ship one in src/emolens/assets", file=sys.stderr)
        return 1
    model = LandmarkModel(path, threads=args.threads)
    m = model.meta
    faces = test_faces(64)
    x = to_model_input(faces, m.input_size, m.channels, m.mean, m.std)
    size = Path(path).stat().st_size
    print(f"model {path} ({m.architecture}, {len(model.names)} points, input {m.input_size[0]}x{m.input_size[1]})")
    print(f"cores {os.cpu_count()}, threads {args.threads or 'default'}, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    ok = "ok" if size <= TARGET_BYTES else "OVER"
    print(f"size                 {size / 1e6:8.2f} MB    (target <= {TARGET_BYTES / 1e6:.0f} MB: {ok})")
    rows = {
        "model, batch 1": lambda: len(model.predict_input(x[:1])),
        "model, batch 64": lambda: len(model.predict_input(x)),
        "engine locate, 1 face": lambda: len(model.locate(faces[0], [(16, 16, 64, 64)])),
        "engine locate, 8 faces": lambda: len(model.locate(np.hstack(list(faces[:8])), [
            (16 + 96 * i, 16, 64, 64) for i in range(8)])),
    }
    for name, fn in rows.items():
        rate = best_rate(fn, args.seconds, args.repeats)
        flag = "" if not name.startswith("model") else f"   (target >= {TARGET_FACES_S:.0f}: " + (
            "ok)" if rate >= TARGET_FACES_S else "BELOW)")
        print(f"{name:<22}{rate:8.0f} faces/s{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
