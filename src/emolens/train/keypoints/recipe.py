"""Keypoint training settings: :data:`KEYPOINT_DEFAULTS` under a YAML recipe, under CLI overrides.

:class:`~emolens.config.TrainConfig`'s own defaults are an emotion classifier's (FER2013, 48x48,
random crops, label smoothing). :func:`load_keypoint_config` starts from keypoint defaults instead,
then applies the keys a YAML file sets, then ``{"section.key": value}`` overrides; unknown keys and
bad values raise :class:`~emolens.errors.ConfigError` as in :func:`emolens.config.load_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ...config import TrainConfig, load_config

KEYPOINT_DEFAULTS: dict[str, Any] = {
    "data.dataset": "keypoints15",
    "data.path": "../shared/data/facial-keypoints/keypoints15.csv.gz",
    "data.labels_path": "../shared/data/facial-keypoints/keypoints68.npz",
    "data.image_size": 64,
    "data.channels": 1,
    "data.test_split": "test",
    "data.val_fraction": 0.1,
    "model.arch": "keypoint_resnet",
    "model.dropout": 0.0,
    "augment.hflip": 0.0,  # see configs/keypoints15.yaml: the labels are not mirror-consistent
    "augment.rotate_deg": 20.0,
    "augment.scale": 0.1,
    "augment.translate": 0.06,
    "augment.crop_pad": 0,
    "augment.brightness": 0.2,
    "augment.contrast": 0.2,
    "augment.erase": 0.0,
    "augment.mixup": 0.0,
    "augment.cutmix": 0.0,
    "optim.optimizer": "adamw",
    "optim.lr": 0.002,
    "optim.weight_decay": 0.0001,
    "optim.scheduler": "cosine",
    "optim.warmup_epochs": 1,
    "optim.label_smoothing": 0.0,
    "epochs": 50,
    "batch_size": 32,
    "out": "runs/keypoints15",
}


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def load_keypoint_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Keypoint defaults, then the YAML file at ``path`` (if any), then ``overrides``."""
    layered = dict(KEYPOINT_DEFAULTS)
    if path is not None:
        load_config(path)  # validates the file (existence, YAML, keys, types) with its precise errors
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        layered.update(_flatten(loaded))
    layered.update(overrides or {})
    return load_config(None, layered)
