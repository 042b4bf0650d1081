"""Ship a trained emotion model as one of the packaged ones: export (float32 + int8, parity checked),
fit the temperature on the validation split, copy the int8 file into src/emolens/assets and point
models.json at it. Then re-derive the card's numbers from the shipped file:
``python bench/accuracy.py --json accuracy.json --figures docs/models``.

    .venv/bin/python scripts/ship_model.py fer7 ~/emolens-runs/fer2013_vgg_teacher/best.pt \
        --description "7 FER2013 emotions; VGG (width 0.5) trained on the CPU (configs/fer2013_vgg_teacher.yaml)"

The model keeps its name (``fer7``, ``ferplus8``): the file name gains the architecture
(``fer7_vgg.int8.onnx``). The exports stay in runs/exports/ (float32 beside int8, for the card's
float32 column).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "emolens" / "assets"
FER = "../shared/data/fer2013/fer2013.csv.gz"
VOTES = "../shared/data/ferplus/fer2013new.csv"


def emolens(*args: str) -> None:
    cmd = [sys.executable, "-m", "emolens", *args]
    print("+ emolens", " ".join(args), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", help="packaged model name in models.json (fer7, ferplus8)")
    ap.add_argument("checkpoint", help="best.pt of the run (chosen on the validation split)")
    ap.add_argument("--description", required=True, help="models.json description")
    args = ap.parse_args()

    sys.path.insert(0, str(REPO / "src"))
    from emolens.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    stem = f"{args.name}_{ckpt.config.model.arch}"
    data = ["--data", FER, "--dataset", ckpt.config.data.dataset]
    if ckpt.config.data.dataset == "ferplus":
        data += ["--labels", VOTES]
    exports = REPO / "runs" / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    emolens("export", "--checkpoint", str(args.checkpoint), "--out", str(exports / f"{stem}.onnx"), *data,
            "--split", "test", "--int8")
    int8 = exports / f"{stem}.int8.onnx"
    emolens("calibrate", str(int8), *data, "--split", "val")

    index_path = ASSETS / "models.json"
    index = json.loads(index_path.read_text())
    (entry,) = [m for m in index["models"] if m["name"] == args.name]
    old = ASSETS / entry["file"]
    (ASSETS / int8.name).write_bytes(int8.read_bytes())
    if old.name != int8.name and old.exists():
        old.unlink()
    entry["file"], entry["description"] = int8.name, args.description
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    replaced = f"; {old.name} removed" if old.name != int8.name else ""
    own = next((h.get("val_acc") for h in ckpt.history if int(h.get("epoch", -1)) == ckpt.epoch), None)
    at = f"val acc {own:.4f}" if own is not None else "val acc not in the history"
    print(f"shipped {args.name}: src/emolens/assets/{int8.name} (epoch {ckpt.epoch}, {at}; the run's best val acc "
          f"{ckpt.best_metric:.4f})" + replaced)
    return 0


if __name__ == "__main__":
    sys.exit(main())
