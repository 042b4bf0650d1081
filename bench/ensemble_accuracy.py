"""Is an ensemble worth distilling? Accuracy of each model and of their averaged logits, on val and test.

Before spending CPU hours on a student distilled from several runs (``distill.teacher: a, b``), this
prints what the teacher the student would learn from scores: each member alone and the mean of their
logits (exactly what :class:`emolens.train.distill.Ensemble` gives the student), single crop, on the
validation split (which chooses) and on the test split (reported), with macro-F1 and the ECE after a
temperature fitted on val. The val NLL after that temperature (a proper score: it rewards accuracy and
calibration both) is what chooses between checkpoints of a calibration phase (MODEL_CARD.md). The
data come from a training config (the run's own ``config.yaml`` or ``configs/X.yaml``), so a FER+
config scores the FER+ majority-vote rows.

    .venv/bin/python bench/ensemble_accuracy.py --config configs/ferplus_vgg_finetune2.yaml \\
        ~/emolens-runs/ferplus_vgg_finetune/best.pt ~/emolens-runs/ferplus_vgg_finetune2/best.pt

Exit status 0, or 2 with one line on stderr when a model or the data is missing or does not fit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score

from emolens.config import load_config
from emolens.data import load_dataset
from emolens.data.base import Split
from emolens.errors import EmolensError
from emolens.evaluation.metrics import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
)
from emolens.train.distill import Teacher
from emolens.train.tensors import split_tensors


def logits_of(teacher: Teacher, split: Split, batch: int = 512) -> np.ndarray:
    """The teacher's logits on a split, its images laid out as the trainer lays them out."""
    size, channels = teacher.meta.input_size[0], teacher.meta.channels
    x = split_tensors(split, teacher.meta.num_classes, size, channels).x
    return torch.cat([teacher(x[i:i + batch]) for i in range(0, len(x), batch)]).numpy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help=".pt checkpoints or .onnx models with the same labels")
    ap.add_argument("--config", required=True, help="a training config naming the dataset (data section)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = load_config(args.config)
        ds = load_dataset(cfg.data, seed=cfg.seed)
        size, ch = cfg.data.image_size, cfg.data.channels
        members = [Teacher(m, tuple(ds.labels), size, ch, torch.device("cpu"), "fp32") for m in args.models]
        val, test = ds.split("val"), ds.split("test")
        z_val = [logits_of(t, val) for t in members]
        z_test = [logits_of(t, test) for t in members]
    except EmolensError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = [(Path(m).parent.name + "/" + Path(m).name, zv, zt) for m, zv, zt in
            zip(args.models, z_val, z_test, strict=True)]
    if len(members) > 1:
        rows.append((f"mean of {len(members)} (logits)", np.mean(z_val, 0), np.mean(z_test, 0)))
    print(f"{ds.name}: val {len(val.labels)} rows, test {len(test.labels)} rows; single crop")
    print(f"{'model':<48} {'val acc':>8} {'val NLL':>8} {'test acc':>8} {'test mF1':>8} {'T':>6} {'test ECE':>8}")
    for name, zv, zt in rows:
        t = fit_temperature(zv, val.labels, kind="logits")
        val_nll = negative_log_likelihood(val.labels, apply_temperature(zv, t, kind="logits"))
        pred = zt.argmax(1)
        ece = expected_calibration_error(test.labels, apply_temperature(zt, t, kind="logits"))
        mf1 = f1_score(test.labels, pred, average="macro", labels=range(len(ds.labels)), zero_division=0)
        print(f"{name:<48} {(zv.argmax(1) == val.labels).mean():8.4f} {val_nll:8.4f} "
              f"{(pred == test.labels).mean():8.4f} {mf1:8.4f} {t:6.3f} {ece:8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
