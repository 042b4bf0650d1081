"""Training configuration as frozen dataclasses: a YAML file, then CLI overrides, saved with each run.

``load_config(path, overrides)`` builds a :class:`TrainConfig` from a YAML file (sections ``data``,
``model``, ``augment``, ``optim``, ``distill`` plus top-level keys) and ``key.sub=value`` overrides.
Unknown keys are refused with a "did you mean" suggestion.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "fer2013"  # fer2013 | ferplus | folder
    path: str = "../shared/data/fer2013/fer2013.csv.gz"
    labels_path: str = ""  # FER+ votes file (fer2013new.csv) when dataset == ferplus
    label_mode: str = "majority"  # ferplus: majority | soft (per-image vote distributions)
    ferplus_eval_rows: str = "majority"  # ferplus val/test rows: majority (Microsoft's: top emotion > half the
    # votes left) | plurality (every row with one top emotion, ambiguous faces included)
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    val_fraction: float = 0.1  # stratified validation split when the dataset has none
    image_size: int = 48
    channels: int = 1
    skip_bad: bool = False
    limit: int = 0  # use at most this many training images (0 = all); for quick runs and tests


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "seed_cnn"
    width: float = 1.0  # channel multiplier where the architecture supports one
    dropout: float = 0.3
    head_std: float = 0.0  # >0: classifier re-drawn N(0, head_std), zero bias, so training starts near uniform
    init: str = ""  # start from this checkpoint's weights (same arch and width; a differing classifier stays fresh)


@dataclass(frozen=True)
class AugmentConfig:
    hflip: float = 0.5
    rotate_deg: float = 10.0
    scale: float = 0.1
    translate: float = 0.1
    crop_pad: int = 4  # random crop after reflect-padding by this many pixels (0 = off)
    brightness: float = 0.2
    contrast: float = 0.2
    erase: float = 0.25  # probability of random erasing per image
    mixup: float = 0.0  # alpha of mixup (0 = off)
    cutmix: float = 0.0  # alpha of cutmix (0 = off)
    mix_prob: float = 0.5  # probability that a batch is mixed when mixup or cutmix is on


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "sgd"  # sgd (Nesterov) | adamw
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    scheduler: str = "cosine"  # cosine | plateau | none
    warmup_epochs: int = 1
    label_smoothing: float = 0.1
    class_weights: bool = False  # weight the loss by inverse class frequency ...
    class_weight_power: float = 1.0  # ... raised to this power (0.5: square root, milder for very rare classes)
    ema: float = 0.0  # decay of an exponential moving average of the weights, evaluated and saved (0 = off)


@dataclass(frozen=True)
class DistillConfig:
    teacher: str = ""  # a trained teacher (.pt checkpoint or .onnx) to distil from, or several
    # separated by commas (an ensemble: their logits are averaged); "" = no distillation
    alpha: float = 0.5  # weight of the teacher's soft outputs in the loss (1 - alpha: the labels)
    temperature: float = 4.0  # softens both models' outputs in the distillation term


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    epochs: int = 30
    batch_size: int = 128
    seed: int = 0
    early_stopping: int = 0  # stop after this many epochs without a better val metric (0 = never)
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast on CUDA when precision is auto
    precision: str = "auto"  # auto (bf16 where the CPU/GPU runs it natively, else fp32) | fp32 | bf16
    threads: int = 0  # torch CPU threads (0 = torch's default)
    eval_tta: bool = False
    out: str = "runs/default"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(options)})"


def _coerce(value: Any, typ: Any, key: str) -> Any:
    if isinstance(typ, str):  # postponed annotations
        typ = {"int": int, "float": float, "str": str, "bool": bool}.get(typ, typ)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if typ in (int, float):
        try:
            out = typ(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected {typ.__name__}, got {value!r}") from None
        if typ is int and isinstance(value, float) and value != int(value):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return out
    if typ is str:
        if isinstance(value, dict | list):
            raise ConfigError(f"{key}: expected text, got {value!r}")
        return str(value)
    return value


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key {full!r}" + _suggest(key, names))
        typ = hints[key]
        if dataclasses.is_dataclass(typ):
            if not isinstance(value, dict):
                raise ConfigError(f"{full}: expected a section (mapping), got {value!r}")
            kwargs[key] = _build(typ, value, prefix=f"{full}.")  # type: ignore[arg-type]
        elif isinstance(typ, types.UnionType):
            kwargs[key] = value
        else:
            kwargs[key] = _coerce(value, typ, full)
    return cls(**kwargs)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {part!r} is not a section")
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``"optim.lr=0.01"`` -> ``("optim.lr", 0.01)`` (the value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. optim.lr=0.01")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from an optional YAML file and ``{"section.key": value}`` overrides."""
    tree: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p} is not valid YAML: {e}") from e
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p} must hold a mapping of settings, got {type(loaded).__name__}")
        tree = loaded
    for key, value in (overrides or {}).items():
        _set_dotted(tree, key, value)
    cfg: TrainConfig = _build(TrainConfig, tree)
    return cfg


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """Rebuild a config saved with :meth:`TrainConfig.to_dict` (e.g. from a checkpoint)."""
    cfg: TrainConfig = _build(TrainConfig, d)
    return cfg


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
