"""Stratified splitting, and the loaders' shared "raw" stage before images are resized.

Every loader first builds a :class:`RawData` (images at their native size, labels, sources), then
:func:`complete_splits` makes the missing ``val``/``test`` splits from ``train`` (stratified, seeded)
and :func:`limit_train` takes a stratified subsample of ``train``. ``emolens.data.load_dataset``
finally converts the images to the model's size and channels; ``emolens.data.stats`` works on the
raw stage so it sees the images as they are on disk.

The split functions are pure: labels and a seed in, index arrays out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import ConfigError, DatasetError

log = logging.getLogger(__name__)

SPLIT_ORDER: tuple[str, ...] = ("train", "val", "test")


def _check_fraction(fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1 (exclusive), got {fraction}")


def stratified_pick(labels: np.ndarray, n_pick: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Choose ``n_pick`` indices of ``labels`` with class proportions kept; returns ``(rest, picked)``.

    Both are sorted index arrays that together cover ``range(len(labels))`` exactly once. Uses
    sklearn's ``train_test_split(stratify=...)``; classes with a single member stay in ``rest``, and
    when the pick is too small (or too large) to hold one sample of every class it falls back to a
    seeded random pick (logged).
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    n = len(labels)
    if not 0 < n_pick < n:
        raise DatasetError(f"cannot pick {n_pick} of {n} samples: need 0 < pick < {n}")
    index = np.arange(n)
    classes, counts = np.unique(labels, return_counts=True)
    lonely = np.isin(labels, classes[counts < 2])
    pool, pool_labels = index[~lonely], labels[~lonely]
    n_classes = int(np.sum(counts >= 2))
    if n_classes and n_classes <= n_pick <= len(pool) - n_classes:
        rest, picked = train_test_split(pool, test_size=n_pick, stratify=pool_labels, random_state=seed)
        rest = np.concatenate([rest, index[lonely]])
    else:
        log.info(
            "stratified pick of %d from %d not possible (%d classes); using a random pick",
            n_pick,
            n,
            len(classes),
        )
        perm = np.random.default_rng(seed).permutation(n)
        picked, rest = perm[:n_pick], perm[n_pick:]
    return np.sort(rest), np.sort(picked)


def stratified_split(labels: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of the samples (at least 1, leaving at least 1), stratified by label.

    Returns ``(keep, held)`` sorted index arrays; see :func:`stratified_pick` for the edge cases.
    """
    _check_fraction(fraction)
    n = len(labels)
    if n < 2:
        raise DatasetError(f"cannot split {n} sample(s): need at least 2")
    n_held = min(max(1, round(fraction * n)), n - 1)
    return stratified_pick(labels, n_held, seed)


def stratified_three_way(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split into ``(train, val, test)`` index arrays, val and test each a fraction of the whole."""
    _check_fraction(val_fraction)
    _check_fraction(test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(f"val and test fractions ({val_fraction} + {test_fraction}) leave no training data")
    n = len(labels)
    if n < 3:
        raise DatasetError(f"cannot split {n} sample(s) three ways: need at least 3")
    rest, test = stratified_split(labels, test_fraction, seed)
    n_val = min(max(1, round(val_fraction * n)), len(rest) - 1)
    keep, val = stratified_pick(labels[rest], n_val, seed + 1)
    return rest[keep], rest[val], test


# --------------------------------------------------------------------------- raw stage


@dataclass(frozen=True)
class RawSplit:
    """One split before resizing: ``images`` is a uint8 ``(N, H, W[, 3])`` array or a list of images
    of any size; ``labels`` int64 ``(N,)``; ``targets`` float32 ``(N, K)`` or None; ``sources`` (N)."""

    images: np.ndarray | list[np.ndarray]
    labels: np.ndarray
    sources: tuple[str, ...]
    targets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> RawSplit:
        """The samples at ``index`` (in that order)."""
        imgs = self.images[index] if isinstance(self.images, np.ndarray) else [self.images[i] for i in index]
        return RawSplit(
            images=imgs,
            labels=self.labels[index],
            sources=tuple(self.sources[i] for i in index),
            targets=None if self.targets is None else self.targets[index],
        )


@dataclass(frozen=True)
class RawData:
    """A loaded dataset before resizing: name, label names, splits by canonical name, skipped counts,
    and ``derived`` (split name -> how it was made, e.g. ``"stratified 10% of train"``)."""

    name: str
    labels: tuple[str, ...]
    splits: dict[str, RawSplit]
    skipped: dict[str, int] = field(default_factory=dict)
    derived: dict[str, str] = field(default_factory=dict)


def complete_splits(raw: RawData, val_fraction: float, seed: int = 0) -> RawData:
    """Make the missing ``val`` and/or ``test`` splits from ``train``, stratified and seeded.

    Raises DatasetError when ``train`` is missing or any split is empty.
    """
    _check_fraction(val_fraction)
    for name, split in raw.splits.items():
        if len(split) == 0:
            raise DatasetError(f"dataset {raw.name}: split {name!r} is empty")
    if "train" not in raw.splits:
        raise DatasetError(f"dataset {raw.name} has no train split (has: {', '.join(raw.splits) or 'none'})")
    train = raw.splits["train"]
    splits, derived = dict(raw.splits), dict(raw.derived)
    pct = f"{val_fraction:.0%}"
    if "val" not in splits and "test" not in splits:
        tr, va, te = stratified_three_way(train.labels, val_fraction, val_fraction, seed)
        splits.update(train=train.take(tr), val=train.take(va), test=train.take(te))
        derived.update(
            val=f"stratified {pct} of train (seed {seed})", test=f"stratified {pct} of train (seed {seed})"
        )
    else:
        for missing in ("val", "test"):
            if missing not in splits:
                keep, held = stratified_split(splits["train"].labels, val_fraction, seed)
                splits[missing] = splits["train"].take(held)
                splits["train"] = splits["train"].take(keep)
                derived[missing] = f"stratified {pct} of train (seed {seed})"
    ordered = {k: splits[k] for k in SPLIT_ORDER if k in splits}
    return replace(raw, splits=ordered, derived=derived)


def limit_train(raw: RawData, limit: int, seed: int = 0) -> RawData:
    """Keep a stratified subsample of at most ``limit`` training samples (0 = all)."""
    if limit < 0:
        raise ConfigError(f"limit must be >= 0 (0 = all), got {limit}")
    train = raw.splits.get("train")
    if limit == 0 or train is None or len(train) <= limit:
        return raw
    _, picked = stratified_pick(train.labels, limit, seed)
    return replace(raw, splits={**raw.splits, "train": train.take(picked)})
