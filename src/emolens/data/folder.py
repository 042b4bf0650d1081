"""Image-folder datasets: ``ROOT/<split>/<class>/*.png`` or ``ROOT/<class>/*.png``.

Covers the common Kaggle layouts: "msambare/fer2013" (``train/ test/`` with ``angry disgust fear
happy neutral sad surprise``), "face-expression-recognition" (``train/ validation/``) and the MMA
layout (``train/ valid/ test/``). Split folder names are normalised (``training``, ``valid``,
``validation``, ``publictest``, ``privatetest`` ...) and class folder names go through
:func:`emolens.labels.canonical_label` (``angry`` -> ``anger``, ``3_happy`` -> ``happiness``). A root
holding a single other folder (``images/``, ``fer2013/``) is descended into.

With class folders directly under ROOT everything is ``train``; ``load_dataset`` then splits val
and test off it, as it splits val off train when a layout has no val folder. The label set is
:data:`~emolens.labels.FER7` unless some split has a contempt folder (then FERPLUS8).

Images of any size and mode (RGBA, LA, palette, 16-bit, float, CMYK, EXIF-rotated) are decoded with
Pillow to uint8 gray or RGB. An unknown folder name, a file that is not an image, or an image that
does not decode raises :class:`~emolens.errors.DatasetError` naming it; with ``skip_bad`` it is left
out and counted in ``skipped``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DatasetError
from ..labels import FER7, FERPLUS8, canonical_label
from .base import SPLIT_ALIASES
from .split import SPLIT_ORDER, RawData, RawSplit

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
_JUNK = frozenset({"thumbs.db", "desktop.ini", "__macosx"})
_EXTRA_SPLITS = {"testing": "test", "train_set": "train", "test_set": "test", "val_set": "val"}

UNKNOWN_SPLIT = "unknown split folder"
UNKNOWN_CLASS = "unknown class folder"
NOT_IMAGE = "not an image file"
UNREADABLE = "unreadable image"


def split_name(name: str) -> str | None:
    """The canonical split for a folder name (``Validation`` -> ``val``), or None."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    return SPLIT_ALIASES.get(key) or SPLIT_ALIASES.get(key.replace("_", "")) or _EXTRA_SPLITS.get(key)


def _visible(entries: list[Path]) -> list[Path]:
    return [p for p in entries if not p.name.startswith(".") and p.name.lower() not in _JUNK]


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in _visible(list(path.iterdir())) if p.is_dir())


