"""The evaluation core: label alignment, duplicate exclusion, and metrics.json plus figures on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emolens.errors import InvalidInput
from emolens.evaluation.runner import (
    align_labels,
    evaluate_arrays,
    evaluate_model,
    load_dataset_for_model,
    select_split,
    train_duplicate_mask,
)
from emolens.labels import FER7, FERPLUS8
from emolens.modelmeta import ModelMeta
from emolens.preprocess import prepare_uint8, softmax
from tests.evaluation.helpers import SIZE, make_images, write_folder_dataset


class BrightnessPredictor:
    """A numpy-only stand-in model: reads the class from mean brightness (see helpers.make_images)."""

    source = "brightness-test-model"

    def __init__(self, labels: tuple[str, ...] = FER7, order: tuple[str, ...] | None = None):
        # ``order``: the model's output order; the brightness code follows ``labels``.
        self.code = labels
        self.meta = ModelMeta(labels=order or labels, input_size=(SIZE, SIZE), channels=1, mean=(0.5,),
                              std=(0.25,), architecture="brightness", dataset="synthetic")

    def predict(self, images: np.ndarray) -> np.ndarray:
        x = prepare_uint8(images, self.meta.input_size, 1).astype(np.float64)
        mean = x.reshape(len(x), -1).mean(1)
        centers = (30 + 28 * np.arange(len(self.code))) * 15 / 16 + 255 / 16  # the corner mark is 1/16
        logits = -((mean[:, None] - centers[None]) ** 2) / 20.0
        p = softmax(logits.astype(np.float32), axis=1)
        return p[:, [self.code.index(name) for name in self.meta.labels]]


def test_align_labels_reorders_into_model_order() -> None:
    y = np.array([0, 1, 6])
    model = tuple(reversed(FER7))
    assert align_labels(FER7, model, y).tolist() == [6, 5, 0]
    assert align_labels(FER7, FER7, y).tolist() == [0, 1, 6]


def test_label_set_mismatch_names_both_sets() -> None:
    with pytest.raises(InvalidInput) as e:
        align_labels(FER7, FERPLUS8, np.array([0]), dataset="dataset X", model="model Y")
    msg = str(e.value)
    assert "dataset X has ['anger'" in msg and "model Y has ['anger'" in msg
    assert "only in the model: ['contempt']" in msg


def test_train_duplicate_mask() -> None:
    train = make_images(np.arange(7), seed=1)
    test = np.concatenate([make_images(np.arange(7), seed=2), train[[3, 5]]])
    assert train_duplicate_mask(test, train).tolist() == [False] * 7 + [True, True]
    assert not train_duplicate_mask(test, train[:0]).any()


def test_evaluate_arrays_with_tta() -> None:
    y = np.repeat(np.arange(7), 3)
    res = evaluate_arrays(BrightnessPredictor(), make_images(y, seed=3), y, batch_size=4, tta=True)
    assert res.metrics["accuracy"] > 0.9
    assert res.tta_probs is not None and res.tta_metrics is not None
    assert res.tta_probs.shape == res.probs.shape


def test_evaluate_model_writes_metrics_and_figures(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "faces", n_per_class=3, duplicates=2)
    pred = BrightnessPredictor(order=tuple(reversed(FER7)))  # outputs in another order than the folder's
    report = evaluate_model(pred, "folder", root, tmp_path / "eval", split="test", tta=True,
                            exclude_train_duplicates=True)
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert saved["split"] == "test" and saved["dataset"] and saved["model"]["architecture"] == "brightness"
    assert saved["excluded_train_duplicates"] == 2
    assert saved["n"] == 21  # 7 classes x 3, the 2 copies of train images left out
    assert saved["accuracy"] > 0.9  # correct only if targets were put in the model's order
    assert saved["labels"] == list(reversed(FER7))
    assert saved["tta"]["accuracy"] == pytest.approx(saved["accuracy"], abs=0.1)
    for name in ("confusion_matrix.png", "roc.png", "reliability.png", "tta_confusion_matrix.png"):
        assert (tmp_path / "eval" / name).stat().st_size > 1000


def test_without_exclusion_duplicates_stay(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "faces", n_per_class=2, duplicates=3)
    pred = BrightnessPredictor()
    ds = load_dataset_for_model(pred.meta, "folder", root)
    assert len(select_split(ds, pred.meta, "test").images) == 17
    part = select_split(ds, pred.meta, "test", exclude_train_duplicates=True)
    assert part.excluded_train_duplicates == 3 and len(part.images) == 14
    with pytest.raises(InvalidInput, match="train split and another"):
        select_split(ds, pred.meta, "train", exclude_train_duplicates=True)


def test_evaluate_model_refuses_other_label_set(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "faces", n_per_class=2)
    pred = BrightnessPredictor(labels=FERPLUS8)
    with pytest.raises(InvalidInput, match=r"label sets differ.*contempt"):
        evaluate_model(pred, "folder", root, tmp_path / "eval")
    assert not (tmp_path / "eval" / "metrics.json").exists()


@pytest.mark.shared
def test_fer2013_cross_split_duplicates_match_its_readme(shared_data: Path) -> None:
    """The FER2013 README counts 280 PublicTest and 288 PrivateTest rows identical to a Training row."""
    pred = BrightnessPredictor()
    ds = load_dataset_for_model(pred.meta, "fer2013", shared_data / "fer2013" / "fer2013.csv.gz")
    assert ds.labels == FER7
    val = select_split(ds, pred.meta, "PublicTest", exclude_train_duplicates=True)
    test = select_split(ds, pred.meta, "PrivateTest", exclude_train_duplicates=True)
    assert (val.excluded_train_duplicates, len(val.images)) == (280, 3589 - 280)
    assert (test.excluded_train_duplicates, len(test.images)) == (288, 3589 - 288)
    assert val.images.shape[1:] == (SIZE, SIZE)  # loaded at the model's input size


@pytest.mark.shared
def test_ferplus_labels_do_not_fit_a_fer7_model(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"label sets differ.*only in the data: \['contempt'\]"):
        evaluate_model(BrightnessPredictor(), "ferplus", shared_data / "fer2013" / "fer2013.csv.gz", tmp_path,
                       labels_path=str(shared_data / "ferplus" / "fer2013new.csv"))


@pytest.mark.shared
def test_ferplus_test_rows_follow_the_chosen_protocol(shared_data: Path, tmp_path: Path) -> None:
    """FER+ is scored on Microsoft's majority rows by default (3,153 PrivateTest rows), on every row with
    one top emotion when asked (3,376); the report names which."""
    csv, votes = shared_data / "fer2013" / "fer2013.csv.gz", str(shared_data / "ferplus" / "fer2013new.csv")
    model = BrightnessPredictor(labels=FERPLUS8)
    strict = evaluate_model(model, "ferplus", csv, tmp_path / "a", labels_path=votes)
    loose = evaluate_model(model, "ferplus", csv, tmp_path / "b", labels_path=votes, ferplus_rows="plurality")
    assert (strict["n"], strict["ferplus_rows"]) == (3153, "majority")
    assert (loose["n"], loose["ferplus_rows"]) == (3376, "plurality")
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["ferplus_rows"] == "majority"
