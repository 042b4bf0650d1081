"""Tiny learnable keypoint data: each face is a dot pattern of Kaggle's 15 points, moved at random.

The points are a plausible face (eyes above nose above mouth, subject's left on the image's right)
turned, scaled and shifted per face; every point is drawn as a bright blob on a noisy background,
so a small network can learn where the points are in a few steps. CLI and inference tests may use
:func:`write_kaggle_csv` and :func:`write_npz68` to put such data on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emolens.data.keypoints import KAGGLE15, KeypointDataset, KeypointSplit

# Kaggle-15 points of an upright face in a 96x96 frame (subject's left = larger x).
FACE15 = np.array([
    [62, 36], [34, 36], [56, 37], [69, 36], [40, 37], [27, 36], [57, 27], [73, 26], [39, 27], [23, 26],
    [48, 52], [61, 66], [35, 66], [48, 63], [48, 71],
], dtype=np.float32)


def jittered_faces(n: int, size: int, rng: np.random.Generator, max_deg: float = 15.0) -> np.ndarray:
    """``(n, 15, 2)`` face points in a ``size`` frame, each turned, scaled and shifted at random."""
    base = FACE15 * (size / 96.0)
    c = base.mean(axis=0)
    out = np.empty((n, 15, 2), np.float32)
    for i in range(n):
        a = np.radians(rng.uniform(-max_deg, max_deg))
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        s = rng.uniform(0.9, 1.1)
        out[i] = (base - c) @ rot.T * s + c + rng.uniform(-0.05, 0.05, 2) * size
    return out


def draw(points: np.ndarray, size: int, rng: np.random.Generator, sigma: float = 1.2) -> np.ndarray:
    """uint8 images ``(n, size, size)``: noise plus one bright blob per point."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    imgs = rng.normal(60, 10, (len(points), size, size)).astype(np.float32)
    for i, pts in enumerate(points):
        for x, y in pts:
            if np.isfinite(x):
                imgs[i] += 180 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.clip(imgs, 0, 255).astype(np.uint8)


def make_split(name: str, n: int, size: int, rng: np.random.Generator) -> KeypointSplit:
    pts = jittered_faces(n, size, rng)
    persons = tuple(f"Person_{i % 7}" for i in range(n))
    return KeypointSplit(name, draw(pts, size, rng), pts, tuple(f"{p}_{i:02d}.jpg" for i, p in enumerate(persons)),
                         persons)


def make_keypoint_dataset(n_train: int = 96, n_val: int = 24, n_test: int = 24, size: int = 32,
                          seed: int = 0) -> KeypointDataset:
    rng = np.random.default_rng(seed)
    splits = {s: make_split(s, n, size, rng) for s, n in (("train", n_train), ("val", n_val), ("test", n_test))}
    return KeypointDataset("synthetic15", KAGGLE15, splits)


def write_kaggle_csv(path: Path, n: int = 40, size: int = 32, seed: int = 0, usage: bool = True,
                     image: bool = True, missing: float = 0.0) -> Path:
    """A Kaggle-layout CSV (gzip when the name ends in .gz) of synthetic faces; ``missing`` blanks
    that share of coordinates pairs (never the eye centres of the first row)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    pts = jittered_faces(n, size, rng)
    imgs = draw(pts, size, rng)
    if missing:
        drop = rng.random((n, 15)) < missing
        drop[0] = False
        pts = pts.copy()
        pts[drop] = np.nan
    cols: dict[str, object] = {}
    for j, name in enumerate(KAGGLE15):
        cols[f"{name}_x"], cols[f"{name}_y"] = pts[:, j, 0], pts[:, j, 1]
    if usage:
        cols["Usage"] = ["Training" if i < n * 3 // 4 else "Test" for i in range(n)]
    if image:
        cols["Image"] = [" ".join(map(str, im.ravel().tolist())) for im in imgs]
    pd.DataFrame(cols).to_csv(path, index=False, float_format="%.4f")
    return path


def write_npz68(path: Path, n_train: int = 30, n_test: int = 10, size: int = 32, seed: int = 0) -> Path:
    """A keypoints68.npz look-alike: random 68-point sets (eyes in the right places) and noise images."""
    rng = np.random.default_rng(seed)

    def part(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pts = rng.uniform(0.2 * size, 0.8 * size, (n, 68, 2)).astype(np.float32)
        pts[:, 36:42] = [0.3 * size, 0.4 * size]
        pts[:, 42:48] = [0.7 * size, 0.4 * size]
        imgs = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        files = np.array([f"Person_{i % 5}_{i:02d}.jpg" for i in range(n)])
        return imgs, pts, files

    tr, te = part(n_train), part(n_test)
    np.savez_compressed(path, train_images=tr[0], train_points=tr[1], train_files=tr[2],
                        test_images=te[0], test_points=te[1], test_files=te[2])
    return path
