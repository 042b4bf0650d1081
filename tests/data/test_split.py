import numpy as np
import pytest

from emolens.data.split import (
    RawData,
    RawSplit,
    complete_splits,
    limit_train,
    stratified_pick,
    stratified_split,
    stratified_three_way,
)
from emolens.errors import ConfigError, DatasetError


def _labels() -> np.ndarray:
    return np.repeat(np.arange(3), [100, 50, 10])


def _raw(**splits: np.ndarray) -> RawData:
    out = {}
    for name, labels in splits.items():
        imgs = np.arange(len(labels) * 4, dtype=np.uint8).reshape(-1, 2, 2)
        out[name] = RawSplit(imgs, labels.astype(np.int64), tuple(f"{name}{i}" for i in range(len(labels))))
    return RawData(name="t", labels=("a", "b", "c"), splits=out)


def test_stratified_split_keeps_proportions_and_partitions():
    y = _labels()
    keep, held = stratified_split(y, 0.2, seed=0)
    assert len(held) == 32
    assert np.bincount(y[held]).tolist() == [20, 10, 2]
    assert np.array_equal(np.sort(np.concatenate([keep, held])), np.arange(len(y)))


def test_stratified_split_is_seeded():
    y = _labels()
    a = stratified_split(y, 0.2, seed=1)[1]
    b = stratified_split(y, 0.2, seed=1)[1]
    c = stratified_split(y, 0.2, seed=2)[1]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_singleton_class_stays_in_keep():
    y = np.array([0] * 20 + [1] * 20 + [2])
    keep, held = stratified_split(y, 0.25, seed=0)
    assert 40 in keep
    assert np.bincount(y[held], minlength=3).tolist() == [5, 5, 0]


def test_pick_too_small_to_stratify_falls_back_to_random():
    y = np.repeat(np.arange(5), 4)
    rest, picked = stratified_pick(y, 2, seed=0)
    assert len(picked) == 2 and len(rest) == 18
    assert not set(rest) & set(picked)


@pytest.mark.parametrize("n_pick", [0, 20, -1])
def test_pick_out_of_range(n_pick):
    with pytest.raises(DatasetError, match="cannot pick"):
        stratified_pick(np.zeros(20, dtype=int), n_pick)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_fraction(fraction):
    with pytest.raises(ConfigError, match="val_fraction"):
        stratified_split(_labels(), fraction)


def test_three_way_partition():
    y = _labels()
    tr, va, te = stratified_three_way(y, 0.1, 0.1, seed=0)
    assert len(va) == 16 and len(te) == 16
    assert np.array_equal(np.sort(np.concatenate([tr, va, te])), np.arange(len(y)))
    assert np.bincount(y[te]).tolist() == [10, 5, 1]


def test_complete_splits_makes_val_and_test_from_train_only():
    raw = complete_splits(_raw(train=_labels()), 0.1, seed=0)
    assert list(raw.splits) == ["train", "val", "test"]
    assert [len(s) for s in raw.splits.values()] == [128, 16, 16]
    assert "stratified 10% of train" in raw.derived["val"]
    sources = [set(s.sources) for s in raw.splits.values()]
    assert not (sources[0] & sources[1]) and not (sources[0] & sources[2]) and not (sources[1] & sources[2])


def test_complete_splits_makes_only_what_is_missing():
    raw = complete_splits(_raw(train=_labels(), test=np.array([0, 1, 2])), 0.25, seed=0)
    assert len(raw.splits["val"]) == 40 and len(raw.splits["train"]) == 120
    assert len(raw.splits["test"]) == 3 and "test" not in raw.derived
    raw = complete_splits(_raw(train=_labels(), val=np.array([0, 1, 2])), 0.25, seed=0)
    assert len(raw.splits["test"]) == 40 and "val" not in raw.derived


def test_complete_splits_errors():
    with pytest.raises(DatasetError, match="no train split"):
        complete_splits(_raw(val=np.array([0, 1])), 0.1)
    with pytest.raises(DatasetError, match="'val' is empty"):
        complete_splits(_raw(train=_labels(), val=np.array([], dtype=int)), 0.1)


def test_limit_train_is_stratified():
    raw = complete_splits(_raw(train=_labels(), val=np.array([0]), test=np.array([1])), 0.1)
    small = limit_train(raw, 32, seed=0)
    assert np.bincount(small.splits["train"].labels).tolist() == [20, 10, 2]
    assert len(small.splits["val"]) == 1
    assert limit_train(raw, 0) is raw
    assert limit_train(raw, 10_000) is raw
    with pytest.raises(ConfigError, match="limit"):
        limit_train(raw, -1)


def test_take_on_list_images():
    s = RawSplit([np.zeros((i + 1, i + 1), np.uint8) for i in range(4)], np.arange(4), ("a", "b", "c", "d"))
    t = s.take(np.array([3, 1]))
    assert [im.shape for im in t.images] == [(4, 4), (2, 2)]
    assert t.sources == ("d", "b") and t.labels.tolist() == [3, 1]
