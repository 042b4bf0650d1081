"""A small learnable face-like dataset generated in memory: each class draws a different pattern."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from emolens.data.base import FaceDataset, Split
from emolens.labels import FER7


def _pattern(k: int, size: int, rng: np.random.Generator) -> np.ndarray:
    img = rng.normal(110, 25, (size, size))
    c = size // 2
    yy, xx = np.mgrid[0:size, 0:size]
    if k == 0:
        img[c - 6 : c + 6, :] += 90  # horizontal bar
    elif k == 1:
        img[:, c - 6 : c + 6] += 90  # vertical bar
    elif k == 2:
        img[(xx - c) ** 2 + (yy - c) ** 2 < (size // 4) ** 2] += 90  # disc
    elif k == 3:
        img[np.abs(xx - yy) < 5] += 90  # diagonal
    elif k == 4:
        img[: size // 3] -= 70  # dark top
    elif k == 5:
        img[(xx // 8 + yy // 8) % 2 == 0] += 70  # checker
    else:
        img[size // 2 :, size // 2 :] += 90  # bright corner
    return np.clip(img, 0, 255).astype(np.uint8)


def make_dataset(n_train: int = 280, n_val: int = 70, n_test: int = 70, size: int = 48, seed: int = 0) -> FaceDataset:
    rng = np.random.default_rng(seed)

    def split(name: str, n: int) -> Split:
        labels = np.arange(n) % len(FER7)
        imgs = np.stack([_pattern(int(k), size, rng) for k in labels])
        return Split(name, imgs, labels.astype(np.int64))

    return FaceDataset(
        "synthetic", FER7, {"train": split("train", n_train), "val": split("val", n_val), "test": split("test", n_test)}
    )


def write_fer2013_csv(path: Path, per_split: tuple[int, int, int] = (42, 14, 14), seed: int = 0) -> Path:
    """A small FER2013-style CSV (``emotion,pixels,Usage``; gzip when ``path`` ends in ``.gz``) of the 7
    learnable 48x48 patterns: ``per_split`` rows of Training, PublicTest and PrivateTest."""
    rng = np.random.default_rng(seed)
    lines = ["emotion,pixels,Usage"]
    for usage, n in zip(("Training", "PublicTest", "PrivateTest"), per_split, strict=True):
        lines += [f"{i % 7},{' '.join(map(str, _pattern(i % 7, 48, rng).ravel()))},{usage}" for i in range(n)]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path
