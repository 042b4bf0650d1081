"""Datasets: FER2013 CSV, FER+ votes, image folders -> one :class:`~emolens.data.base.FaceDataset`.

``load_dataset(cfg, seed)`` reads the dataset named by ``cfg.dataset`` (``fer2013``, ``ferplus`` or
``folder``), makes missing val/test splits from train (stratified, seeded), keeps a stratified
``cfg.limit`` of train, and converts every image to ``cfg.image_size`` and ``cfg.channels`` with
:func:`emolens.preprocess.prepare_uint8`, the same function serving uses. Malformed data raises
:class:`~emolens.errors.DatasetError` naming the file and row; ``cfg.skip_bad`` skips and counts
bad samples instead (``FaceDataset.skipped``).
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import ConfigError, DatasetError
from ..preprocess import prepare_uint8
from .base import FaceDataset, Split
from .split import RawData, RawSplit, complete_splits, limit_train

DATASETS: tuple[str, ...] = ("fer2013", "ferplus", "folder")

__all__ = [
    "DATASETS",
    "FaceDataset",
    "Split",
    "detect_dataset",
    "load_dataset",
    "read_raw",
    "to_face_dataset",
]


def detect_dataset(path: str | Path, labels_path: str | Path = "") -> str:
    """Guess the dataset kind: a directory is ``folder``, a CSV is ``fer2013`` (``ferplus`` with votes)."""
    p = Path(path)
    if p.is_dir():
        return "folder"
    name = p.name.lower()
    if name.endswith((".csv", ".csv.gz", ".gz")):
        return "ferplus" if str(labels_path) else "fer2013"
    if not p.exists():
        raise DatasetError(f"dataset not found: {p}")
    raise DatasetError(f"cannot tell the dataset kind of {p}; pass --dataset fer2013, ferplus or folder")


def _check_name(name: str) -> None:
    if name not in DATASETS:
        close = [d for d in DATASETS if name and d.startswith(name.lower())][:1]
        close = close or difflib.get_close_matches(name.lower(), DATASETS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(DATASETS)}"
        raise DatasetError(f"unknown dataset {name!r} ({hint})")


def read_raw(cfg: DataConfig, *, cache: bool = True) -> RawData:
    """Read the dataset named by ``cfg`` at its native image size, without splitting or limiting."""
    _check_name(cfg.dataset)
    if cfg.dataset == "fer2013":
        from .fer2013 import read_fer2013

        return read_fer2013(cfg.path, skip_bad=cfg.skip_bad, cache=cache)
    if cfg.dataset == "ferplus":
        from .ferplus import read_ferplus

        return read_ferplus(
            cfg.path, cfg.labels_path, skip_bad=cfg.skip_bad, label_mode=cfg.label_mode, cache=cache,
            eval_rows=cfg.ferplus_eval_rows,
        )
    from .folder import read_folder

    return read_folder(cfg.path, skip_bad=cfg.skip_bad)


def _convert(split: RawSplit, size: int, channels: int) -> np.ndarray:
    imgs = split.images
    if (
        isinstance(imgs, np.ndarray)
        and imgs.shape[1:3] == (size, size)
        and ((channels == 1 and imgs.ndim == 3) or (channels == 3 and imgs.ndim == 4))
    ):
        return imgs
    out = prepare_uint8(imgs, (size, size), channels)  # (N, C, H, W)
    return out[:, 0] if channels == 1 else np.ascontiguousarray(out.transpose(0, 2, 3, 1))


def to_face_dataset(raw: RawData, image_size: int, channels: int) -> FaceDataset:
    """Convert every split's images to ``image_size`` square and 1 (gray) or 3 (RGB) channels."""
    if channels not in (1, 3):
        raise ConfigError(f"data.channels must be 1 (gray) or 3 (RGB), got {channels}")
    if image_size < 8:
        raise ConfigError(f"data.image_size must be at least 8, got {image_size}")
    splits = {
        name: Split(
            name=name,
            images=_convert(s, image_size, channels),
            labels=s.labels,
            targets=s.targets,
            sources=s.sources,
        )
        for name, s in raw.splits.items()
    }
    return FaceDataset(name=raw.name, labels=raw.labels, splits=splits, skipped=dict(raw.skipped))


def load_dataset(cfg: DataConfig, seed: int = 0, *, cache: bool = True) -> FaceDataset:
    """Load, split, limit and convert the dataset ``cfg`` describes.

    ``seed`` drives the stratified val/test splits made from train (when the dataset has none) and
    the stratified ``cfg.limit`` subsample. ``cache=False`` bypasses the parsed-CSV cache.
    """
    raw = read_raw(cfg, cache=cache)
    raw = complete_splits(raw, cfg.val_fraction, seed)
    raw = limit_train(raw, cfg.limit, seed)
    return to_face_dataset(raw, cfg.image_size, cfg.channels)
