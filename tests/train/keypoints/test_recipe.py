"""Keypoint defaults under a YAML recipe under overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from emolens.errors import ConfigError
from emolens.train.keypoints.recipe import KEYPOINT_DEFAULTS, load_keypoint_config

REPO = Path(__file__).resolve().parents[3]


def test_defaults_are_for_keypoints() -> None:
    cfg = load_keypoint_config()
    assert cfg.data.dataset == "keypoints15" and cfg.model.arch == "keypoint_resnet"
    assert cfg.augment.crop_pad == 0 and cfg.augment.mixup == 0 and cfg.optim.label_smoothing == 0
    assert len(KEYPOINT_DEFAULTS) > 10


def test_file_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("epochs: 7\nmodel:\n  arch: keypoint_tiny\naugment:\n  rotate_deg: 5\n")
    cfg = load_keypoint_config(path, {"epochs": 9})
    assert cfg.epochs == 9 and cfg.model.arch == "keypoint_tiny" and cfg.augment.rotate_deg == 5.0
    assert cfg.augment.crop_pad == 0  # untouched keys keep the keypoint defaults, not the emotion ones


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_keypoint_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("augment:\n  rotat_deg: 5\n")
    with pytest.raises(ConfigError, match="did you mean 'rotate_deg'"):
        load_keypoint_config(bad)
    with pytest.raises(ConfigError, match="epochs"):
        load_keypoint_config(None, {"epochs": "many"})


def test_shipped_recipe_loads() -> None:
    cfg = load_keypoint_config(REPO / "configs" / "keypoints15.yaml")
    assert cfg.data.dataset == "keypoints15" and cfg.model.arch.startswith("keypoint_")
