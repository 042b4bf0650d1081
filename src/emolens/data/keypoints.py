"""Facial-keypoint datasets: Kaggle's 15-point CSV layout and the 68-point (iBUG) npz.

Points are ``(x, y)`` in pixels of their image, OpenCV pixel-centre convention (pixel ``(i, j)``
has centre ``x = i, y = j``); a missing coordinate is NaN. Left and right follow Kaggle's rule,
the **subject's** side: ``left_eye_center`` is on the right of the image (larger x).

Readers:

- :func:`read_kaggle_csv`: the Kaggle layout (``<point>_x, <point>_y`` column pairs, optional
  ``Image`` column of space-separated pixels, optional ``Usage``). Kaggle's own ``training.csv``
  (empty cells for missing points, no ``Usage``) reads as it is. A CSV without ``Image`` (the
  shared ``keypoints15.csv.gz``) takes its pixels, row for row, from an npz given as ``images_from``
  (``data.labels_path`` in a config), which also gives the file names and so the persons.
- :func:`read_npz68`: ``keypoints68.npz`` (``{train,test}_{images,points,files}``).

:func:`load_keypoint_dataset` turns either into a :class:`KeypointDataset` with ``train``/``val``/
``test`` splits: ``data.test_split = "test"`` keeps the file's own test rows, ``"persons"`` pools
all rows and holds out whole persons (the person is the file name without its ``_NN`` frame
number), so no face in test belongs to someone seen in training. Validation is carved from train
by person as well. Bad files raise :class:`~emolens.errors.DatasetError` naming the file and row.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import ConfigError, DatasetError
from ..preprocess import prepare_uint8

log = logging.getLogger(__name__)

KAGGLE15: tuple[str, ...] = (
    "left_eye_center", "right_eye_center", "left_eye_inner_corner", "left_eye_outer_corner",
    "right_eye_inner_corner", "right_eye_outer_corner", "left_eyebrow_inner_end", "left_eyebrow_outer_end",
    "right_eyebrow_inner_end", "right_eyebrow_outer_end", "nose_tip", "mouth_left_corner",
    "mouth_right_corner", "mouth_center_top_lip", "mouth_center_bottom_lip",
)  # fmt: skip
"""Kaggle's 15 points, in the column order of its ``training.csv``."""

IBUG68: tuple[str, ...] = tuple(f"ibug_{i:02d}" for i in range(68))
"""Names of the 68 iBUG 300-W points, 0-based (their order is the dataset's)."""

IBUG68_FLIP: tuple[int, ...] = (
    *range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31,
    45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65,
)  # fmt: skip
"""Where each iBUG point goes when the image is mirrored (jaw, brows, eyes and lips reverse)."""

# Kaggle point -> iBUG-68 indices whose mean it is (see ../shared/data/facial-keypoints/README.md).
KAGGLE15_FROM_68: dict[str, tuple[int, ...]] = {
    "left_eye_center": (42, 43, 44, 45, 46, 47), "right_eye_center": (36, 37, 38, 39, 40, 41),
    "left_eye_inner_corner": (42,), "left_eye_outer_corner": (45,),
    "right_eye_inner_corner": (39,), "right_eye_outer_corner": (36,),
    "left_eyebrow_inner_end": (22,), "left_eyebrow_outer_end": (26,),
    "right_eyebrow_inner_end": (21,), "right_eyebrow_outer_end": (17,),
    "nose_tip": (30,), "mouth_left_corner": (54,), "mouth_right_corner": (48,),
    "mouth_center_top_lip": (51,), "mouth_center_bottom_lip": (57,),
}  # fmt: skip

PERSON_TEST_FRACTION = 0.2
"""Share of persons held out as test when ``data.test_split = "persons"``."""
TEST_MODES = ("test", "persons")


def flip_permutation(names: tuple[str, ...]) -> tuple[int, ...]:
    """For a mirrored image, the index of the point each point becomes (left and right swap).

    The iBUG-68 names use :data:`IBUG68_FLIP`; other names swap ``left`` and ``right`` in the name.
    Raises DatasetError when a ``left_*`` point has no ``right_*`` partner.
    """
    if names == IBUG68:
        return IBUG68_FLIP
    index = {n: i for i, n in enumerate(names)}
    out = []
    for n in names:
        twin = re.sub(r"left|right", lambda m: "right" if m.group() == "left" else "left", n)
        if twin not in index:
            raise DatasetError(f"point {n!r} has no mirror partner {twin!r} among {list(names)}")
        out.append(index[twin])
    return tuple(out)


