"""Rankings, pairwise comparisons and segments."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from emolens.campaign.compare import comparisons, ranking, segments
from emolens.campaign.kpis import AD_KPIS, VIEWER_KPIS, KpiValue, ad_kpis
from emolens.campaign.stats import bootstrap_difference, permutation_pvalue


def _kv(value: float) -> KpiValue:
    return KpiValue(value, value - .1, value + .1)


def test_ranking_orders_best_first_and_undefined_last() -> None:
    values = {"a": {k: _kv(0.2) for k in AD_KPIS}, "b": {k: _kv(0.6) for k in AD_KPIS},
              "c": {k: KpiValue(math.nan, math.nan, math.nan) for k in AD_KPIS}}
    out = ranking(["a", "b", "c"], values, {"a": 3, "b": 2})
    assert [r["kpi"] for r in out] == list(AD_KPIS)
    val = next(r for r in out if r["kpi"] == "valence_index")
    assert val["higher_is_better"] and [r["ad"] for r in val["rows"]] == ["b", "a", "c"]
    assert val["rows"][0] == {"rank": 1, "ad": "b", "value": 0.6, "ci_low": pytest.approx(.5),
                              "ci_high": pytest.approx(.7), "n": 2}
    assert val["rows"][2]["value"] is None and val["rows"][2]["n"] == 0
    neg = next(r for r in out if r["kpi"] == "negative_share")
    assert not neg["higher_is_better"] and [r["ad"] for r in neg["rows"]] == ["a", "b", "c"]


def _table() -> pd.DataFrame:
    rows = [("a", "v1", "young", .9), ("a", "v2", "old", .7), ("a", "v3", "young", .8),
            ("b", "v1", "young", .2), ("b", "v4", "old", .4)]
    df = pd.DataFrame(rows, columns=["ad", "viewer", "segment", "valence_index"])
    for k in VIEWER_KPIS:
        if k != "valence_index":
            df[k] = df["valence_index"] / 2
    return df


def test_comparisons_of_every_pair_and_kpi() -> None:
    df = _table()
    out = comparisons(["a", "b"], df, 500, seed=3)
    assert [(c["a"], c["b"], c["kpi"]) for c in out] == [("a", "b", k) for k in VIEWER_KPIS]
    j = VIEWER_KPIS.index("valence_index")
    c = out[j]
    x, y = np.array([.9, .7, .8]), np.array([.2, .4])
    diff, lo, hi = bootstrap_difference(x, y, 500, 3 + j)
    assert (c["difference"], c["ci_low"], c["ci_high"]) == pytest.approx((diff, lo, hi))
    assert c["difference"] == pytest.approx(0.5)
    assert c["p_value"] == pytest.approx(permutation_pvalue(x, y, 500, 3 + j)) and c["p_value"] == pytest.approx(.2)
    assert comparisons(["a"], df, 100, 0) == []


def test_segments_split_viewers_by_attribute_value() -> None:
    df = _table()
    happy = {"a": np.array([[.9, .1], [.3, .2], [.5, .6]]), "b": np.array([[.1, .2], [.4, .1]])}
    out = segments(["a", "b"], df, happy, ["segment", "missing"], 100, 0)
    assert [(s["value"], s["ad"], s["viewers"]) for s in out] == [("old", "a", 1), ("old", "b", 1),
                                                                   ("young", "a", 2), ("young", "b", 1)]
    young_a = out[2]
    assert young_a["kpis"]["valence_index"] == pytest.approx(.85)
    assert young_a["kpis"]["peak_happiness"] == pytest.approx(.7)  # mean curve of v1, v3: [.7, .35]
    expected = ad_kpis(df.iloc[[0, 2]], happy["a"][[0, 2]], 100, 0)
    assert young_a["ci"]["valence_index"]["ci_low"] == pytest.approx(expected["valence_index"].ci_low)
    assert out[0]["ci"] is None  # a single viewer: no CI
