"""What is in a dataset: counts per class and split, image sizes, imbalance, duplicates, skipped rows.

:func:`dataset_stats` reads a dataset the way training does (same loaders, same split completion,
no limit) but looks at the images as they are on disk, before any resizing. Duplicates are found by
hashing pixels (shape included), so only pixel-identical images count: within a split it reports
the groups of identical images and how many images they hold; across splits, how many images of
each later split (val, test) are identical to some image of an earlier one (train, val).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DataConfig
from .split import RawSplit, complete_splits


@dataclass(frozen=True)
class SplitStats:
    """One split. ``image_sizes`` maps ``"WxH"`` to a count and ``channels`` ``"gray"``/``"rgb"`` to a
    count; ``imbalance`` is the largest class count over the smallest (None when a class is empty,
    see ``empty_classes``); ``mean``/``std`` are over all pixel values (0..255); ``derived`` says how
    the split was made when the dataset had none (e.g. ``"stratified 10% of train (seed 0)"``)."""

    name: str
    count: int
    per_class: dict[str, int]
    image_sizes: dict[str, int]
    channels: dict[str, int]
    imbalance: float | None
    empty_classes: tuple[str, ...]
    mean: float
    std: float
    duplicate_groups: int
    duplicate_images: int
    derived: str = ""


@dataclass(frozen=True)
class DatasetStats:
    """A whole dataset. ``cross_duplicates`` maps ``"val in train"`` (and ``"test in train"``,
    ``"test in val"``) to how many images of the first split are pixel-identical to some image of
    the second."""

    dataset: str
    path: str
    labels: tuple[str, ...]
    splits: tuple[SplitStats, ...]
    cross_duplicates: dict[str, int]
    skipped: dict[str, int]

    @property
    def total(self) -> int:
        return sum(s.count for s in self.splits)

    def split(self, name: str) -> SplitStats:
        for s in self.splits:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        d = asdict(self)
        d["labels"] = list(self.labels)
        d["total"] = self.total
        for s in d["splits"]:
            s["empty_classes"] = list(s["empty_classes"])
        return d


def _hashes(images: np.ndarray | list[np.ndarray]) -> list[bytes]:
    out = []
    for img in images:
        a = np.ascontiguousarray(img)
        h = hashlib.blake2b(repr(a.shape).encode(), digest_size=16)
        h.update(a.data)
        out.append(h.digest())
    return out


def _pixel_stats(images: np.ndarray | list[np.ndarray]) -> tuple[float, float]:
    """Mean and std of all pixel values, exact, from a 256-bin histogram (fast and float-safe)."""
    arrays = [images] if isinstance(images, np.ndarray) else images
    hist = np.zeros(256, dtype=np.int64)
    for a in arrays:
        hist += np.bincount(np.asarray(a, dtype=np.uint8).ravel(), minlength=256)
    n = hist.sum()
    if n == 0:
        return 0.0, 0.0
    values = np.arange(256, dtype=np.float64)
    mean = float(hist @ values / n)
    return mean, float(np.sqrt(max(hist @ np.square(values - mean) / n, 0.0)))


def _split_stats(
    name: str, split: RawSplit, labels: tuple[str, ...], hashes: list[bytes], derived: str
) -> SplitStats:
    counts = np.bincount(split.labels, minlength=len(labels))
    per_class = {label: int(c) for label, c in zip(labels, counts, strict=True)}
    empty = tuple(label for label, c in per_class.items() if c == 0)
    sizes = Counter(f"{img.shape[1]}x{img.shape[0]}" for img in split.images)
    chans = Counter("rgb" if img.ndim == 3 else "gray" for img in split.images)
    groups = [c for c in Counter(hashes).values() if c > 1]
    mean, std = _pixel_stats(split.images)
    return SplitStats(
        name=name,
        count=len(split),
        per_class=per_class,
        image_sizes=dict(sizes.most_common()),
        channels=dict(chans),
        imbalance=None if empty else float(counts.max() / counts.min()),
        empty_classes=empty,
        mean=round(mean, 2),
        std=round(std, 2),
        duplicate_groups=len(groups),
        duplicate_images=sum(groups),
        derived=derived,
    )


def dataset_stats(
    path: str | Path,
    *,
    dataset: str | None = None,
    labels_path: str | Path = "",
    skip_bad: bool = False,
    val_fraction: float = 0.1,
    seed: int = 0,
    cache: bool = True,
) -> DatasetStats:
    """Statistics of the dataset at ``path``; ``dataset`` is detected from the path when None
    (a directory is ``folder``, a CSV ``fer2013``, or ``ferplus`` when ``labels_path`` is given).

    Raises DatasetError (unreadable or malformed data) like :func:`emolens.data.load_dataset`.
    """
    from . import detect_dataset, read_raw

    kind = dataset or detect_dataset(path, labels_path)
    cfg = DataConfig(
        dataset=kind,
        path=str(path),
        labels_path=str(labels_path),
        skip_bad=skip_bad,
        val_fraction=val_fraction,
    )
    raw = complete_splits(read_raw(cfg, cache=cache), val_fraction, seed)
    hashes = {name: _hashes(s.images) for name, s in raw.splits.items()}
    splits = tuple(
        _split_stats(name, s, raw.labels, hashes[name], raw.derived.get(name, ""))
        for name, s in raw.splits.items()
    )
    names = list(raw.splits)
    cross: dict[str, int] = {}
    for i, later in enumerate(names):
        for earlier in names[:i]:
            seen = set(hashes[earlier])
            cross[f"{later} in {earlier}"] = sum(h in seen for h in hashes[later])
    return DatasetStats(
        dataset=kind,
        path=str(path),
        labels=raw.labels,
        splits=splits,
        cross_duplicates=cross,
        skipped=dict(raw.skipped),
    )
