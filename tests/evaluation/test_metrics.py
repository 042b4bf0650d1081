"""Metric values against hand-computed ones, calibration and temperature scaling, and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from emolens.errors import InvalidInput
from emolens.evaluation.metrics import (
    apply_temperature,
    compute_metrics,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
)

LABELS = ("a", "b", "c")
Y = np.array([0, 0, 1, 1, 2])
P = np.array([
    [0.7, 0.2, 0.1],  # true a, predicted a (conf .7)
    [0.4, 0.5, 0.1],  # true a, predicted b (conf .5)
    [0.1, 0.8, 0.1],  # true b, predicted b (conf .8)
    [0.2, 0.3, 0.5],  # true b, predicted c (conf .5)
    [0.1, 0.1, 0.8],  # true c, predicted c (conf .8)
])


def test_keys_are_exactly_the_documented_ones() -> None:
    m = compute_metrics(Y, P, LABELS)
    assert set(m) == {"accuracy", "macro_f1", "weighted_f1", "per_class", "confusion_matrix", "labels",
                      "roc_auc", "n", "ece", "nll"}
    json.dumps(m)  # plain types only


def test_values_match_hand_computation() -> None:
    m = compute_metrics(Y, P, LABELS)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["n"] == 5
    assert m["labels"] == ["a", "b", "c"]
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert m["per_class"]["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_class"]["c"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 2 / 3) / 3)
    assert m["weighted_f1"] == pytest.approx((2 * 2 / 3 + 2 * 0.5 + 1 * 2 / 3) / 5)
    # a: both positives (.7, .4) beat every negative; b: .8 beats all 3 negatives, .3 beats 2 of 3.
    assert m["roc_auc"] == pytest.approx({"a": 1.0, "b": 5 / 6, "c": 1.0})
    assert m["nll"] == pytest.approx(-np.mean(np.log([0.7, 0.4, 0.8, 0.3, 0.8])))
    # Bins: conf .5 (2 wrong) -> |0 - .5| * 2/5; conf .7 (right) -> .3 * 1/5; conf .8 (2 right) -> .2 * 2/5.
    assert m["ece"] == pytest.approx(0.2 + 0.06 + 0.08)


def test_absent_class_has_no_auc_and_zero_support() -> None:
    p4 = np.hstack([P * 0.9, np.full((5, 1), 0.1)])
    m = compute_metrics(Y, p4, ("a", "b", "c", "d"))
    assert m["roc_auc"]["d"] is None
    assert m["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion_matrix"][3] == [0, 0, 0, 0]
    # Macro-F1 averages over the classes present or predicted, so an absent class does not drag it down.
    assert m["macro_f1"] == pytest.approx(compute_metrics(Y, P, LABELS)["macro_f1"])


def test_perfect_predictions() -> None:
    y = np.array([0, 1, 2, 1])
    m = compute_metrics(y, np.eye(3)[y], LABELS)
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0 and m["ece"] == pytest.approx(0.0)
    assert m["nll"] == pytest.approx(0.0, abs=1e-9)


def test_reliability_bins_count_every_sample() -> None:
    bins = reliability_bins(Y, P, n_bins=15)
    assert sum(bins["count"]) == 5
    assert len(bins["accuracy"]) == 15
    assert math.isnan(bins["accuracy"][0])
    one_bin = abs(0.6 - np.mean([0.7, 0.5, 0.8, 0.5, 0.8]))
    assert expected_calibration_error(Y, P, n_bins=1) == pytest.approx(one_bin)


@pytest.mark.parametrize(
    "y, p, match",
    [
        (np.array([0, 1]), np.array([[0.5, 0.5]]), "y_true must be"),
        (np.array([0, 3]), np.full((2, 3), 1 / 3), "outside 0..2"),
        (np.array([0, -1]), np.full((2, 3), 1 / 3), "outside"),
        (np.array([0]), np.array([0.5, 0.5]), r"\(N, K\)"),
        (np.array([0.5]), np.array([[0.5, 0.3, 0.2]]), "integers"),
        (np.array([0]), np.array([[np.nan, 0.5, 0.5]]), "NaN"),
        (np.array([], dtype=int), np.zeros((0, 3)), "N >= 1"),
    ],
)
def test_bad_input_raises_invalid_input(y: np.ndarray, p: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        compute_metrics(y, p, LABELS)


def test_label_count_must_match_columns() -> None:
    with pytest.raises(InvalidInput, match="4 labels"):
        compute_metrics(Y, P, ("a", "b", "c", "d"))


def test_nll_stays_finite_for_a_confident_miss() -> None:
    assert math.isfinite(negative_log_likelihood(np.array([0]), np.array([[0.0, 1.0]])))


def test_fit_temperature_recovers_overconfidence() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, size=(20000, 5))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(5, p=row) for row in p])
    t = fit_temperature(3.0 * z, y)  # logits three times too confident
    assert t == pytest.approx(3.0, rel=0.05)
    raw = apply_temperature(3.0 * z, 1.0)
    assert negative_log_likelihood(y, apply_temperature(3.0 * z, t)) < negative_log_likelihood(y, raw)
    # The same fit from probabilities (log p differs from the logits by a per-row constant).
    assert fit_temperature(apply_temperature(3.0 * z, 1.0), y, kind="probs") == pytest.approx(t, rel=1e-3)


def test_apply_temperature_keeps_argmax_and_identity_at_one() -> None:
    z = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, -1.0]])
    p1 = apply_temperature(z, 1.0, kind="logits")
    assert np.allclose(p1.sum(1), 1.0)
    assert np.allclose(apply_temperature(p1, 1.0), p1)  # auto-detected probabilities
    soft = apply_temperature(z, 4.0)
    assert (soft.argmax(1) == z.argmax(1)).all()
    assert soft.max() < p1.max()
    with pytest.raises(InvalidInput, match="positive"):
        apply_temperature(z, 0.0)
    with pytest.raises(InvalidInput, match="kind"):
        apply_temperature(z, 1.0, kind="scores")
