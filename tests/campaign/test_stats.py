"""Campaign statistics against direct computations (scipy, loops)."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from scipy import stats as sps

from emolens.campaign.stats import (
    bootstrap_difference,
    bootstrap_indices,
    bootstrap_means,
    nanmean,
    percentile_ci,
    permutation_pvalue,
    t_band,
)


def test_t_band_matches_the_student_formula_per_column() -> None:
    v = np.array([[0.2, 0.9, np.nan, 0.5], [0.4, 0.1, np.nan, np.nan], [0.9, 0.8, 0.3, np.nan]])
    mean, low, high, n = t_band(v, 0.95)
    assert n.tolist() == [3, 3, 1, 1]
    for j in (0, 1):
        col = v[:, j]
        half = sps.t.ppf(0.975, 2) * col.std(ddof=1) / math.sqrt(3)
        assert mean[j] == pytest.approx(col.mean(), abs=1e-12)
        assert low[j] == pytest.approx(max(0.0, col.mean() - half), abs=1e-12)
        assert high[j] == pytest.approx(min(1.0, col.mean() + half), abs=1e-12)
    assert (mean[2], low[2], high[2]) == (0.3, 0.3, 0.3)  # one viewer: band = value
    empty = t_band(np.full((2, 1), np.nan))
    assert np.isnan(empty[0][0]) and np.isnan(empty[1][0]) and empty[3][0] == 0


def test_bootstrap_means_equal_a_loop_over_resamples() -> None:
    v = np.array([0.1, np.nan, 0.7, 0.4])
    idx = bootstrap_indices(4, 50, seed=7)
    assert np.array_equal(idx, np.random.default_rng(7).integers(0, 4, size=(50, 4)))
    got = bootstrap_means(v, idx)
    for b in range(50):
        picked = v[idx[b]]
        picked = picked[~np.isnan(picked)]
        assert (np.isnan(got[b]) and not len(picked)) or got[b] == pytest.approx(picked.mean(), abs=1e-12)
    assert percentile_ci(got) == pytest.approx(tuple(np.percentile(got[np.isfinite(got)], [2.5, 97.5])))
    assert nanmean(v) == pytest.approx(0.4)
    assert all(math.isnan(x) for x in percentile_ci(np.array([np.nan])))


def test_permutation_pvalue_is_exact_on_small_groups() -> None:
    a, b = np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.3])
    pooled = np.concatenate([a, b])
    obs = a.mean() - b.mean()
    stats_ = []
    for ia in combinations(range(5), 3):
        mask = np.zeros(5, bool)
        mask[list(ia)] = True
        stats_.append(pooled[mask].mean() - pooled[~mask].mean())
    s = np.array(stats_)  # scipy's two-sided p: twice the smaller one-sided p
    expected = min(1.0, 2 * min(np.mean(s >= obs - 1e-12), np.mean(s <= obs + 1e-12)))
    assert expected == pytest.approx(0.2)
    assert permutation_pvalue(a, b, 2000, seed=0) == pytest.approx(expected)
    assert math.isnan(permutation_pvalue(a, np.array([0.5]), 100, 0))


def test_bootstrap_difference_resamples_each_group_from_one_generator() -> None:
    a, b = np.array([0.9, 0.8, np.nan, 0.7]), np.array([0.1, 0.3])
    diff, lo, hi = bootstrap_difference(a, b, 300, seed=5)
    fa = a[np.isfinite(a)]
    rng = np.random.default_rng(5)
    ia, ib = rng.integers(0, 3, (300, 3)), rng.integers(0, 2, (300, 2))
    draws = [fa[ia[k]].mean() - b[ib[k]].mean() for k in range(300)]
    assert diff == pytest.approx(0.8 - 0.2)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])))
    assert all(math.isnan(x) for x in bootstrap_difference(a, np.array([np.nan]), 10, 0))
