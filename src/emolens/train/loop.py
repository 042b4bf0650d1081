"""What both trainers share: the run folder, resuming from ``last.pt``, and the epoch loop with
early stopping on a validation metric and a time limit."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig, save_config
from ..errors import CheckpointError
from .checkpoint import Checkpoint, load_checkpoint
from .schedule import LRSchedule

log = logging.getLogger(__name__)

RESUMABLE_DIFFS = {"out", "device", "threads", "precision"}
"""Config keys a run may change when it is resumed."""


def diff_keys(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted keys whose values differ between two nested dicts."""
    out: set[str] = set()
    for key in set(a) | set(b):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out |= diff_keys(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.add(f"{prefix}{key}" if prefix else key)
    return out


def open_run(run_dir: Path, cfg: TrainConfig, resume: bool, do_resume: Callable[[], None]) -> None:
    """Create ``run_dir``; call ``do_resume()`` when resuming, else refuse a folder that already holds a
    run; then save the config beside it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume and not (run_dir / "last.pt").exists():
        # killed before its first checkpoint: nothing was saved, so the run starts over cleanly
        log.warning("%s holds no checkpoint yet (the run stopped in its first epoch): starting it again", run_dir)
        resume = False
    if resume:
        do_resume()
    elif (run_dir / "last.pt").exists():
        raise CheckpointError(f"{run_dir} already holds a run (last.pt); use --resume or another --out")
    save_config(cfg, run_dir / "config.yaml")


def restore(path: Path, cfg: TrainConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            schedule: LRSchedule) -> Checkpoint:
    """Load ``path`` into ``model``, ``optimizer`` and ``schedule`` and return it; :class:`CheckpointError`
    when it was trained with another configuration (beyond :data:`RESUMABLE_DIFFS`)."""
    ckpt = load_checkpoint(path)
    diffs = sorted(diff_keys(ckpt.config.to_dict(), cfg.to_dict()) - RESUMABLE_DIFFS)
    if diffs:
        raise CheckpointError(f"{path} was trained with another configuration (differs in: {', '.join(diffs)});"
                              " resume with the same settings or start a new --out folder")
    model.load_state_dict(ckpt.model_state)
    if ckpt.optimizer_state:
        optimizer.load_state_dict(ckpt.optimizer_state)
    if ckpt.scheduler_state:
        schedule.load_state_dict(ckpt.scheduler_state)
    return ckpt


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator for shuffling and augmentation of one epoch, drawn from ``(seed, epoch)`` alone; torch's
    global generator (dropout) is seeded from the same pair, so a resumed run repeats the epoch exactly."""
    s = (seed * 1_000_003 + epoch * 7919 + 17) % (2**62)
    torch.manual_seed(s + 1)
    return torch.Generator().manual_seed(s)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The learning rate of every parameter group."""
    for g in optimizer.param_groups:
        g["lr"] = lr


def patience_exhausted(history: Sequence[Mapping[str, float]], key: str, patience: int,
                       higher_is_better: bool = True) -> bool:
    """True when the best ``key`` in ``history`` is ``patience`` or more epochs old (``patience`` <= 0: never)."""
    if patience <= 0 or len(history) <= patience:
        return False
    pick = max if higher_is_better else min
    best = pick(range(len(history)), key=lambda i: history[i][key])
    return len(history) - 1 - best >= patience


def run_epochs(start: int, epochs: int, run_epoch: Callable[[int], None], should_stop: Callable[[], bool],
               time_limit_s: float | None) -> bool:
    """Call ``run_epoch(e)`` for ``e`` in ``[start, epochs)`` until ``should_stop()`` (early stopping: returns
    True) or ``time_limit_s`` seconds have passed before an epoch starts (returns False, resumable)."""
    t0 = time.monotonic()
    for epoch in range(start, epochs):
        if should_stop():
            return True
        if time_limit_s is not None and time.monotonic() - t0 > time_limit_s:
            return False
        run_epoch(epoch)
    return False
