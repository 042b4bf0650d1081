from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emolens.config import DataConfig
from emolens.data import load_dataset
from emolens.data.folder import read_folder, read_image, split_name, to_uint8_image
from emolens.errors import DatasetError
from emolens.labels import FER7, FERPLUS8

MSAMBARE = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def save(path: Path, rng, size=(48, 48), mode="L", fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    if mode == "RGB":
        im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    else:
        im = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L")
    im.save(path, format=fmt)
    return path


def tree(root: Path, rng, splits=("train", "test"), classes=MSAMBARE, n=10, ext=".png") -> Path:
    for split in splits:
        for c in classes:
            for i in range(n):
                save(root / split / c / f"{i}{ext}", rng)
    return root


def _cfg(root: Path, **kw) -> DataConfig:
    return DataConfig(dataset="folder", path=str(root), **kw)


def test_msambare_layout_makes_val_from_train(tmp_path, rng):
    root = tree(tmp_path / "fer", rng, ext=".jpg")
    ds = load_dataset(_cfg(root), seed=0)
    assert ds.labels == FER7 and ds.skipped == {}
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 63, "val": 7, "test": 70}
    assert np.bincount(ds.split("val").labels).tolist() == [1] * 7
    test = ds.split("test")
    assert test.images.shape == (70, 48, 48) and test.images.dtype == np.uint8
    assert test.sources[0] == str(root / "test" / "angry" / "0.jpg")
    assert FER7[test.labels[0]] == "anger" and FER7[test.labels[-1]] == "surprise"


def test_train_validation_layout_and_wrapper_folder(tmp_path, rng):
    tree(tmp_path / "face-expression" / "images", rng, splits=("train", "validation"), n=10)
    ds = load_dataset(_cfg(tmp_path / "face-expression", val_fraction=0.1), seed=1)
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 63, "val": 70, "test": 7}


def test_mma_layout_with_synonyms(tmp_path, rng):
    classes = ("Angry", "0_disgusted", "Fearful", "3 happy", "Neutral", "sadness", "Surprised")
    root = tree(tmp_path / "mma", rng, splits=("Training", "valid", "PrivateTest"), classes=classes, n=2)
    ds = load_dataset(_cfg(root))
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 14, "val": 14, "test": 14}
    assert sorted(set(ds.split("val").labels.tolist())) == list(range(7))


def test_single_level_is_split_three_ways(tmp_path, rng):
    root = tmp_path / "flat"
    for c in MSAMBARE:
        for i in range(10):
            save(root / c / f"{i}.png", rng)
    ds = load_dataset(_cfg(root, val_fraction=0.2), seed=0)
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 42, "val": 14, "test": 14}
    for split in ds.splits.values():
        assert np.bincount(split.labels, minlength=7).min() >= 2


def test_contempt_folder_selects_ferplus8(tmp_path, rng):
    root = tree(tmp_path / "d", rng, splits=("train", "val", "test"), classes=("happy", "contempt"), n=2)
    ds = load_dataset(_cfg(root))
    assert ds.labels == FERPLUS8
    assert sorted(set(ds.split("train").labels.tolist())) == [3, 7]


def test_any_mode_and_size_to_model_input(tmp_path, rng):
    root = tree(tmp_path / "d", rng, splits=("train", "val", "test"), classes=("happy",), n=2)
    d = root / "train" / "happy"
    arr = rng.integers(0, 256, (30, 40, 4), dtype=np.uint8)
    Image.fromarray(arr, "RGBA").save(d / "rgba.png")
    Image.fromarray(arr[..., :2].copy(), "LA").save(d / "la.png")
    Image.fromarray(arr[..., 0].astype(np.uint16) * 257).save(d / "deep.png")
    Image.fromarray(arr[..., :3].copy(), "RGB").convert("P").save(d / "palette.gif")
    Image.fromarray(arr[..., :3].copy(), "RGB").convert("CMYK").save(d / "cmyk.tiff")
    Image.fromarray(arr[..., :3].copy(), "RGB").save(d / "big.webp")
    Image.fromarray(arr[..., 0] > 128).save(d / "bits.bmp")
    Image.fromarray(arr[..., 1].astype(np.int32) * 257).save(d / "int32.tif")
    assert np.array_equal(read_image(d / "deep.png"), arr[..., 0])
    assert np.array_equal(read_image(d / "int32.tif"), arr[..., 1])
    assert np.array_equal(read_image(d / "rgba.png"), arr[..., :3])
    ds = load_dataset(_cfg(root, image_size=64, channels=3))
    train = ds.split("train")
    assert train.images.shape == (10, 64, 64, 3)
    gray = load_dataset(_cfg(root, image_size=32, channels=1)).split("train")
    assert gray.images.shape == (10, 32, 32)


