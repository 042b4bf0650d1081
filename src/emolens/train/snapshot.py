"""Compact, resumable snapshots of a training run, small enough to commit.

A run's ``last.pt`` holds the evaluated weights, the raw training weights, the weight average and the
optimizer's momentum in float32 (35 MB for the width-0.5 VGG teacher). A snapshot keeps only what a
changed machine needs to carry on: the evaluated weights (the weight average when ``optim.ema`` is on)
in float16, the config, the epoch reached, the LR schedule's state and the history (about 5 MB for the
same teacher). It is a valid checkpoint (:func:`~.checkpoint.load_checkpoint` reads it; it exports,
evaluates and serves as a distillation teacher like any ``best.pt``), marked ``extra["snapshot"]``.

Resuming from a snapshot (:func:`seed_run`, then ``Trainer.fit(resume=True)``) restarts the raw
weights and the average from the snapshot's weights and the momentum from zero, at the same epoch
and learning rate: the run loses the few epochs of noise the average had smoothed, not its progress.

    emolens snapshot ~/emolens-runs/fer2013_vgg_teacher --out snapshots/fer2013_vgg_teacher.pt
    emolens train --resume --out ~/emolens-runs/fer2013_vgg_teacher --from-snapshot snapshots/fer2013_vgg_teacher.pt
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..config import save_config
from ..errors import CheckpointError
from ..fsio import file_sha256
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .history import write_history

SNAPSHOT_DTYPE = torch.float16


def is_snapshot(ckpt: Checkpoint) -> bool:
    return bool((ckpt.extra or {}).get("snapshot"))


def _half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors in float16 (integer buffers such as BatchNorm's step count unchanged)."""
    return {k: v.to(SNAPSHOT_DTYPE) if v.is_floating_point() else v for k, v in state.items()}



def make_snapshot(ckpt: Checkpoint, source_sha256: str | None = None) -> Checkpoint:
    """The compact form of ``ckpt``: evaluated weights in float16, no optimizer, no raw weights."""
    if is_snapshot(ckpt):
        return ckpt
    extra: dict[str, Any] = {k: v for k, v in (ckpt.extra or {}).items() if k not in ("train_state", "ema_state")}
    ema_state = (ckpt.extra or {}).get("ema_state") or {}
    n_averaged = ema_state.get("n_averaged")
    extra["snapshot"] = {
        "dtype": str(SNAPSHOT_DTYPE).removeprefix("torch."),
        "epoch": ckpt.epoch,
        "source_sha256": source_sha256,
        "ema_steps": int(n_averaged.item()) if isinstance(n_averaged, torch.Tensor) else None,
    }
    return replace(ckpt, model_state=_half(ckpt.model_state), optimizer_state=None, scaler_state=None,
                   rng_state=None, extra=extra)


def write_snapshot(run_dir: str | Path, out: str | Path) -> Checkpoint:
    """Write the snapshot of ``run_dir``'s ``last.pt`` to ``out`` (atomically) and return it."""
    last = Path(run_dir) / "last.pt"
    snap = make_snapshot(load_checkpoint(last), file_sha256(last))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(snap, out)
    return snap


def seed_run(snapshot: str | Path, run_dir: str | Path) -> Checkpoint:
    """Start ``run_dir`` from ``snapshot``: its ``last.pt``, ``best.pt``, ``history.csv`` and ``config.yaml``
    (``out`` set to ``run_dir``),
    ready for ``emolens train --resume --out run_dir``. Refuses a folder that already holds a run."""
    run_dir = Path(run_dir)
    if (run_dir / "last.pt").exists():
        raise CheckpointError(f"{run_dir} already holds a run (last.pt); resume it, or seed another --out folder")
    snap = load_checkpoint(snapshot)
    if not is_snapshot(snap):
        raise CheckpointError(f"{snapshot} is a full checkpoint, not a snapshot: copy it to {run_dir}/last.pt")
    cfg = replace(snap.config, out=str(run_dir))
    # The snapshot holds its last epoch's weights, which become the seeded run's best.pt: its best metric
    # is that epoch's, so a later epoch replaces best.pt only when it beats the weights kept.
    last_val = snap.history[-1].get("val_acc", snap.best_metric) if snap.history else snap.best_metric
    seeded = replace(snap, config=cfg, best_metric=float(last_val))
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    save_checkpoint(seeded, run_dir / "best.pt")
    save_checkpoint(seeded, run_dir / "last.pt")
    write_history(seeded.history, run_dir / "history.csv")
    return seeded
