"""Predictors: checkpoint and ONNX loading by file content, batching, flip TTA, bad model files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emolens.errors import CheckpointError, InvalidInput, ModelFormatError
from emolens.evaluation.predict import (
    OnnxPredictor,
    Predictor,
    TorchPredictor,
    describe,
    hflip,
    load_predictor,
    model_format,
    predict_batched,
    predict_with_tta,
)
from emolens.labels import FER7
from tests.evaluation.helpers import make_checkpoint, make_dataset

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt")


def test_torch_predictor_gives_probabilities(checkpoint: Path) -> None:
    pred = load_predictor(checkpoint)
    assert isinstance(pred, TorchPredictor) and isinstance(pred, Predictor)
    assert pred.meta.labels == FER7
    test = make_dataset(n_per_class=4).splits["test"]
    p = pred.predict(test.images)
    assert p.shape == (len(test), 7) and p.dtype == np.float32
    assert np.allclose(p.sum(1), 1.0, atol=1e-5)
    assert (p.argmax(1) == test.labels).mean() > 0.5  # the few training steps learned the brightness cue
    assert pred.predict(test.images[:0]).shape == (0, 7)
    d = describe(pred)
    assert d["format"] == "checkpoint" and d["params"] == pred.num_params > 0


def test_any_image_size_and_colour_is_converted(checkpoint: Path) -> None:
    pred = load_predictor(checkpoint)
    rgb_big = np.random.default_rng(0).integers(0, 256, size=(3, 60, 50, 3), dtype=np.uint8)
    assert pred.predict(rgb_big).shape == (3, 7)
    assert pred.predict([rgb_big[0], rgb_big[1, :40, :40, 0]]).shape == (2, 7)


def test_batching_does_not_change_results(checkpoint: Path) -> None:
    pred = load_predictor(checkpoint)
    images = make_dataset(n_per_class=3).splits["val"].images
    whole = predict_batched(pred, images, batch_size=1000)
    assert np.allclose(predict_batched(pred, images, batch_size=4), whole, atol=1e-6)
    with pytest.raises(InvalidInput, match="batch size"):
        predict_batched(pred, images, batch_size=0)


def test_tta_is_the_mean_with_mirrored_images(checkpoint: Path) -> None:
    pred = load_predictor(checkpoint)
    images = make_dataset(n_per_class=2).splits["test"].images
    plain, tta = predict_with_tta(pred, images, batch_size=5)
    mirrored = pred.predict(images[:, :, ::-1])
    assert np.allclose(plain, pred.predict(images), atol=1e-6)
    assert np.allclose(tta, (plain + mirrored) / 2, atol=1e-6)
    assert not np.allclose(plain, mirrored)  # the corner mark makes mirrored inputs differ


def test_hflip_mirrors_width() -> None:
    a = np.arange(6).reshape(1, 2, 3).astype(np.uint8)
    assert hflip(a)[0, 0].tolist() == [2, 1, 0]
    rgb = np.zeros((1, 2, 3, 3), np.uint8)
    rgb[0, :, 0] = 9
    assert hflip(rgb)[0, :, 2].tolist() == [[9, 9, 9], [9, 9, 9]]
    assert hflip([a[0]])[0][0].tolist() == [2, 1, 0]
    with pytest.raises(InvalidInput):
        hflip(np.zeros((4, 4), np.uint8))


def test_format_detection(tmp_path: Path, checkpoint: Path) -> None:
    assert model_format(checkpoint) == "checkpoint"
    renamed = tmp_path / "weights.bin"
    renamed.write_bytes(checkpoint.read_bytes())
    assert model_format(renamed) == "checkpoint"  # judged by content (zip), not the name
    assert isinstance(load_predictor(renamed), TorchPredictor)
    other = tmp_path / "m.onnx"
    other.write_bytes(b"\x08\x07")
    assert model_format(other) == "onnx"


def test_corrupt_checkpoint_raises_checkpoint_error(tmp_path: Path, checkpoint: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(checkpoint.read_bytes()[:300])
    with pytest.raises(CheckpointError, match=r"bad\.pt"):
        load_predictor(bad)


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("notes.txt", b"hello, I am not a model\n", "neither an emolens checkpoint"),
        ("model.onnx", b"not onnx at all", "not a readable ONNX model"),
        ("empty.onnx", b"", "empty"),
    ],
)
def test_non_model_files_raise_model_format_error(tmp_path: Path, name: str, content: bytes,
                                                   match: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelFormatError, match=match):
        load_predictor(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="not found"):
        load_predictor(tmp_path / "nope.onnx")


def test_onnx_without_emolens_metadata_is_refused(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["logits"])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 64])],
    )
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    with pytest.raises(ModelFormatError, match="not an emolens model"):
        OnnxPredictor(path)
