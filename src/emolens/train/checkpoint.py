"""Self-describing training checkpoints.

A checkpoint is a ``torch.save`` dict holding everything needed to rebuild the model and resume
training: the resolved config, the :class:`~emolens.modelmeta.ModelMeta`, model/optimizer/scheduler/
scaler state, RNG states, the epoch reached and the history so far. Loading needs nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import TrainConfig, config_from_dict
from ..errors import CheckpointError, EmolensError
from ..modelmeta import ModelMeta
from .archs import create_model

FORMAT = "emolens-checkpoint-v1"


@dataclass
class Checkpoint:
    config: TrainConfig
    meta: ModelMeta
    model_state: dict[str, Any]
    epoch: int  # number of epochs completed
    history: list[dict[str, float]]
    best_metric: float
    optimizer_state: dict[str, Any] | None = None
    scheduler_state: dict[str, Any] | None = None
    scaler_state: dict[str, Any] | None = None
    rng_state: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None

    def build_model(self) -> nn.Module:
        """The model with its trained weights, in eval mode."""
        return build_model(self.config, self.meta, self.model_state)


def build_model(cfg: TrainConfig, meta: ModelMeta, state: dict[str, Any] | None = None) -> nn.Module:
    model = create_model(
        cfg.model.arch,
        num_classes=meta.num_classes,
        in_channels=meta.channels,
        input_size=meta.input_size[0],
        width=cfg.model.width,
        dropout=cfg.model.dropout,
    )
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"checkpoint weights do not fit architecture {cfg.model.arch!r}: {e}") from e
    model.eval()
    return model


def save_checkpoint(ckpt: Checkpoint, path: str | Path) -> None:
    """Write atomically (temp file + rename) so a run killed mid-save never leaves a broken file."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "config": ckpt.config.to_dict(),
        "meta": ckpt.meta.to_dict(),
        "model_state": ckpt.model_state,
        "epoch": ckpt.epoch,
        "history": ckpt.history,
        "best_metric": ckpt.best_metric,
        "optimizer_state": ckpt.optimizer_state,
        "scheduler_state": ckpt.scheduler_state,
        "scaler_state": ckpt.scaler_state,
        "rng_state": ckpt.rng_state,
        "extra": ckpt.extra or {},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; anything else raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a corrupt file
        raise CheckpointError(f"{path} is not a readable checkpoint: {e.__class__.__name__}: {e}") from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an emolens checkpoint (format tag missing or wrong)")
    try:
        return Checkpoint(
            config=config_from_dict(raw["config"]),
            meta=ModelMeta.from_dict(raw["meta"]),
            model_state=raw["model_state"],
            epoch=int(raw["epoch"]),
            history=list(raw["history"]),
            best_metric=float(raw["best_metric"]),
            optimizer_state=raw.get("optimizer_state"),
            scheduler_state=raw.get("scheduler_state"),
            scaler_state=raw.get("scaler_state"),
            rng_state=raw.get("rng_state"),
            extra=raw.get("extra") or {},
        )
    except KeyError as e:
        raise CheckpointError(f"{path} lacks {e}") from e
    except EmolensError as e:
        raise CheckpointError(f"{path}: {e}") from e
