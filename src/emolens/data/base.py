"""The in-memory dataset every loader returns and the trainer, evaluator and stats consume.

Images are ``uint8`` arrays, ``(N, H, W)`` gray or ``(N, H, W, 3)`` RGB, all of one size per split.
Split names are canonical: ``train``, ``val``, ``test`` (FER2013's Training / PublicTest /
PrivateTest map onto them; :func:`canonical_split` accepts either spelling).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DatasetError

SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "publictest": "val",
    "public_test": "val",
    "test": "test",
    "privatetest": "test",
    "private_test": "test",
}


def canonical_split(name: str) -> str:
    """``"PublicTest"`` -> ``"val"``, ``"Training"`` -> ``"train"``; unknown names raise DatasetError."""
    key = name.strip().lower()
    if key not in SPLIT_ALIASES:
        raise DatasetError(f"unknown split {name!r}; use train, val or test (or Training/PublicTest/PrivateTest)")
    return SPLIT_ALIASES[key]


@dataclass(frozen=True)
class Split:
    """One split: images, hard labels (index into the dataset's labels), optional soft targets.

    ``targets`` (float32 ``(N, K)``, rows sum to 1) carries per-image label distributions (FER+ votes).
    ``sources`` names where each sample came from (``file.csv:row 12`` or an image path).
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    targets: np.ndarray | None = None
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim not in (3, 4):
            raise DatasetError(
                f"split {self.name}: images must be uint8 (N,H,W[,3]), got {self.images.dtype} {self.images.shape}"
            )
        if len(self.labels) != n:
            raise DatasetError(f"split {self.name}: {n} images but {len(self.labels)} labels")
        if self.targets is not None and len(self.targets) != n:
            raise DatasetError(f"split {self.name}: {n} images but {len(self.targets)} target rows")
        if self.sources and len(self.sources) != n:
            raise DatasetError(f"split {self.name}: {n} images but {len(self.sources)} sources")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray, name: str | None = None) -> Split:
        return Split(
            name=name or self.name,
            images=self.images[index],
            labels=self.labels[index],
            targets=None if self.targets is None else self.targets[index],
            sources=tuple(self.sources[i] for i in index) if self.sources else (),
        )


@dataclass(frozen=True)
class FaceDataset:
    """A labelled face dataset: its label names (output order) and its splits by canonical name.

    ``skipped`` counts bad samples left out under ``skip_bad`` (reason -> count).
    """

    name: str
    labels: tuple[str, ...]
    splits: dict[str, Split]
    skipped: dict[str, int] = field(default_factory=dict)

    def split(self, name: str) -> Split:
        key = canonical_split(name)
        if key not in self.splits:
            raise DatasetError(f"dataset {self.name} has no {key!r} split (has: {', '.join(self.splits)})")
        return self.splits[key]