def to_uint8_image(im: Image.Image) -> np.ndarray:
    """A Pillow image in any mode -> uint8 ``(H, W)`` gray or ``(H, W, 3)`` RGB (alpha dropped).

    16-bit and 32-bit integer images are scaled from 0..65535, float images from 0..1 (when their
    values stay within it); palette images are expanded to RGB; CMYK and other colour modes go
    through Pillow's conversion to RGB.
    """
    mode = im.mode
    if mode in ("L", "RGB"):
        return np.asarray(im, dtype=np.uint8)
    if mode in ("1", "LA", "La"):
        return np.asarray(im.convert("L"), dtype=np.uint8)
    if mode.startswith(("I", "F")):
        a = np.asarray(im, dtype=np.float64)
        if mode.startswith("I;16") or (mode == "I" and a.max(initial=0) > 255):
            a = a / 257.0
        elif mode == "F" and a.max(initial=0) <= 1.0:
            a = a * 255.0
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if mode in ("P", "PA"):
        im = im.convert("RGBA")
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def read_image(path: Path) -> np.ndarray:
    """Decode one image file (first frame of animations, EXIF orientation applied).

    Raises DatasetError naming the file when it is not an image Pillow can decode.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's palette-transparency and EXIF warnings
            with Image.open(path) as im:
                im.load()
                arr = to_uint8_image(ImageOps.exif_transpose(im))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DatasetError(f"{path}: cannot decode the image ({e})") from e
    if arr.ndim == 2 and min(arr.shape) == 0:
        raise DatasetError(f"{path}: the image is empty ({arr.shape})")
    return arr


class _Collector:
    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.skipped: dict[str, int] = {}

    def bad(self, reason: str, message: str) -> None:
        if not self.skip_bad:
            raise DatasetError(message)
        log.warning("skipped: %s", message)
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _find_root(root: Path) -> Path:
    """Descend through single wrapper folders that are neither a split nor a class."""
    for _ in range(4):
        subs = _subdirs(root)
        if len(subs) == 1 and split_name(subs[0].name) is None and canonical_label(subs[0].name) is None:
            root = subs[0]
        else:
            break
    return root


def _layout(root: Path, bad: _Collector) -> dict[str, list[Path]]:
    """Split name -> the class folders in it."""
    subs = _subdirs(root)
    if not subs:
        raise DatasetError(
            f"{root}: no folders found; expected ROOT/<split>/<class>/ or ROOT/<class>/ image folders"
        )
    if not any(split_name(d.name) for d in subs):
        return {"train": subs}
    layout: dict[str, list[Path]] = {}
    seen: dict[str, Path] = {}
    for d in subs:
        split = split_name(d.name)
        if split is None:
            bad.bad(
                UNKNOWN_SPLIT,
                f"{d}: unknown split folder {d.name!r}; expected train, val/valid/validation or test",
            )
            continue
        if split in seen:
            raise DatasetError(f"{seen[split]} and {d} are both the {split} split")
        seen[split] = d
        layout[split] = _subdirs(d)
    return layout


def _class_files(split_dir: list[Path], bad: _Collector) -> list[tuple[str, list[Path]]]:
    out: list[tuple[str, list[Path]]] = []
    for d in split_dir:
        label = canonical_label(d.name)
        if label is None:
            bad.bad(
                UNKNOWN_CLASS,
                f"{d}: unknown class folder {d.name!r}; expected an emotion such as angry, "
                "disgust, fear, happy, sad, surprise, neutral or contempt",
            )
            continue
        files = sorted(
            p
            for p in d.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") or part.lower() in _JUNK for part in p.relative_to(d).parts)
        )
        out.append((label, files))
    return out


def _read_split(
    name: str, classes: list[tuple[str, list[Path]]], labels: tuple[str, ...], bad: _Collector
) -> RawSplit | None:
    images: list[np.ndarray] = []
    ys: list[int] = []
    sources: list[str] = []
    for label, files in classes:
        for f in files:
            if f.suffix.lower() not in IMAGE_EXTENSIONS:
                bad.bad(
                    NOT_IMAGE,
                    f"{f}: not an image file (extension {f.suffix or 'none'!r}; expected one of "
                    f"{', '.join(sorted(IMAGE_EXTENSIONS))})",
                )
                continue
            try:
                img = read_image(f)
            except DatasetError as e:
                bad.bad(UNREADABLE, str(e))
                continue
            images.append(img)
            ys.append(labels.index(label))
            sources.append(str(f))
    if not images:
        raise DatasetError(f"split {name!r} has no images")
    return RawSplit(images, np.array(ys, dtype=np.int64), tuple(sources))


def read_folder(root: str | Path, skip_bad: bool = False) -> RawData:
    """An image-folder dataset as :class:`~emolens.data.split.RawData` (images at their own size)."""
    path = Path(root)
    if not path.is_dir():
        raise DatasetError(f"image folder dataset not found: {path} is not a directory")
    path = _find_root(path)
    bad = _Collector(skip_bad)
    layout = {s: _class_files(dirs, bad) for s, dirs in _layout(path, bad).items()}
    found = {label for classes in layout.values() for label, _ in classes}
    if not found:
        raise DatasetError(f"{path}: no emotion class folders found")
    labels = FERPLUS8 if "contempt" in found else FER7
    splits: dict[str, RawSplit] = {}
    for split in SPLIT_ORDER:
        if split in layout:
            raw = _read_split(f"{split} ({path})", layout[split], labels, bad)
            if raw is not None:
                splits[split] = raw
    return RawData(name=path.name or "folder", labels=labels, splits=splits, skipped=bad.skipped)
