from pathlib import Path

import pytest

from emolens.config import TrainConfig, config_from_dict, load_config, parse_override, save_config
from emolens.errors import ConfigError


def test_defaults_and_overrides():
    cfg = load_config(overrides={"optim.lr": 0.01, "epochs": "5", "augment.mixup": 0.2})
    assert cfg.optim.lr == 0.01 and cfg.epochs == 5 and cfg.augment.mixup == 0.2
    assert isinstance(cfg, TrainConfig)


def test_unknown_key_suggests(tmp_path: Path):
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        load_config(overrides={"epoch": 3})
    with pytest.raises(ConfigError, match=r"optim\.lrr"):
        load_config(overrides={"optim.lrr": 3})


def test_bad_types_named():
    with pytest.raises(ConfigError, match="epochs: expected int"):
        load_config(overrides={"epochs": "many"})
    with pytest.raises(ConfigError, match="amp: expected true/false"):
        load_config(overrides={"amp": "maybe"})


def test_yaml_roundtrip(tmp_path: Path):
    cfg = load_config(overrides={"model.arch": "tiny", "seed": 3})
    p = tmp_path / "c.yaml"
    save_config(cfg, p)
    assert load_config(p) == cfg
    assert config_from_dict(cfg.to_dict()) == cfg


def test_bad_yaml_files(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(p)
    p.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_parse_override():
    assert parse_override("optim.lr=0.5") == ("optim.lr", 0.5)
    assert parse_override("model.arch=vgg") == ("model.arch", "vgg")
    with pytest.raises(ConfigError):
        parse_override("nonsense")


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path) -> None:
    """Every recipe in configs/ is a valid config (keypoint recipes through their own loader)."""
    if path.name.startswith("keypoints"):
        from emolens.train.keypoints.recipe import load_keypoint_config

        cfg = load_keypoint_config(path)
    else:
        cfg = load_config(path)
    assert cfg.epochs >= 1 and cfg.model.arch
