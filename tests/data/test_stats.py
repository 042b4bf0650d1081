import json

import numpy as np
import pytest
from PIL import Image

from emolens.data import detect_dataset
from emolens.data.stats import dataset_stats
from emolens.errors import DatasetError

from .test_fer2013 import make_rows, write_rows


@pytest.fixture(autouse=True)
def _tmp_cache(request, tmp_path, monkeypatch):
    if "shared_data" not in request.fixturenames:
        monkeypatch.setenv("EMOLENS_CACHE", str(tmp_path / "cache"))


def test_counts_imbalance_and_duplicates(tmp_path, rng):
    rows = make_rows(rng, (14, 7, 7))
    rows[1] = (rows[1][0], rows[0][1], "Training")  # within-train duplicate pair (rows 0, 1)
    rows[2] = (rows[2][0], rows[0][1], "Training")  # ... now a group of three
    rows[14] = (rows[14][0], rows[5][1], "PublicTest")  # val image also in train
    rows[21] = (rows[21][0], rows[5][1], "PrivateTest")  # test image in train and val
    rows[22] = (rows[22][0], rows[15][1], "PrivateTest")  # test image in val only
    rows[13] = (0, rows[13][1], "Training")  # train: class 0 has 3, class 6 has 1
    path = write_rows(tmp_path / "f.csv", rows)
    st = dataset_stats(path)
    assert st.dataset == "fer2013" and st.total == 28
    train, val, test = st.splits
    assert train.per_class["anger"] == 3 and train.per_class["neutral"] == 1
    assert train.imbalance == 3.0
    assert train.image_sizes == {"48x48": 14} and train.channels == {"gray": 14}
    assert (train.duplicate_groups, train.duplicate_images) == (1, 3)
    assert (val.duplicate_groups, test.duplicate_groups) == (0, 0)
    assert st.cross_duplicates == {"val in train": 1, "test in train": 1, "test in val": 2}
    pixels = np.stack([r[1] for r in rows[:14]])
    assert train.mean == round(float(pixels.mean()), 2)
    json.dumps(st.to_dict())


def test_folder_sizes_channels_and_derived_splits(tmp_path, rng):
    root = tmp_path / "d"
    for c, n in (("happy", 10), ("sad", 10)):
        for i in range(n):
            (root / "train" / c).mkdir(parents=True, exist_ok=True)
            shape = (48, 48) if i % 2 else (60, 50, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / "train" / c / f"{i}.png")
    st = dataset_stats(root, val_fraction=0.2)
    assert st.dataset == "folder"
    assert [s.name for s in st.splits] == ["train", "val", "test"]
    assert sum(sum(s.image_sizes.values()) for s in st.splits) == 20
    assert st.splits[0].image_sizes.keys() == {"48x48", "50x60"}
    assert sum(s.channels.get("rgb", 0) for s in st.splits) == 10
    assert st.split("val").derived.startswith("stratified 20% of train")
    train = st.split("train")
    assert train.imbalance is None and "anger" in train.empty_classes
    assert json.loads(json.dumps(st.to_dict()))["splits"][0]["imbalance"] is None


def test_skipped_counts_reported(tmp_path, rng):
    rows = make_rows(rng, (3, 1, 1))
    path = write_rows(tmp_path / "f.csv", rows)
    with path.open("a") as f:
        f.write("9,1 2 3,Training\n")
    assert dataset_stats(path, skip_bad=True).skipped == {"label out of range": 1}
    with pytest.raises(DatasetError, match="line 7"):
        dataset_stats(path)


def test_detect_dataset(tmp_path):
    assert detect_dataset(tmp_path) == "folder"
    assert detect_dataset(tmp_path / "x.csv") == "fer2013"
    assert detect_dataset(tmp_path / "x.csv.gz", labels_path="v.csv") == "ferplus"
    with pytest.raises(DatasetError, match="not found"):
        detect_dataset(tmp_path / "x.zip")
    (tmp_path / "x.zip").touch()
    with pytest.raises(DatasetError, match="--dataset"):
        detect_dataset(tmp_path / "x.zip")
    with pytest.raises(DatasetError, match="did you mean 'fer2013'"):
        dataset_stats(tmp_path, dataset="fer")


@pytest.mark.shared
def test_real_fer2013_duplicates_match_readme(shared_data):
    st = dataset_stats(shared_data / "fer2013" / "fer2013.csv.gz")
    assert st.cross_duplicates == {"val in train": 280, "test in train": 288, "test in val": 44}
    assert sum(s.duplicate_groups for s in st.splits) == 1077
    assert sum(s.duplicate_images for s in st.splits) == 2356
    assert [s.count for s in st.splits] == [28709, 3589, 3589]
    assert st.split("train").per_class["disgust"] == 436
