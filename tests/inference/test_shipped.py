import json
from pathlib import Path

import numpy as np
import pytest

from emolens.errors import ModelFormatError
from emolens.inference.onnx_model import EmotionModel
from emolens.inference.shipped import (
    ShippedModel,
    assets_dir,
    default_model_path,
    list_shipped,
    resolve_model,
)
from emolens.labels import FERPLUS8

from .modelfactory import make_model, tiny_meta


def write_index(folder: Path, models: object) -> None:
    (folder / "models.json").write_text(json.dumps(models))


@pytest.fixture()
def assets(tmp_path: Path) -> Path:
    make_model(tmp_path / "a.onnx")
    make_model(tmp_path / "b.onnx", tiny_meta(labels=FERPLUS8))
    write_index(tmp_path, {"models": [
        {"name": "alpha", "file": "a.onnx", "default": True, "description": "first"},
        {"name": "beta", "file": "b.onnx", "description": "second"},
    ]})
    return tmp_path


def test_list_and_default(assets: Path) -> None:
    models = list_shipped(assets)
    assert [m.name for m in models] == ["alpha", "beta"]
    assert isinstance(models[0], ShippedModel) and models[0].default and not models[1].default
    assert models[1].meta.labels == FERPLUS8 and models[0].description == "first"
    assert default_model_path(assets) == assets / "a.onnx"


def test_resolve_model(assets: Path) -> None:
    assert resolve_model(None, assets) == assets / "a.onnx"
    assert resolve_model("beta", assets) == assets / "b.onnx"
    assert resolve_model(str(assets / "b.onnx"), assets) == assets / "b.onnx"
    with pytest.raises(ModelFormatError, match="packaged: alpha, beta"):
        resolve_model("gamma", assets)


def test_single_model_is_the_default(tmp_path: Path) -> None:
    make_model(tmp_path / "only.onnx")
    write_index(tmp_path, {"models": [{"name": "only", "file": "only.onnx"}]})
    assert default_model_path(tmp_path) == tmp_path / "only.onnx"


@pytest.mark.parametrize(
    ("index", "phrase"),
    [
        (None, "models.json is missing"),
        ("{not json", "not valid JSON"),
        ({"models": []}, "at least one model"),
        ({"models": [{"name": "x"}]}, "'name' and 'file'"),
        ({"models": [{"name": "x", "file": "absent.onnx", "default": True}]}, "absent.onnx is missing"),
        ({"models": [{"name": "x", "file": "a.onnx", "default": True},
                     {"name": "x", "file": "a.onnx"}]}, "names repeat"),
        ({"models": [{"name": "x", "file": "a.onnx", "default": True},
                     {"name": "y", "file": "a.onnx", "default": True}]}, "more than one default"),
    ],
)
def test_bad_index(tmp_path: Path, index: object, phrase: str) -> None:
    make_model(tmp_path / "a.onnx")
    if isinstance(index, str):
        (tmp_path / "models.json").write_text(index)
    elif index is not None:
        write_index(tmp_path, index)
    with pytest.raises(ModelFormatError, match=phrase):
        list_shipped(tmp_path)


def test_no_default_among_several(tmp_path: Path) -> None:
    make_model(tmp_path / "a.onnx")
    write_index(tmp_path, {"models": [{"name": "x", "file": "a.onnx"}, {"name": "y", "file": "a.onnx"}]})
    with pytest.raises(ModelFormatError, match="exactly one model as default"):
        default_model_path(tmp_path)


def test_listed_file_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "a.onnx").write_text("nope")
    write_index(tmp_path, {"models": [{"name": "x", "file": "a.onnx", "default": True}]})
    with pytest.raises(ModelFormatError, match="not a readable ONNX"):
        list_shipped(tmp_path)


def test_packaged_models_load() -> None:
    if not (assets_dir() / "models.json").is_file():
        pytest.skip(f"no packaged model yet ({assets_dir() / 'models.json'} is absent)")
    models = list_shipped()
    assert sum(m.default for m in models) <= 1
    model = EmotionModel(default_model_path())
    crops = [np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(3)]
    p = model.predict(crops)
    assert p.shape == (3, len(model.labels)) and np.allclose(p.sum(axis=1), 1.0)
    for m in models:
        if m.meta.task == "emotion":
            assert EmotionModel(m.path).meta == m.meta
        else:  # the keypoint model is loaded by the landmark runner, and refused as an emotion model
            assert m.meta.task == "keypoints"
            with pytest.raises(ModelFormatError, match="not an emotion model"):
                EmotionModel(m.path)
