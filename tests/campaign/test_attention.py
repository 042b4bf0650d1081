"""Attention and engagement from the ``looking`` flag, through a fake analyser that sets it: per-second
share looking, retention, first-3-seconds attention, engagement, the CSVs and the report; and
"unavailable", never 0, when the engine gives no head pose."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from emolens.campaign import CampaignSettings, analyze_campaign
from emolens.campaign.attention import retained

from .fakes import FakeAnalyser, frame, probs

# Two frames per second over a 6 s ad. Viewer w1 looks for 3 s then turns away (face still found);
# w2 looks all along except second 1, where the face is lost (counts as not looking) ; w3 has no pose.
LOOK: dict[str, list[bool | None]] = {
    "w1.mp4": [True, True, True, False, False, False],
    "w2.mp4": [True, None, True, True, True, True],  # None: no face that second
}


def _rows(name: str) -> list[dict[str, Any]]:
    out = []
    for s in range(6):
        for half in (0.0, 0.5):
            if name == "w3.mp4":
                out.append(frame(s + half, probs("happiness", 0.7)))
                continue
            look = LOOK[name][s]
            p = probs("happiness", 0.8) if s % 2 == 0 else probs("neutral", 0.6)
            out.append(frame(s + half, None if look is None else p, looking=look))
    return out


def _campaign(tmp_path: Path, names: list[str]) -> tuple[Path, FakeAnalyser]:
    lines = []
    for i, name in enumerate(names):
        (tmp_path / name).write_bytes(b"x")
        lines.append(f"  - {{viewer: v{i}, ad: spot, recording: {name}}}")
    manifest = tmp_path / "m.yaml"
    manifest.write_text("ads:\n  - {name: spot, duration_s: 6}\nrecordings:\n" + "\n".join(lines) + "\n")
    return manifest, FakeAnalyser({n: _rows(n) for n in names})


def test_attention_per_second_and_per_viewer(tmp_path: Path) -> None:
    manifest, fake = _campaign(tmp_path, ["w1.mp4", "w2.mp4"])
    res = analyze_campaign(manifest, tmp_path / "out", fake, CampaignSettings(bootstrap=50, min_face_rate=0.1),
                           progress=False)
    vs = res.viewer_seconds.set_index(["viewer", "second"])
    assert vs.loc["v0", "looking"].tolist() == [1, 1, 1, 0, 0, 0]
    assert vs.loc["v1", "looking"].tolist() == [1, 0, 1, 1, 1, 1]  # no face = not looking
    kp = res.kpis.set_index("viewer")
    assert kp.loc["v0", "attention"] == pytest.approx(0.5) and kp.loc["v0", "attention_first3s"] == 1.0
    assert kp.loc["v1", "attention"] == pytest.approx(5 / 6)
    assert kp.loc["v1", "attention_first3s"] == pytest.approx(2 / 3)
    # engagement: 1 - p(neutral) over the seconds looking with a face
    happy, neutral = probs("happiness", 0.8)["neutral"], 0.6
    assert kp.loc["v0", "engagement"] == pytest.approx(np.mean([1 - happy, 1 - neutral, 1 - happy]))
    assert kp.loc["v1", "engagement"] == pytest.approx(np.mean([1 - happy, 1 - neutral, 1 - happy, 1 - neutral,
                                                                1 - happy]))
    tl = pd.read_csv(tmp_path / "out" / "timeline.csv")
    assert tl["share_looking"].tolist() == [1.0, 0.5, 1.0, 0.5, 0.5, 0.5]
    assert tl["retention"].tolist() == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]  # v0 drops off at second 3, for good
    assert (tl["n_attention"] == 2).all()
    ad = res.summary["ads"][0]
    assert ad["attention_available"]
    assert ad["kpis"]["attention_first3s"]["value"] == pytest.approx((1.0 + 2 / 3) / 2)
    att = next(k for k in res.summary["verdict"]["kpis"] if k["kpi"] == "attention")
    assert att["role"] == "attention" and att["result"] == "not a win"
    page = res.report.read_text(encoding="utf-8")
    assert 'data-chart="attention"' in page and 'data-series="retention"' in page
    assert "In the first 3 seconds viewers looked at the screen 83% of the time." in page


def test_no_pose_means_unavailable_not_zero(tmp_path: Path) -> None:
    manifest, fake = _campaign(tmp_path, ["w3.mp4"])
    res = analyze_campaign(manifest, tmp_path / "out", fake, CampaignSettings(bootstrap=50), progress=False)
    assert res.viewer_seconds["looking"].isna().all()
    assert all(math.isnan(res.kpis.iloc[0][k]) for k in ("attention", "attention_first3s", "engagement"))
    ad = res.summary["ads"][0]
    assert not ad["attention_available"] and ad["kpis"]["attention"]["value"] is None
    kpis = pd.read_csv(tmp_path / "out" / "kpis.csv")
    assert kpis["attention"].isna().all()  # an empty cell, not 0
    page = res.report.read_text(encoding="utf-8")
    assert "Attention is unavailable" in page and 'data-chart="attention"' not in page


def test_retention_rules() -> None:
    nan = math.nan
    assert retained(np.array([1, 0, 1, 0, 0, 1.0])).tolist() == [True, True, True, False, False, False]
    assert retained(np.array([1, nan, 0, nan, 0, 1.0])).tolist() == [True, True, False, False, False, False]
    assert retained(np.array([nan, nan])).tolist() == [False, False]
    assert retained(np.array([0.5, 0.4, 0.6])).all()  # one second below half is not a drop-off