def person_of(file_name: str) -> str:
    """``"Luis_Fonsi_21.jpg"`` -> ``"Luis_Fonsi"``: the file name without extension and frame number."""
    stem = Path(file_name).stem
    return re.sub(r"_\d+$", "", stem) or stem


def points15_from_68(points68: np.ndarray) -> np.ndarray:
    """``(N, 68, 2)`` iBUG landmarks -> ``(N, 15, 2)`` Kaggle points (:data:`KAGGLE15` order)."""
    p = np.asarray(points68, dtype=np.float32)
    if p.ndim != 3 or p.shape[1:] != (68, 2):
        raise DatasetError(f"expected (N, 68, 2) landmarks, got shape {p.shape}")
    return np.stack([p[:, list(KAGGLE15_FROM_68[n])].mean(axis=1) for n in KAGGLE15], axis=1)


@dataclass(frozen=True)
class KeypointSplit:
    """Faces and their points: ``images`` uint8 ``(N, H, W)`` or ``(N, H, W, 3)``, ``points`` float32
    ``(N, P, 2)`` in pixels of the images (NaN = missing), ``sources`` per row (file and row or
    name), ``persons`` per row (empty strings when unknown)."""

    name: str
    images: np.ndarray
    points: np.ndarray
    sources: tuple[str, ...]
    persons: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim not in (3, 4):
            raise DatasetError(f"split {self.name}: images must be uint8 (N,H,W[,3]), got {self.images.shape}")
        if self.points.ndim != 3 or self.points.shape[0] != n or self.points.shape[2] != 2:
            raise DatasetError(f"split {self.name}: {n} images need points (N, P, 2), got {self.points.shape}")
        if len(self.sources) != n or len(self.persons) != n:
            raise DatasetError(f"split {self.name}: {n} images but {len(self.sources)} sources")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray, name: str | None = None) -> KeypointSplit:
        idx = np.asarray(index, dtype=np.int64)
        return KeypointSplit(name or self.name, self.images[idx], self.points[idx],
                             tuple(self.sources[i] for i in idx), tuple(self.persons[i] for i in idx))


@dataclass(frozen=True)
class KeypointDataset:
    """Point names (model output order), their mirror permutation, and splits by canonical name."""

    name: str
    points: tuple[str, ...]
    splits: dict[str, KeypointSplit]

    @property
    def flip(self) -> tuple[int, ...]:
        return flip_permutation(self.points)

    def split(self, name: str) -> KeypointSplit:
        if name not in self.splits:
            raise DatasetError(f"dataset {self.name} has no {name!r} split (has: {', '.join(self.splits)})")
        return self.splits[name]


@dataclass(frozen=True)
class _Rows:
    """All rows of a file before splitting; ``usage`` is "train" or "test" per row."""

    images: np.ndarray
    points: np.ndarray
    names: tuple[str, ...]
    sources: tuple[str, ...]
    usage: np.ndarray


def _load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"keypoint file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DatasetError(f"{path} lacks {', '.join(missing)} (has {', '.join(z.files)})")
            return {k: z[k] for k in keys}
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path} is not a readable npz file: {e}") from e


def read_npz68(path: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]:
    """``keypoints68.npz`` -> (images ``(N, H, W)``, points ``(N, 68, 2)``, file names, usage), train rows first."""
    p = Path(path)
    keys = tuple(f"{s}_{k}" for s in ("train", "test") for k in ("images", "points", "files"))
    z = _load_npz(p, keys)
    imgs = np.concatenate([z["train_images"], z["test_images"]])
    pts = np.concatenate([z["train_points"], z["test_points"]]).astype(np.float32)
    files = tuple(str(f) for f in np.concatenate([z["train_files"], z["test_files"]]))
    if imgs.dtype != np.uint8 or imgs.ndim != 3 or pts.shape != (len(imgs), 68, 2) or len(files) != len(imgs):
        raise DatasetError(f"{p}: expected uint8 images (N, H, W) and points (N, 68, 2), got "
                           f"{imgs.dtype} {imgs.shape} and {pts.shape} with {len(files)} files")
    usage = np.array(["train"] * len(z["train_images"]) + ["test"] * len(z["test_images"]))
    return imgs, pts, files, usage


