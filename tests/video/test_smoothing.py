import numpy as np
import pytest

from emolens.errors import InvalidInput
from emolens.video.smoothing import REFERENCE_DT, EmaSmoother, half_life_s

A = np.array([1.0, 0.0, 0.0])
B = np.array([0.0, 1.0, 0.0])


def test_off_returns_raw_probabilities() -> None:
    s = EmaSmoother(0.0)
    s.update(1, A, 0.0)
    assert np.array_equal(s.update(1, B, REFERENCE_DT), B)


def test_one_reference_step_is_the_classic_ema() -> None:
    s = EmaSmoother(0.8)
    assert np.array_equal(s.update(1, A, 0.0), A)  # first value passes through
    v = s.update(1, B, REFERENCE_DT)
    assert v == pytest.approx([0.8, 0.2, 0.0])
    v = s.update(1, B, 2 * REFERENCE_DT)
    assert v == pytest.approx([0.64, 0.36, 0.0])
    assert v.sum() == pytest.approx(1.0)


def test_gaps_fade_the_past_by_the_time_that_passed() -> None:
    """Three steps in one update weigh the past like three single steps would."""
    s = EmaSmoother(0.8)
    s.update("x", A, 0.0)
    v = s.update("x", B, 3 * REFERENCE_DT)
    assert v[0] == pytest.approx(0.8**3)
    step = EmaSmoother(0.8)
    step.update("x", A, 0.0)
    for k in (1, 2, 3):
        w = step.update("x", B, k * REFERENCE_DT)
    assert w == pytest.approx(v)


def test_time_that_does_not_advance_counts_as_one_step() -> None:
    s = EmaSmoother(0.5)
    s.update(1, A, 1.0)
    assert s.update(1, B, 1.0) == pytest.approx([0.5, 0.5, 0.0])


def test_keys_are_independent_and_can_be_forgotten() -> None:
    s = EmaSmoother(0.9)
    s.update(1, A, 0.0)
    s.update(2, B, 0.0)
    assert np.array_equal(s.value(2), B)
    s.keep_only([2])
    assert s.value(1) is None and len(s) == 1
    assert np.array_equal(s.update(1, B, 1.0), B)  # a forgotten key starts afresh


def test_bad_factor_is_refused() -> None:
    for bad in (-0.1, 1.0, 2.0):
        with pytest.raises(InvalidInput, match="smoothing"):
            EmaSmoother(bad)


def test_half_life() -> None:
    assert half_life_s(0.0) == 0.0
    assert half_life_s(0.5) == pytest.approx(REFERENCE_DT)