def test_to_uint8_image_scales_deep_modes(rng):
    a16 = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    assert to_uint8_image(Image.fromarray(a16)).tolist() == [[0, 100, 255]]
    f = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    assert to_uint8_image(Image.fromarray(f)).tolist() == [[0, 128, 255]]
    rgba = Image.fromarray(np.full((2, 2, 4), 9, np.uint8), "RGBA")
    assert to_uint8_image(rgba).shape == (2, 2, 3)


def test_text_posing_as_png(tmp_path, rng):
    root = tree(tmp_path / "d", rng, classes=("happy", "sad"), n=3)
    fake = root / "train" / "sad" / "fake.png"
    fake.write_text("this is not an image")
    (root / "train" / "sad" / "empty.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"empty\.jpg: cannot decode"):
        load_dataset(_cfg(root))
    ds = load_dataset(_cfg(root, skip_bad=True))
    assert ds.skipped == {"unreadable image": 2}
    assert str(fake) not in ds.split("train").sources + ds.split("val").sources


def test_non_image_file_and_hidden_files(tmp_path, rng):
    root = tree(tmp_path / "d", rng, classes=("happy", "sad"), n=3)
    (root / "train" / "happy" / ".DS_Store").write_bytes(b"\0\0")
    (root / "test" / "sad" / "Thumbs.db").write_bytes(b"\0\0")
    assert load_dataset(_cfg(root)).skipped == {}
    (root / "train" / "happy" / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match=r"notes\.txt: not an image file"):
        load_dataset(_cfg(root))
    assert load_dataset(_cfg(root, skip_bad=True)).skipped == {"not an image file": 1}


def test_unknown_class_folder(tmp_path, rng):
    root = tree(tmp_path / "d", rng, classes=("happy", "sad"), n=3)
    save(root / "train" / "bored" / "0.png", rng)
    save(root / "test" / "bored" / "0.png", rng)
    with pytest.raises(DatasetError, match=r"bored: unknown class folder 'bored'"):
        load_dataset(_cfg(root))
    ds = load_dataset(_cfg(root, skip_bad=True))
    assert ds.skipped == {"unknown class folder": 2}
    assert len(ds.split("test")) == 6


def test_unknown_and_duplicate_split_folders(tmp_path, rng):
    root = tree(tmp_path / "d", rng, splits=("train", "test", "extra"), classes=("happy", "sad"), n=3)
    with pytest.raises(DatasetError, match="unknown split folder 'extra'"):
        load_dataset(_cfg(root))
    assert load_dataset(_cfg(root, skip_bad=True)).skipped == {"unknown split folder": 1}
    tree(root, rng, splits=("Testing",), classes=("happy",), n=1)
    with pytest.raises(DatasetError, match="both the test split"):
        load_dataset(_cfg(root, skip_bad=True))


def test_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="not a directory"):
        read_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no folders found"):
        read_folder(tmp_path / "empty")


def test_empty_split_is_an_error(tmp_path, rng):
    root = tree(tmp_path / "d", rng, classes=("happy",), n=3)
    for f in (root / "test" / "happy").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match="has no images"):
        load_dataset(_cfg(root))


def test_split_names():
    assert [
        split_name(n)
        for n in ("Training", "VALID", "validation", "PublicTest", "private_test", "testing", "happy")
    ] == ["train", "val", "val", "val", "test", "test", None]


def test_read_image_exif_rotation(tmp_path, rng):
    p = save(tmp_path / "r.jpg", rng, size=(20, 30), mode="RGB")
    im = Image.open(p)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    im.save(tmp_path / "rot.jpg", exif=exif)
    assert read_image(tmp_path / "rot.jpg").shape == (30, 20, 3)
