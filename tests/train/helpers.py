"""What the training tests share: a fast recipe for generated data, the run's history, and a run killed
in the middle of an epoch as a machine that goes away would kill it."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from emolens.config import TrainConfig, load_config


def tiny_config(out: Path, **overrides: Any) -> TrainConfig:
    """The tiny network, 3 epochs, batch 32, lr 0.05, seed 1, one thread; ``overrides`` are config keys."""
    base: dict[str, Any] = {"model.arch": "tiny", "epochs": 3, "batch_size": 32, "optim.lr": 0.05, "out": str(out),
                            "seed": 1, "threads": 1}
    base.update(overrides)
    return load_config(overrides=base)


def read_history(run: Path, with_time: bool = False) -> list[dict[str, str]]:
    """``history.csv`` of a run folder, without the wall-clock column unless ``with_time``."""
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    if not with_time:
        for r in rows:
            r.pop("time_s")
    return rows


def kill_at_epoch(trainer: Any, epoch: int) -> None:
    """``trainer.fit()``, killed (KeyboardInterrupt) when epoch ``epoch`` (0-based) starts training: the run
    folder keeps what the epochs before it saved."""
    original = trainer._train_epoch

    def dying(e: int) -> Any:
        if e == epoch:
            raise KeyboardInterrupt
        return original(e)

    trainer._train_epoch = dying
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
