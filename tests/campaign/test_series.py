"""Per-second series: ad time, per-viewer seconds and per-ad curves, recomputed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from emolens.campaign.recording import frame_table
from emolens.campaign.series import SERIES_COLUMNS, ad_series, curve, frames_in_window, viewer_seconds
from emolens.labels import FER7

from .fakes import frame, probs

H, A, N = FER7.index("happiness"), FER7.index("anger"), FER7.index("neutral")


def test_viewer_seconds_uses_ad_time_and_means_over_face_frames() -> None:
    rows = [frame(1.9, probs("anger", .9)),            # before the ad (t_ad < 0)
            frame(2.0, probs("happiness", .6)), frame(2.5, probs("happiness", .8)),
            frame(3.2, None), frame(3.7, probs("anger", .5)),
            frame(5.1, None),
            frame(6.4, probs("neutral", .9)),          # t_ad = 4.4 >= duration 4.4? no: 4.4 is outside
            frame(6.3, probs("sadness", .7))]          # t_ad = 4.3 < 4.4: second 4
    vs = viewer_seconds(frame_table(rows, FER7), offset_s=2.0, duration_s=4.4, labels=FER7)
    assert vs["second"].tolist() == [0, 1, 2, 3, 4]
    assert vs["face_found"].tolist() == [1, 1, 0, 0, 1]
    assert vs["covered"].tolist() == [1, 1, 0, 1, 1]
    assert vs.loc[0, "happiness"] == pytest.approx(0.7)
    assert vs.loc[0, "anger"] == pytest.approx(((1 - .6) / 6 + (1 - .8) / 6) / 2)
    assert vs.loc[1, "anger"] == pytest.approx(0.5)
    assert math.isnan(vs.loc[2, "happiness"]) and math.isnan(vs.loc[3, "neutral"])
    assert vs.loc[4, "sadness"] == pytest.approx(0.7)
    window = frames_in_window(frame_table(rows, FER7), 2.0, 4.4)
    assert sorted(window["t"].tolist()) == [2.0, 2.5, 3.2, 3.7, 5.1, 6.3]


def test_ad_series_mean_band_share_by_hand() -> None:
    v1 = viewer_seconds(frame_table([frame(0.2, probs("happiness", .9)), frame(1.1, probs("happiness", .4))],
                                    FER7), 0.0, 3.0, FER7)
    v2 = viewer_seconds(frame_table([frame(0.5, probs("happiness", .5)), frame(1.5, None)], FER7), 0.0, 3.0, FER7)
    v3 = viewer_seconds(frame_table([frame(0.7, probs("anger", .7)), frame(1.2, probs("happiness", .6))], FER7),
                        0.0, 3.0, FER7)
    s = ad_series("spot", [v1, v2, v3], FER7, 3, threshold=0.5)
    assert list(s.columns) == list(SERIES_COLUMNS) and len(s) == 3 * len(FER7)
    assert s["emotion"].tolist()[:7] == list(FER7) and s["second"].tolist() == [0] * 7 + [1] * 7 + [2] * 7
    h0 = np.array([.9, .5, .3 / 6])
    row = s[(s.second == 0) & (s.emotion == "happiness")].iloc[0]
    half = sps.t.ppf(0.975, 2) * h0.std(ddof=1) / math.sqrt(3)
    assert row["mean"] == pytest.approx(h0.mean())
    assert row["ci_low"] == pytest.approx(max(0, h0.mean() - half))
    assert row["ci_high"] == pytest.approx(min(1, h0.mean() + half))
    assert row["share_expressing"] == pytest.approx(2 / 3) and row["n_viewers"] == 3  # 0.9 and 0.5 (>=)
    row1 = s[(s.second == 1) & (s.emotion == "happiness")].iloc[0]  # v2 has no face in second 1
    assert row1["n_viewers"] == 2 and row1["mean"] == pytest.approx(0.5) and row1["share_expressing"] == 0.5
    last = s[s.second == 2]
    assert (last["n_viewers"] == 0).all() and last["mean"].isna().all() and last["share_expressing"].isna().all()
    assert curve(s, "happiness")[:2] == pytest.approx([h0.mean(), 0.5])


def test_ad_series_without_viewers_is_empty_but_shaped() -> None:
    s = ad_series("spot", [], FER7, 2)
    assert len(s) == 14 and (s["n_viewers"] == 0).all() and s["mean"].isna().all()
