"""Comparing ads: rankings per KPI, pairwise differences with tests, breakdowns by viewer segment.

* Ranking: per KPI, ads ordered best first in the KPI's direction (:data:`.verdict.KPI_ROLES`;
  KPIs with no better direction, such as ``neutral_share``, are listed highest first without
  ranks); equal values share a rank (1, 1, 3); ads whose value is undefined come last, unranked.
* Comparisons: every pair of ads (manifest order, ``a`` before ``b``) and every per-viewer KPI:
  the difference of means ``a - b``, a percentile-bootstrap CI of the difference (viewers of each
  ad resampled independently) and a two-sided permutation p-value (viewers as units). The seed of
  pair number ``i`` (0-based) and KPI number ``j`` is ``seed + 1000·i + j``. ``peak_happiness`` is
  a property of an ad's curve, not of its viewers: it is ranked but not tested.
* Segments: for each attribute and value, per ad, the kept viewers with that value, their count
  and their KPIs (means; peak_happiness from their curve) with bootstrap CIs when there are at
  least 2 viewers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from .kpis import AD_KPIS, VIEWER_KPIS, KpiValue, ad_kpis
from .stats import bootstrap_difference, permutation_pvalue
from .verdict import DIRECTION_TEXT, role_of


def _num(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def ranking(ads: Sequence[str], values: Mapping[str, Mapping[str, KpiValue]],
            counts: Mapping[str, int]) -> list[dict[str, Any]]:
    """``[{"kpi", "role", "direction", "direction_text", "higher_is_better", "rows": [{"rank", "ad",
    "value", "ci_low", "ci_high", "n"}]}]`` (``higher_is_better`` None and ``rank`` None for KPIs with
    no better direction; ``rank`` None for undefined values)."""
    out = []
    for kpi in AD_KPIS:
        role, direction = role_of(kpi)
        sign = -1.0 if direction == "lower" else 1.0

        def key(ad: str, kpi: str = kpi, sign: float = sign) -> float | None:
            v = values[ad][kpi].value
            return None if not math.isfinite(v) else round(-sign * v, 12)

        order = sorted(range(len(ads)), key=lambda i: (key(ads[i]) is None, key(ads[i]) or 0.0, i))
        rows = []
        for i in order:
            ad, kv, k = ads[i], values[ads[i]][kpi], key(ads[i])
            rank = None if k is None or direction == "none" else 1 + sum(
                1 for b in ads if (kb := key(b)) is not None and kb < k)
            rows.append({"rank": rank, "ad": ad, "value": _num(kv.value), "ci_low": _num(kv.ci_low),
                         "ci_high": _num(kv.ci_high), "n": int(counts.get(ad, 0))})
        out.append({"kpi": kpi, "role": role, "direction": direction, "direction_text": DIRECTION_TEXT[direction],
                    "higher_is_better": None if direction == "none" else direction == "higher", "rows": rows})
    return out


def comparisons(ads: Sequence[str], per_viewer: pd.DataFrame, resamples: int, seed: int,
                confidence: float = 0.95, min_viewers_ci: int = 1) -> list[dict[str, Any]]:
    """Every pair of ads x per-viewer KPI (see the module docstring). ``per_viewer``: the kept
    viewers' KPI table with an ``ad`` column. The CI of the difference is left out (None) when
    either ad has fewer than ``min_viewers_ci`` viewers with a value; the p-value stays (a
    permutation test is exact, hence honest, with few viewers: it simply cannot get small)."""
    out = []
    for i, (a, b) in enumerate(combinations(ads, 2)):
        va, vb = per_viewer.loc[per_viewer["ad"] == a], per_viewer.loc[per_viewer["ad"] == b]
        for j, kpi in enumerate(VIEWER_KPIS):
            s = seed + 1000 * i + j
            x, y = va[kpi].to_numpy(dtype=float), vb[kpi].to_numpy(dtype=float)
            diff, lo, hi = bootstrap_difference(x, y, resamples, s, confidence)
            if min(int(np.isfinite(x).sum()), int(np.isfinite(y).sum())) < min_viewers_ci:
                lo = hi = math.nan
            p = permutation_pvalue(x, y, resamples, s)
            out.append({"kpi": kpi, "a": a, "b": b, "difference": _num(diff), "ci_low": _num(lo),
                        "ci_high": _num(hi), "p_value": _num(p)})
    return out


def segments(ads: Sequence[str], per_viewer: pd.DataFrame, happiness: Mapping[str, np.ndarray],
             attributes: Sequence[str], resamples: int, seed: int, confidence: float = 0.95,
             min_viewers_ci: int = 2) -> list[dict[str, Any]]:
    """Per attribute, value and ad: ``{"attribute", "value", "ad", "viewers", "kpis": {kpi: value},
    "ci": {kpi: {"ci_low", "ci_high"}} | None, "small": bool}``: ``ci`` is None and ``small`` True
    under ``min_viewers_ci`` viewers. ``happiness[ad]`` has one row per row of ``per_viewer`` for
    that ad, in the same order."""
    out = []
    for attr in attributes:
        if attr not in per_viewer:
            continue
        values = sorted({str(v) for v in per_viewer[attr].dropna() if str(v) != ""})
        for value in values:
            for ad in ads:
                rows = per_viewer.loc[per_viewer["ad"] == ad]
                mask = (rows[attr].astype(str) == value).to_numpy()
                if not mask.any():
                    continue
                kv = ad_kpis(rows.loc[mask], happiness[ad][mask], resamples, seed, confidence)
                small = int(mask.sum()) < max(2, min_viewers_ci)
                ci = None if small else {
                    k: {"ci_low": _num(v.ci_low), "ci_high": _num(v.ci_high)} for k, v in kv.items()}
                out.append({"attribute": attr, "value": value, "ad": ad, "viewers": int(mask.sum()),
                            "kpis": {k: _num(v.value) for k, v in kv.items()}, "ci": ci, "small": small})
    return out
