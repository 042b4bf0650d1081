import threading
from pathlib import Path

import numpy as np
import pytest

from emolens.errors import InvalidInput, ModelFormatError
from emolens.inference.onnx_model import EmotionModel, read_model_meta
from emolens.labels import FER7, FERPLUS8
from emolens.preprocess import softmax

from .modelfactory import make_model, tiny_meta


def half_bright(side: str, size: int = 40, channels: int = 3) -> np.ndarray:
    img = np.zeros((size, size, channels) if channels == 3 else (size, size), np.uint8)
    if side == "left":
        img[:, : size // 2] = 255
    else:
        img[:, size // 2 :] = 255
    return img


@pytest.fixture()
def model(tmp_path: Path) -> EmotionModel:
    return EmotionModel(make_model(tmp_path / "tiny.onnx"))


def test_reads_metadata(model: EmotionModel) -> None:
    assert model.name == "tiny"
    assert model.labels == FER7 and model.meta.input_size == (16, 16) and model.meta.channels == 1
    assert model.fixed_batch is None
    assert read_model_meta(model.path) == model.meta


def test_predict_follows_the_weights(model: EmotionModel) -> None:
    p = model.predict([half_bright("left"), half_bright("right"), half_bright("left", 90, channels=1)])
    assert p.shape == (3, 7) and np.allclose(p.sum(axis=1), 1.0)
    assert p.argmax(axis=1).tolist() == [0, 1, 0]
    assert p[0, 0] > 0.5


def test_tta_averages_the_mirror(model: EmotionModel) -> None:
    p = model.predict([half_bright("left")], tta=True)
    assert p[0, 0] == pytest.approx(p[0, 1]) and p.sum() == pytest.approx(1.0)


def test_batching_gives_the_same_answer(model: EmotionModel, rng: np.random.Generator) -> None:
    crops = [rng.integers(0, 256, (30, 30, 3), dtype=np.uint8) for _ in range(10)]
    whole = model.predict(crops, batch_size=64)
    assert np.allclose(model.predict(crops, batch_size=3), whole)
    assert model.predict([]).shape == (0, 7)
    with pytest.raises(InvalidInput, match="batch_size"):
        model.predict(crops, batch_size=0)


@pytest.mark.parametrize("batch", [1, 4])
def test_fixed_batch_graph(tmp_path: Path, model: EmotionModel, batch: int, rng: np.random.Generator) -> None:
    fixed = EmotionModel(make_model(tmp_path / "fixed.onnx", batch=batch))
    assert fixed.fixed_batch == batch
    crops = [rng.integers(0, 256, (20, 20), dtype=np.uint8) for _ in range(6)]
    assert np.allclose(fixed.predict(crops), model.predict(crops))


def test_probs_output_not_softmaxed_twice(tmp_path: Path, model: EmotionModel) -> None:
    probs = EmotionModel(make_model(tmp_path / "p.onnx", tiny_meta(output="probs"), softmax_in_graph=True))
    crops = [half_bright("left"), half_bright("right")]
    assert np.allclose(probs.predict(crops), model.predict(crops), atol=1e-6)


def test_three_channel_model(tmp_path: Path) -> None:
    m = EmotionModel(make_model(tmp_path / "rgb.onnx", tiny_meta(labels=FERPLUS8, size=24, channels=3)))
    p = m.predict([half_bright("left", 50), half_bright("right", 50, channels=1)])
    assert p.shape == (2, 8) and p.argmax(axis=1).tolist() == [0, 1]


def test_predict_input_checks_shape(model: EmotionModel) -> None:
    x = np.zeros((2, 1, 16, 16), np.float32)
    assert model.predict_input(x).shape == (2, 7)
    assert np.allclose(model.predict_input(x), softmax(np.zeros((2, 7))))
    with pytest.raises(InvalidInput, match=r"\(N, 1, 16, 16\)"):
        model.predict_input(np.zeros((2, 3, 16, 16), np.float32))
    with pytest.raises(InvalidInput):
        model.predict_input(np.zeros((16, 16), np.float32))


def test_shared_by_threads(model: EmotionModel, rng: np.random.Generator) -> None:
    crops = [rng.integers(0, 256, (30, 30, 3), dtype=np.uint8) for _ in range(8)]
    expected = model.predict(crops)
    out: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: out.append(model.predict(crops, batch_size=3))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 6 and all(np.allclose(o, expected) for o in out)


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a phrase the error must contain)."""
    meta = tiny_meta()
    props = meta.to_props()
    text = tmp / "notes.onnx"
    text.write_text("this is not a model")
    empty = tmp / "empty.onnx"
    empty.write_bytes(b"")
    good = make_model(tmp / "good.onnx")
    cut = tmp / "cut.onnx"
    cut.write_bytes(good.read_bytes()[:200])
    bad_json = dict(props, labels="[anger, joy")
    return {
        "missing": (tmp / "absent.onnx", "not found"),
        "text": (text, "not a readable ONNX"),
        "empty": (empty, "not a readable ONNX"),
        "truncated": (cut, "not a readable ONNX"),
        "foreign": (make_model(tmp / "foreign.onnx", props={}), "not an emolens model"),
        "bad json": (make_model(tmp / "json.onnx", props=bad_json), "not valid JSON"),
        "incomplete": (make_model(tmp / "inc.onnx", props={k: v for k, v in props.items() if k != "std"}), "lacks std"),
        "invalid meta": (make_model(tmp / "inv.onnx", props=dict(props, channels="2")), "channels must be 1 or 3"),
        "channels": (make_model(tmp / "ch.onnx", meta, input_shape=("N", 3, 16, 16)), "channels is 3"),
        "height": (make_model(tmp / "h.onnx", meta, input_shape=("N", 1, 48, 16)), "height is 48"),
        "classes": (make_model(tmp / "k.onnx", meta, out_classes=5), "5 classes"),
        "rank": (make_model(tmp / "r.onnx", meta, input_shape=("N", 1, 256)), "expected (N, C, H, W)"),
        "task": (make_model(tmp / "t.onnx", props=dict(props, task="keypoints")), "not an emotion model"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "text", "empty", "truncated", "foreign", "bad json", "incomplete", "invalid meta",
             "channels", "height", "classes", "rank", "task"],
)
def test_mismatched_model_files(tmp_path: Path, case: str) -> None:
    path, phrase = _bad_files(tmp_path)[case]
    with pytest.raises(ModelFormatError) as info:
        EmotionModel(path)
    assert phrase in str(info.value) and path.name in str(info.value)


def test_output_shape_checked_at_run_time(model: EmotionModel, monkeypatch: pytest.MonkeyPatch) -> None:
    class WrongWidth:  # a graph whose output width was symbolic and turns out wrong
        def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            return [np.zeros((len(next(iter(feeds.values()))), 5), np.float32)]

    monkeypatch.setattr(model, "_session", WrongWidth())
    with pytest.raises(ModelFormatError, match=r"returned shape \(1, 5\), expected \(1, 7\)"):
        model.predict([half_bright("left")])