def _parse_image(text: object, path: Path, row: int) -> np.ndarray:
    try:
        px = np.array(str(text).split(), dtype=np.int64)
    except ValueError:
        raise DatasetError(f"{path}: row {row}: Image holds something that is not a pixel value") from None
    side = math.isqrt(len(px))
    if side < 8 or side * side != len(px) or px.min() < 0 or px.max() > 255:
        raise DatasetError(f"{path}: row {row}: Image needs a square of at least 8x8 pixel values in 0..255, "
                           f"got {len(px)} values")
    return px.astype(np.uint8).reshape(side, side)


def _coordinate_columns(columns: list[str], path: Path) -> tuple[str, ...]:
    names = tuple(c[:-2] for c in columns if c.endswith("_x") and f"{c[:-2]}_y" in columns)
    if not names:
        raise DatasetError(f"{path}: no keypoint columns (pairs named <point>_x, <point>_y); columns: {columns[:8]}")
    return names


def _usage(values: list[object], path: Path) -> np.ndarray:
    out = []
    for i, v in enumerate(values):
        key = str(v).strip().lower()
        if key in ("training", "train"):
            out.append("train")
        elif key in ("test", "publictest", "privatetest"):
            out.append("test")
        else:
            raise DatasetError(f"{path}: row {i + 1}: Usage {v!r} is neither Training nor Test")
    return np.array(out)


