"""``emolens models`` and ``emolens models show FILE``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emolens.cli import main
from emolens.cli.models import headline_metrics
from emolens.labels import FER7
from emolens.modelmeta import ModelMeta

from ..inference.modelfactory import make_model

ASSETS = Path(__file__).resolve().parents[2] / "src" / "emolens" / "assets"

TEST_META = ModelMeta(
    labels=FER7, input_size=(48, 48), channels=1, mean=(0.5,), std=(0.25,), architecture="tiny_test",
    dataset="fer2013", metrics={"accuracy": 0.6125, "macro_f1": 0.5375, "split": "PrivateTest", "n": 3589},
)


def make_onnx(path: Path, meta: ModelMeta | None = TEST_META) -> Path:
    """A small linear emotion classifier as ONNX with ``meta`` in its metadata (None: a foreign model
    without emolens metadata)."""
    return make_model(path, meta or TEST_META, props=None if meta is not None else {})


@pytest.fixture()
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_show_table_lists_metadata(tmp_path, capsys, wide):
    path = make_onnx(tmp_path / "m.onnx")
    code, out, _ = run(["models", "show", str(path)], capsys)
    assert code == 0
    expected = ("tiny_test", "fer2013", ", ".join(FER7), "48x48, 1 channel", "0.6125", "0.5375")
    for text in expected:
        assert text in out
    assert "PrivateTest (n=3589)" in out


def test_show_json(tmp_path, capsys):
    path = make_onnx(tmp_path / "m.onnx")
    code, out, _ = run(["models", "show", str(path), "--format", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["meta"]["labels"] == list(FER7)
    assert doc["inputs"][0]["shape"][1:] == [1, 48, 48]
    assert ModelMeta.from_dict(doc["meta"]) == TEST_META


def test_show_foreign_onnx_is_a_model_format_error(tmp_path, capsys):
    path = make_onnx(tmp_path / "foreign.onnx", meta=None)
    code, _, err = run(["models", "show", str(path)], capsys)
    assert code == 6
    assert "not an emolens model" in err and str(path) in err


@pytest.mark.parametrize("content", [b"", b"hello, not a model", bytes(range(256)) * 8])
def test_show_bad_file(tmp_path, capsys, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    code, _, err = run(["models", "show", str(path)], capsys)
    assert code == 6
    assert err.startswith("error: ") and str(path) in err


def test_show_missing_file(tmp_path, capsys):
    code, _, err = run(["models", "show", str(tmp_path / "nope.onnx")], capsys)
    assert code == 6 and "not found" in err


def test_listing_with_a_test_model(tmp_path, capsys, monkeypatch, wide):
    shipped = pytest.importorskip("emolens.inference.shipped")
    path = make_onnx(tmp_path / "m.onnx")
    fakes = [
        shipped.ShippedModel(
            name="alpha", path=path, default=True, description="the test one", meta=TEST_META
        ),
        shipped.ShippedModel(name="beta", path=path, default=False, description="",
                             meta=TEST_META.replace(architecture="other", metrics={})),
    ]
    monkeypatch.setattr(shipped, "list_shipped", lambda *a, **k: fakes)
    code, out, _ = run(["models"], capsys)
    assert code == 0
    assert "alpha *" in out and "beta" in out and "0.6125" in out and "the test one" in out
    code, out, _ = run(["models", "--format", "json"], capsys)
    doc = json.loads(out)
    assert [m["name"] for m in doc["models"]] == ["alpha", "beta"]
    assert doc["models"][0]["default"] is True and doc["models"][1]["default"] is False
    assert doc["models"][0]["metrics"] == {
        "accuracy": 0.6125, "macro_f1": 0.5375, "split": "PrivateTest", "n": 3589}
    assert doc["models"][1]["metrics"]["accuracy"] is None
    assert doc["models"][0]["input_size"] == [48, 48] and doc["models"][0]["labels"] == list(FER7)


@pytest.mark.skipif(not (ASSETS / "models.json").is_file(), reason="no shipped models (assets/models.json)")
def test_listing_shipped_models(capsys):
    code, out, _ = run(["models", "--format", "json"], capsys)
    assert code == 0
    models = json.loads(out)["models"]
    assert models and sum(m["default"] for m in models) == 1
    assert {m["task"] for m in models} <= {"emotion", "keypoints"}
    for m in models:
        assert m["labels"]
        if m["task"] == "emotion":
            assert m["metrics"]["accuracy"] is not None
        else:  # the keypoint model reports its normalised mean error on its test split
            assert 0 < m["metrics"]["nme"] < 0.1 and m["metrics"]["split"] == "test"
        assert Path(m["path"]).is_file()
        code, out, _ = run(["models", "show", m["path"], "--format", "json"], capsys)
        assert code == 0 and json.loads(out)["meta"]["labels"] == m["labels"]


def test_headline_metrics_flat_nested_and_missing():
    assert headline_metrics({"accuracy": 0.5, "macro_f1": 0.4, "split": "test", "n": 9}) == {
        "accuracy": 0.5, "macro_f1": 0.4, "split": "test", "n": 9}
    nested = {"val": {"accuracy": 0.7}, "test": {"accuracy": 0.6, "macro_f1": 0.5}}
    assert headline_metrics(nested) == {"accuracy": 0.6, "macro_f1": 0.5, "split": "test", "n": None}
    assert headline_metrics({}) == {"accuracy": None, "macro_f1": None, "split": None, "n": None}
