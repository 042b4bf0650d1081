"""KPIs per viewer and per ad, peak happiness and key moments, recomputed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from emolens.campaign.kpis import VIEWER_KPIS, ad_kpis, key_moments, peak, viewer_kpis
from emolens.campaign.recording import frame_table
from emolens.campaign.series import viewer_seconds
from emolens.labels import FER7, VALENCE

from .fakes import frame, probs


def seconds_of(per_second: list[dict[str, float] | None]) -> pd.DataFrame:
    rows = [frame(i + 0.5, p) for i, p in enumerate(per_second)]
    return viewer_seconds(frame_table(rows, FER7), 0.0, float(len(per_second)), FER7)


def test_viewer_kpis_by_hand() -> None:
    secs = [probs("happiness", .7), probs("anger", .6), None, probs("surprise", .5), probs("neutral", .8)]
    k = viewer_kpis(seconds_of(secs), FER7)
    face = [p for p in secs if p is not None]
    assert k["face_found_rate"] == pytest.approx(4 / 5)
    assert (k["positive_share"], k["negative_share"], k["neutral_share"]) == pytest.approx((.25, .25, .5))
    assert k["expressiveness"] == pytest.approx(np.mean([1 - p["neutral"] for p in face]))
    val = np.mean([sum(p[lb] * VALENCE[lb] for lb in FER7) for p in face])
    assert k["valence_index"] == pytest.approx(val) and -1 <= val <= 1
    none = viewer_kpis(seconds_of([None, None]), FER7)
    assert none["face_found_rate"] == 0 and all(math.isnan(none[x]) for x in VIEWER_KPIS[1:])


def test_ad_kpis_bootstrap_by_hand() -> None:
    per_viewer = pd.DataFrame({k: [0.1, 0.5, 0.9] for k in VIEWER_KPIS})
    per_viewer["valence_index"] = [-0.5, 0.0, np.nan]
    happy = np.array([[0.2, 0.8, np.nan], [0.4, np.nan, np.nan], [0.9, 0.1, np.nan]])
    got = ad_kpis(per_viewer, happy, resamples=100, seed=4)
    idx = np.random.default_rng(4).integers(0, 3, (100, 3))
    for kpi in VIEWER_KPIS:
        v = per_viewer[kpi].to_numpy()
        means = [np.nanmean(v[idx[b]]) if np.isfinite(v[idx[b]]).any() else np.nan for b in range(100)]
        means = np.array(means)
        assert got[kpi].value == pytest.approx(np.nanmean(v))
        assert (got[kpi].ci_low, got[kpi].ci_high) == pytest.approx(
            tuple(np.percentile(means[np.isfinite(means)], [2.5, 97.5])))
    curve = [0.5, 0.45, np.nan]
    assert got["peak_happiness"].value == pytest.approx(0.5) and got["peak_happiness"].second == 0
    peaks = []
    for b in range(100):
        h = happy[idx[b]]
        c = [np.nanmean(h[:, s]) if np.isfinite(h[:, s]).any() else np.nan for s in range(3)]
        peaks.append(np.nanmax(c))
    assert (got["peak_happiness"].ci_low, got["peak_happiness"].ci_high) == pytest.approx(
        tuple(np.percentile(peaks, [2.5, 97.5])))
    assert curve[0] == peak(np.array(curve))[0]
    d = got["peak_happiness"].to_dict()
    assert d["second"] == 0 and set(d) == {"value", "ci_low", "ci_high", "second"}
    assert set(got["valence_index"].to_dict()) == {"value", "ci_low", "ci_high"}


def test_ad_kpis_without_viewers_are_undefined() -> None:
    got = ad_kpis(pd.DataFrame(columns=list(VIEWER_KPIS)), np.zeros((0, 3)), 50, 0)
    assert all(math.isnan(v.value) for v in got.values())
    assert got["peak_happiness"].to_dict() == {"value": None, "ci_low": None, "ci_high": None, "second": None}


def test_key_moments_are_peaks_and_troughs_two_seconds_apart() -> None:
    flat = probs("neutral", .4)
    v = seconds_of([flat, probs("happiness", .9), probs("happiness", .8), flat, probs("anger", .7), flat,
                    probs("sadness", .6)])
    moments = key_moments([v], FER7, 7)
    assert moments[0] == {"second": 1, "kind": "peak", "emotion": "happiness", "value": pytest.approx(.9)}
    got = [(m["second"], m["kind"], m["emotion"]) for m in moments]
    assert (4, "peak", "anger") in got and (6, "peak", "sadness") in got
    assert all(abs(a[0] - b[0]) >= 2 for i, a in enumerate(got) for b in got[i + 1:])
    assert len(moments) <= 6
    assert key_moments([], FER7, 3) == []