def read_kaggle_csv(path: str | Path, images_from: str | Path | None = None) -> tuple[tuple[str, ...], _Rows]:
    """A Kaggle-layout CSV -> (point names, rows); see the module docstring for the layout."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"keypoint file not found: {p}")
    try:
        df = pd.read_csv(p, dtype={"Image": str})
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{p} is not a readable CSV: {e}") from e
    names = _coordinate_columns(list(df.columns), p)
    cols = [f"{n}_{a}" for n in names for a in "xy"]
    try:
        coords = df[cols].apply(pd.to_numeric, errors="raise").to_numpy(np.float32)
    except (ValueError, TypeError):
        bad = df[cols].apply(pd.to_numeric, errors="coerce").isna() & df[cols].notna()
        row, col = np.argwhere(bad.to_numpy())[0]
        raise DatasetError(f"{p}: row {row + 1}: {cols[col]} = {df[cols].iat[row, col]!r} is not a number") from None
    points = coords.reshape(len(df), len(names), 2)
    usage = _usage(list(df["Usage"]), p) if "Usage" in df.columns else np.array(["train"] * len(df))
    files: tuple[str, ...] = ("",) * len(df)
    if "Image" in df.columns:
        images = np.stack([_parse_image(t, p, i + 1) for i, t in enumerate(df["Image"])]) if len(df) else None
    elif images_from:
        images, _, files, _ = read_npz68(images_from)
        if len(images) != len(df):
            raise DatasetError(f"{p} has {len(df)} rows but {images_from} holds {len(images)} images")
    else:
        raise DatasetError(f"{p} has no Image column: give the npz with its pixels (data.labels_path)")
    if images is None or len(images) == 0:
        raise DatasetError(f"{p}: no data rows after the header")
    sources = tuple(f"{p.name}:row {i + 1}" + (f" {f}" if f else "") for i, f in enumerate(files))
    return names, _Rows(images, points, files, sources, usage)


def _rows_npz68(path: str | Path) -> tuple[tuple[str, ...], _Rows]:
    images, points, files, usage = read_npz68(path)
    name = Path(path).name
    sources = tuple(f"{name}:{u}[{i}] {f}" for i, (u, f) in enumerate(zip(usage, files, strict=True)))
    return IBUG68, _Rows(images, points, files, sources, usage)


def person_split(persons: list[str] | tuple[str, ...], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole persons: about ``fraction`` of the rows, never a person on both sides.

    Rows with an empty person name count as their own person. Returns ``(keep, held)`` sorted index
    arrays; ``held`` is never empty and ``keep`` is empty only when there is a single person.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"split fraction must be between 0 and 1 (exclusive), got {fraction}")
    keys = [p or f"\0row{i}" for i, p in enumerate(persons)]
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    order = np.random.default_rng(seed).permutation(len(groups))
    names = list(groups)
    held: list[int] = []
    target = fraction * len(keys)
    for j in order:
        if held and len(held) + len(groups[names[j]]) / 2 > target:
            break
        held.extend(groups[names[j]])
    held_arr = np.sort(np.array(held, dtype=np.int64))
    keep = np.setdiff1d(np.arange(len(keys)), held_arr)
    return keep, held_arr


def _to_split(rows: _Rows, idx: np.ndarray, name: str, size: int, channels: int) -> KeypointSplit:
    images, points = rows.images[idx], rows.points[idx].copy()
    if images.shape[1:3] != (size, size) or channels == 3:
        k_x = size / images.shape[2]
        k_y = size / images.shape[1]
        points[..., 0] = (points[..., 0] + 0.5) * k_x - 0.5  # the same map as the resize
        points[..., 1] = (points[..., 1] + 0.5) * k_y - 0.5
        out = prepare_uint8(images, (size, size), channels)
        images = out[:, 0] if channels == 1 else np.ascontiguousarray(out.transpose(0, 2, 3, 1))
    return KeypointSplit(name, images, points, tuple(rows.sources[i] for i in idx),
                         tuple(person_of(rows.names[i]) if rows.names[i] else "" for i in idx))


def load_keypoint_dataset(cfg: DataConfig, seed: int = 0) -> KeypointDataset:
    """Read, split (see the module docstring) and resize a keypoint dataset.

    ``cfg.dataset``: ``keypoints15`` (Kaggle CSV at ``cfg.path``; ``cfg.labels_path`` = npz with
    the pixels when the CSV has no Image column) or ``keypoints68`` (npz at ``cfg.path``).
    ``cfg.test_split``: ``test`` or ``persons``. ``cfg.val_fraction``: share of train rows held out
    for validation, by person. ``cfg.limit``: keep at most this many train rows (seeded).
    """
    if cfg.dataset == "keypoints15":
        names, rows = read_kaggle_csv(cfg.path, cfg.labels_path or None)
    elif cfg.dataset == "keypoints68":
        names, rows = _rows_npz68(cfg.path)
    else:
        raise ConfigError(f"unknown keypoint dataset {cfg.dataset!r}; use keypoints15 or keypoints68")
    if cfg.test_split not in TEST_MODES:
        raise ConfigError(f"data.test_split must be one of {TEST_MODES} for keypoints, got {cfg.test_split!r}")
    if cfg.channels not in (1, 3) or cfg.image_size < 16:
        raise ConfigError(f"keypoints need data.channels 1 or 3 and data.image_size >= 16, got "
                          f"{cfg.channels} and {cfg.image_size}")
    flip_permutation(names)  # a dataset whose points cannot be mirrored is refused here
    persons = [person_of(n) if n else "" for n in rows.names]
    everything = np.arange(len(rows.images))
    if cfg.test_split == "persons":
        if not any(persons):
            raise DatasetError(f"{cfg.path}: no file names, so no persons to split by (use data.test_split=test)")
        train_idx, test_idx = person_split(persons, PERSON_TEST_FRACTION, seed)
    else:
        train_idx, test_idx = everything[rows.usage == "train"], everything[rows.usage == "test"]
        if len(test_idx) == 0:
            log.warning("%s has no Test rows: holding out %.0f%% of the persons as test",
                        cfg.path, 100 * PERSON_TEST_FRACTION)
            train_idx, test_idx = person_split(persons, PERSON_TEST_FRACTION, seed)
    keep, val = person_split([persons[i] for i in train_idx], cfg.val_fraction, seed + 1)
    train_idx, val_idx = train_idx[keep], train_idx[val]
    if cfg.limit and cfg.limit < len(train_idx):
        train_idx = np.sort(np.random.default_rng(seed).choice(train_idx, cfg.limit, replace=False))
    if len(train_idx) == 0:
        raise DatasetError(f"{cfg.path}: no training rows left after the splits")
    splits = {name: _to_split(rows, idx, name, cfg.image_size, cfg.channels)
              for name, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx))}
    return KeypointDataset(cfg.dataset, names, splits)
