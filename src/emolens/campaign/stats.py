"""Statistics of the campaign: Student-t bands, percentile bootstrap, permutation tests.

Everything is deterministic for a given seed and vectorised over viewers with numpy:

* :func:`t_band`: mean ± t_{(1+c)/2, n-1}·sd/√n per column over the non-NaN rows (sd with ddof=1),
  clipped to [0, 1]; n = 1 gives a band equal to the value; n = 0 gives NaN.
* :func:`bootstrap_indices`: the resample matrix ``numpy.random.default_rng(seed).integers(0, n, (B, n))``
  (row b = the viewers of resample b).
* :func:`percentile_ci`: ``numpy.percentile(samples, [100·(1-c)/2, 100·(1+c)/2])`` (linear
  interpolation) over the finite resampled statistics.
* :func:`permutation_pvalue`: ``scipy.stats.permutation_test`` on the difference of means,
  independent samples, two-sided (twice the smaller one-sided p, capped at 1: scipy's definition),
  ``n_resamples`` permutations (exact when fewer distinct ones exist).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps


def t_band(values: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high, n) per column of ``values`` (rows = viewers, NaN = missing)."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[:, None]
    ok = ~np.isnan(v)
    n = ok.sum(axis=0)
    total = np.where(ok, v, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        dev = np.where(ok, v - mean, 0.0)
        sd = np.sqrt((dev**2).sum(axis=0) / np.maximum(n - 1, 1))
        tq = sps.t.ppf((1 + confidence) / 2, np.maximum(n - 1, 1))
        half = np.where(n > 1, tq * sd / np.sqrt(np.maximum(n, 1)), 0.0)
    low = np.where(n > 0, np.clip(mean - half, 0.0, 1.0), np.nan)
    high = np.where(n > 0, np.clip(mean + half, 0.0, 1.0), np.nan)
    return mean, low, high, n


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """The (resamples, n) matrix of viewer indices drawn with replacement (see the module docstring)."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def resample_weights(idx: np.ndarray, n: int) -> np.ndarray:
    """(B, n) counts: how many times each viewer appears in each resample."""
    b = idx.shape[0]
    w = np.zeros((b, n), dtype=float)
    np.add.at(w, (np.repeat(np.arange(b), idx.shape[1]), idx.ravel()), 1.0)
    return w


def bootstrap_means(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (per viewer, NaN ignored) in each resample of ``idx`` (NaN when a
    resample holds no finite value)."""
    v = np.asarray(values, dtype=float)
    w = resample_weights(idx, len(v))
    ok = ~np.isnan(v)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w @ np.where(ok, v, 0.0)) / (w @ ok.astype(float))


def percentile_ci(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the finite ``samples`` ((nan, nan) when there are none)."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if not len(s):
        return math.nan, math.nan
    lo, hi = np.percentile(s, [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2])
    return float(lo), float(hi)


def nanmean(values: np.ndarray) -> float:
    """Mean of the finite values (NaN when none)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else math.nan


def permutation_pvalue(a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> float:
    """Two-sided permutation p-value of mean(a) - mean(b), viewers as units (NaNs dropped; NaN when
    a group has fewer than 2 viewers)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 2 or len(b) < 2:
        return math.nan

    def diff(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    res = sps.permutation_test((a, b), diff, permutation_type="independent", vectorized=True,
                               n_resamples=resamples, alternative="two-sided", rng=np.random.default_rng(seed))
    return float(min(1.0, res.pvalue))


def bootstrap_difference(a: np.ndarray, b: np.ndarray, resamples: int, seed: int,
                         confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean(a) - mean(b), CI low, CI high): ``a`` and ``b`` resampled independently, ``a`` first,
    from one ``default_rng(seed)`` (NaNs dropped first)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not len(a) or not len(b):
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(a), size=(resamples, len(a)))
    ib = rng.integers(0, len(b), size=(resamples, len(b)))
    lo, hi = percentile_ci(a[ia].mean(axis=1) - b[ib].mean(axis=1), confidence)
    return float(a.mean() - b.mean()), lo, hi
