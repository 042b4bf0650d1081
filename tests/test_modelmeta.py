import pytest

from emolens.errors import ModelFormatError
from emolens.labels import FER7, canonical_label
from emolens.modelmeta import ModelMeta


def _meta(**kw):
    base = dict(
        labels=FER7, input_size=(48, 48), channels=1, mean=(0.5,), std=(0.25,), architecture="tiny", dataset="fer2013"
    )
    base.update(kw)
    return ModelMeta(**base)


def test_props_roundtrip():
    m = _meta(metrics={"accuracy": 0.7})
    props = m.to_props()
    assert all(isinstance(v, str) for v in props.values())
    assert ModelMeta.from_props(props) == m


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(labels=()), "labels is empty"),
        (dict(labels=("a", "a")), "repeat"),
        (dict(channels=2, mean=(0.5, 0.5), std=(1, 1)), "channels"),
        (dict(mean=(0.5, 0.5)), "mean/std"),
        (dict(std=(0.0,)), "positive"),
        (dict(input_size=(4, 4)), "input_size"),
    ],
)
def test_invalid_meta_named(kw, match):
    with pytest.raises(ModelFormatError, match=match):
        _meta(**kw)


def test_foreign_props_refused():
    with pytest.raises(ModelFormatError, match="not an emolens model"):
        ModelMeta.from_props({"labels": "[]"}, source="x.onnx")
    props = _meta().to_props()
    props["labels"] = "[not json"
    with pytest.raises(ModelFormatError, match="labels"):
        ModelMeta.from_props(props)


def test_canonical_labels():
    assert canonical_label("Angry") == "anger"
    assert canonical_label("3_happy") == "happiness"
    assert canonical_label("surprised") == "surprise"
    assert canonical_label("cats") is None
