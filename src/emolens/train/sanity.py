"""Is a dataset big and varied enough to train on? Refuse what cannot work, warn about what misleads.

A classifier trained on one class, or on three rows, reaches accuracy and macro-F1 1.0 on a split
that holds the same class: numbers that look perfect and mean nothing. :func:`check_trainable`
refuses a train split with fewer than two classes or fewer than :data:`MIN_TRAIN_ROWS` rows
(:class:`~emolens.errors.DatasetError`) and returns warnings for splits whose metrics cannot be
trusted (too few rows or a single class in val/test, labels never seen in training).
"""

from __future__ import annotations

import numpy as np

from ..data.base import FaceDataset
from ..errors import DatasetError

MIN_TRAIN_ROWS = 10
"""Fewest training rows accepted."""
MIN_EVAL_ROWS = 10
"""Fewer validation or test rows than this give metrics that are mostly noise (a warning)."""


def _classes(labels: np.ndarray, names: tuple[str, ...]) -> list[str]:
    return [names[int(k)] if 0 <= int(k) < len(names) else str(int(k)) for k in np.unique(labels)]


def check_trainable(ds: FaceDataset) -> list[str]:
    """Warnings about ``ds`` (empty when it is fine); :class:`DatasetError` when it cannot be trained on."""
    train = ds.split("train")
    seen = _classes(train.labels, ds.labels)
    if len(train) < MIN_TRAIN_ROWS:
        raise DatasetError(f"dataset {ds.name}: the train split has {len(train)} rows; training needs at least "
                           f"{MIN_TRAIN_ROWS} (and every metric on so few rows would be meaningless)")
    if len(seen) < 2:
        raise DatasetError(f"dataset {ds.name}: every training row is {', '.join(seen) or 'unlabelled'}; a "
                           "classifier needs at least two classes (it would score 1.0 by always answering that one)")
    warnings = []
    missing = [lb for lb in ds.labels if lb not in seen]
    if missing:
        warnings.append(f"dataset {ds.name}: no training row for {', '.join(missing)}: the model can never "
                        "predict them")
    for name, split in ds.splits.items():
        if name == "train":
            continue
        classes = _classes(split.labels, ds.labels)
        if len(split) < MIN_EVAL_ROWS:
            warnings.append(f"dataset {ds.name}: the {name} split has only {len(split)} rows: its metrics are noise")
        elif len(classes) < 2:
            warnings.append(f"dataset {ds.name}: the {name} split holds one class ({classes[0]}): accuracy and "
                            "macro-F1 on it say nothing about telling emotions apart")
    return warnings
