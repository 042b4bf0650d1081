"""The report's model card comes from the model's own metadata: accuracy, weak classes, licence."""

from __future__ import annotations

from emolens.campaign.modelcard import model_card
from emolens.campaign.outputs import filmstrip_seconds
from emolens.campaign.report_model import model_section
from emolens.modelmeta import ModelMeta


def _meta(dataset: str, metrics: dict[str, object], extra: dict[str, object] | None = None) -> ModelMeta:
    return ModelMeta(labels=("a", "b", "c"), input_size=(48, 48), channels=1, mean=(0.5,), std=(0.25,),
                     architecture="seed_cnn", dataset=dataset, metrics=metrics, extra=extra or {})


def test_card_names_weak_classes_and_the_licence() -> None:
    card = model_card(_meta("fer2013", {"accuracy": 0.63, "macro_f1": 0.55, "split": "test", "n": 3589,
                                        "per_class_f1": {"a": 0.8, "b": 0.19, "c": 0.39}}, {"temperature": 0.87}))
    assert card is not None
    assert card["weak_classes"] == ["b", "c"] and card["calibrated"] and "research" in card["licence"]
    page = model_section({"name": "fer7", "id": "fer7:abc", "card": card})
    assert "63% of the faces" in page and "b (F1 0.19), c (F1 0.39)" in page and "non-commercial" in page


def test_card_without_metrics_invents_nothing() -> None:
    card = model_card(_meta("my-own-data", {}))
    assert card is not None
    assert (card["accuracy"], card["weak_classes"], card["licence"], card["calibrated"]) == (None, [], None, False)
    assert model_card(None) is None
    assert "accuracy is unknown" in model_section({"name": "x"})


def test_filmstrip_spreads_frames_over_the_ad() -> None:
    assert filmstrip_seconds(3.0) == [0, 1, 2]
    assert filmstrip_seconds(30.0) == [0, 4, 8, 12, 17, 21, 25, 29]
    assert filmstrip_seconds(0.4) == [0]
