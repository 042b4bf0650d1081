"""Keypoint datasets: Kaggle CSV layout (with and without Image, missing values), 68-point npz, splits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from emolens.config import DataConfig
from emolens.data.keypoints import (
    IBUG68,
    IBUG68_FLIP,
    KAGGLE15,
    flip_permutation,
    load_keypoint_dataset,
    person_of,
    person_split,
    points15_from_68,
    read_kaggle_csv,
    read_npz68,
)
from emolens.errors import ConfigError, DatasetError
from tests.train.keypoints.synthetic import write_kaggle_csv, write_npz68


def cfg(path: Path, **kw: object) -> DataConfig:
    base = DataConfig(dataset="keypoints15", path=str(path), image_size=32, val_fraction=0.2, test_split="test")
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_flip_permutation_swaps_left_and_right() -> None:
    flip = flip_permutation(KAGGLE15)
    for i, j in enumerate(flip):
        a, b = KAGGLE15[i], KAGGLE15[j]
        assert a.replace("left", "?").replace("right", "left").replace("?", "right") == b
    assert KAGGLE15[flip[KAGGLE15.index("nose_tip")]] == "nose_tip"
    assert sorted(flip) == list(range(15)) and all(flip[flip[i]] == i for i in range(15))
    assert flip_permutation(IBUG68) == IBUG68_FLIP
    assert sorted(IBUG68_FLIP) == list(range(68)) and all(IBUG68_FLIP[IBUG68_FLIP[i]] == i for i in range(68))
    assert IBUG68_FLIP[36] == 45 and IBUG68_FLIP[48] == 54 and IBUG68_FLIP[30] == 30
    with pytest.raises(DatasetError, match="mirror partner"):
        flip_permutation(("left_eye", "nose"))


def test_person_names() -> None:
    assert person_of("Luis_Fonsi_21.jpg") == "Luis_Fonsi"
    assert person_of("Carlos_Iturgaitz_31.jpg") == "Carlos_Iturgaitz"
    assert person_of("data/test/Bill_Gates_0.png") == "Bill_Gates"
    assert person_of("123.jpg") == "123"


def test_person_split_keeps_people_apart() -> None:
    persons = [f"P{i % 10}" for i in range(200)]
    keep, held = person_split(persons, 0.2, seed=3)
    assert len(np.intersect1d(keep, held)) == 0 and len(keep) + len(held) == 200
    assert {persons[i] for i in keep}.isdisjoint({persons[i] for i in held})
    assert 20 <= len(held) <= 60
    assert np.array_equal(person_split(persons, 0.2, seed=3)[1], held)  # seeded
    _, unnamed = person_split([""] * 10, 0.3, seed=0)  # unknown persons: every row its own
    assert len(unnamed) == 3
    with pytest.raises(ConfigError, match="fraction"):
        person_split(persons, 1.5, seed=0)


def test_points15_from_68_follows_the_readme_mapping() -> None:
    p = np.zeros((1, 68, 2), np.float32)
    p[0, :, 0] = np.arange(68)
    out = points15_from_68(p)
    named = dict(zip(KAGGLE15, out[0, :, 0], strict=True))
    assert named["left_eye_center"] == pytest.approx(np.mean(range(42, 48)))
    assert named["right_eye_outer_corner"] == 36 and named["mouth_left_corner"] == 54
    assert named["nose_tip"] == 30 and named["mouth_center_bottom_lip"] == 57
    with pytest.raises(DatasetError, match="68, 2"):
        points15_from_68(np.zeros((2, 15, 2)))


def test_kaggle_csv_with_image_column(tmp_path: Path) -> None:
    path = write_kaggle_csv(tmp_path / "kp.csv", n=40, size=32)
    names, rows = read_kaggle_csv(path)
    assert names == KAGGLE15
    assert rows.images.shape == (40, 32, 32) and rows.points.shape == (40, 15, 2)
    assert list(rows.usage).count("test") == 10
    assert rows.sources[0] == "kp.csv:row 1"


def test_kaggle_training_csv_layout_missing_values_no_usage(tmp_path: Path) -> None:
    path = write_kaggle_csv(tmp_path / "training.csv", n=30, usage=False, missing=0.4)
    names, rows = read_kaggle_csv(path)
    assert names == KAGGLE15 and set(rows.usage) == {"train"}
    assert np.isnan(rows.points).any() and np.isfinite(rows.points[0]).all()
    ds = load_keypoint_dataset(cfg(path))
    # no Test rows and no names: whole rows held out as test
    assert sum(len(s) for s in ds.splits.values()) == 30 and len(ds.split("test")) >= 1


def test_shared_layout_takes_pixels_and_names_from_the_npz(tmp_path: Path) -> None:
    npz = write_npz68(tmp_path / "kp68.npz", n_train=30, n_test=10)
    csv = write_kaggle_csv(tmp_path / "kp15.csv.gz", n=40, image=False)
    _, rows = read_kaggle_csv(csv, npz)
    assert rows.images.shape == (40, 32, 32) and rows.names[0] == "Person_0_00.jpg"
    ds = load_keypoint_dataset(cfg(csv, labels_path=str(npz), test_split="persons"))
    train_people = set(ds.split("train").persons) | set(ds.split("val").persons)
    assert train_people.isdisjoint(ds.split("test").persons)
    assert set(ds.split("train").persons).isdisjoint(ds.split("val").persons)


def test_resizing_moves_points_with_the_pixels(tmp_path: Path) -> None:
    path = write_kaggle_csv(tmp_path / "kp.csv", n=20, size=32)
    small = load_keypoint_dataset(cfg(path, image_size=32))
    big = load_keypoint_dataset(cfg(path, image_size=64))
    a, b = small.split("train"), big.split("train")
    assert b.images.shape[1:] == (64, 64)
    np.testing.assert_allclose(b.points, (a.points + 0.5) * 2 - 0.5, atol=1e-4)
    # the blob drawn at each point is still under it after resizing (background is about 60)
    for x, y in np.round(b.points[0]).astype(int):
        assert b.images[0, y - 1:y + 2, x - 1:x + 2].max() > 150


def test_npz68_dataset(tmp_path: Path) -> None:
    npz = write_npz68(tmp_path / "kp68.npz")
    imgs, pts, files, _ = read_npz68(npz)
    assert imgs.shape == (40, 32, 32) and pts.shape == (40, 68, 2) and len(files) == 40
    ds = load_keypoint_dataset(cfg(npz, dataset="keypoints68"))
    assert ds.points == IBUG68 and ds.flip == IBUG68_FLIP
    assert len(ds.split("test")) == 10


def test_limit_and_channels(tmp_path: Path) -> None:
    path = write_kaggle_csv(tmp_path / "kp.csv", n=40)
    ds = load_keypoint_dataset(cfg(path, limit=5, channels=3))
    assert len(ds.split("train")) == 5 and ds.split("train").images.shape[1:] == (32, 32, 3)


def test_bad_files_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        read_kaggle_csv(tmp_path / "absent.csv")
    (tmp_path / "nocols.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="no keypoint columns"):
        read_kaggle_csv(tmp_path / "nocols.csv")
    (tmp_path / "text.csv").write_text("nose_tip_x,nose_tip_y,Image\n3,abc,1 2 3 4\n")
    with pytest.raises(DatasetError, match=r"row 1: nose_tip_y = 'abc'"):
        read_kaggle_csv(tmp_path / "text.csv")
    (tmp_path / "pix.csv").write_text("nose_tip_x,nose_tip_y,Image\n3,4,1 2 3\n")
    with pytest.raises(DatasetError, match="row 1: Image needs a square"):
        read_kaggle_csv(tmp_path / "pix.csv")
    (tmp_path / "noimg.csv").write_text("nose_tip_x,nose_tip_y\n3,4\n")
    with pytest.raises(DatasetError, match="no Image column"):
        read_kaggle_csv(tmp_path / "noimg.csv")
    (tmp_path / "usage.csv").write_text("nose_tip_x,nose_tip_y,Usage,Image\n3,4,Later," + " ".join(["1"] * 64) + "\n")
    with pytest.raises(DatasetError, match="row 1: Usage 'Later'"):
        read_kaggle_csv(tmp_path / "usage.csv")
    npz = write_npz68(tmp_path / "kp68.npz", n_train=3, n_test=2)
    csv = write_kaggle_csv(tmp_path / "kp15.csv", n=7, image=False)
    with pytest.raises(DatasetError, match=r"7 rows but .* 5 images"):
        read_kaggle_csv(csv, npz)
    np.savez(tmp_path / "partial.npz", train_images=np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(DatasetError, match="lacks"):
        read_npz68(tmp_path / "partial.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable npz"):
        read_npz68(tmp_path / "junk.npz")


def test_bad_settings(tmp_path: Path) -> None:
    path = write_kaggle_csv(tmp_path / "kp.csv", n=20)
    with pytest.raises(ConfigError, match="unknown keypoint dataset"):
        load_keypoint_dataset(cfg(path, dataset="fer2013"))
    with pytest.raises(ConfigError, match="test_split"):
        load_keypoint_dataset(cfg(path, test_split="val"))
    with pytest.raises(DatasetError, match="no file names"):
        load_keypoint_dataset(cfg(path, test_split="persons"))


@pytest.mark.shared
def test_real_facial_keypoints(shared_data: Path) -> None:
    root = shared_data / "facial-keypoints"
    base = cfg(root / "keypoints15.csv.gz", labels_path=str(root / "keypoints68.npz"), image_size=96,
               val_fraction=0.1)
    ds = load_keypoint_dataset(base)
    assert ds.points == KAGGLE15
    assert len(ds.split("test")) == 770 and len(ds.split("train")) + len(ds.split("val")) == 3462
    train = ds.split("train")
    left, right = train.points[:, 0, 0], train.points[:, 1, 0]
    assert (left > right).all()  # subject's left eye on the image's right, in every row
    assert not np.isnan(train.points).any()
    # the CSV's points equal the README mapping of the npz's 68 landmarks
    _, p68, _, _ = read_npz68(root / "keypoints68.npz")
    _, rows = read_kaggle_csv(root / "keypoints15.csv.gz", root / "keypoints68.npz")
    np.testing.assert_allclose(points15_from_68(p68), rows.points, atol=1e-3)
    persons = load_keypoint_dataset(dataclasses.replace(base, test_split="persons"))
    assert set(persons.split("test").persons).isdisjoint(persons.split("train").persons)
    assert 0.15 < len(persons.split("test")) / 4232 < 0.25
