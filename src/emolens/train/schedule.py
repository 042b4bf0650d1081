"""Learning-rate schedules by epoch: linear warm-up, then cosine decay, plateau reduction or constant."""

from __future__ import annotations

import math
from typing import Any

from ..config import OptimConfig
from ..errors import ConfigError


class LRSchedule:
    """Epoch-level learning rate. ``lr_for(epoch)`` is pure for cosine/none; ``plateau`` keeps a small
    state (best val loss, epochs without improvement, current factor) saved in checkpoints."""

    def __init__(self, cfg: OptimConfig, epochs: int, patience: int = 5, factor: float = 0.5) -> None:
        if cfg.scheduler not in ("cosine", "plateau", "none"):
            raise ConfigError(f"optim.scheduler must be cosine, plateau or none, got {cfg.scheduler!r}")
        self.cfg = cfg
        self.epochs = max(1, epochs)
        self.patience = patience
        self.factor = factor
        self.best = math.inf
        self.bad_epochs = 0
        self.scale = 1.0

    def lr_for(self, epoch: int) -> float:
        """Learning rate for 0-based ``epoch``."""
        base = self.cfg.lr
        warm = self.cfg.warmup_epochs
        if epoch < warm:
            return base * (epoch + 1) / (warm + 1)
        if self.cfg.scheduler == "cosine":
            t = (epoch - warm) / max(1, self.epochs - warm)
            return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))
        if self.cfg.scheduler == "plateau":
            return base * self.scale
        return base

    def observe(self, val_loss: float) -> None:
        """Feed the epoch's validation loss (plateau only)."""
        if self.cfg.scheduler != "plateau":
            return
        if val_loss < self.best - 1e-4:
            self.best, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self.scale *= self.factor
                self.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "scale": self.scale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])
        self.scale = float(state["scale"])
