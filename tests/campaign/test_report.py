"""report.html from a hand-built summary and series: numbers, escaping, thumbnails, offline, edge cases."""

from __future__ import annotations

import base64
import copy
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from emolens.campaign.report import render_report, verdict, write_report
from emolens.errors import InvalidInput
from emolens.labels import FER7

EVIL = "<script>alert(1)</script>"
KPIS = ("face_found_rate", "positive_share", "negative_share", "neutral_share", "expressiveness", "valence_index")


def _kpis(base: float) -> dict[str, Any]:
    out: dict[str, Any] = {k: {"value": base, "ci_low": base - 0.1, "ci_high": base + 0.1} for k in KPIS}
    out["face_found_rate"] = {"value": 0.8333, "ci_low": 0.7, "ci_high": 0.95}
    out["valence_index"] = {"value": base - 0.5, "ci_low": base - 0.6, "ci_high": base - 0.4}
    out["peak_happiness"] = {"value": 0.71, "ci_low": 0.6, "ci_high": 0.8, "second": 3}
    return out


def make_series(ads: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """Long-format series.csv rows for each ad (name -> seconds), smooth random curves."""
    rng = np.random.default_rng(seed)
    rows = []
    for ad, seconds in ads.items():
        for emo in FER7:
            curve = np.clip(0.1 + 0.5 * rng.random() * (1 + np.sin(np.arange(seconds) / 2 + rng.random())), 0, 1)
            for s, m in enumerate(curve):
                rows.append({"ad": ad, "second": s, "emotion": emo, "mean": m, "ci_low": max(0.0, m - 0.1),
                             "ci_high": min(1.0, m + 0.1), "share_expressing": float(m > 0.5), "n_viewers": 4})
    return pd.DataFrame(rows)


def jpeg_bytes(seed: int = 0) -> bytes:
    img = (np.random.default_rng(seed).random((36, 64, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG")
    return buf.getvalue()


def make_summary(out_dir: Path) -> dict[str, Any]:
    """Two ads (alpha with a thumbnail for its first key moment, beta with a photo test), QC rows with
    an excluded recording and a viewer whose name is a script tag, segments, ranking, comparisons."""
    (out_dir / "thumbs").mkdir(parents=True, exist_ok=True)
    (out_dir / "thumbs" / "alpha_3.jpg").write_bytes(jpeg_bytes())
    moments = [{"second": 3, "kind": "peak", "emotion": "happiness", "value": 0.71, "thumbnail": "thumbs/alpha_3.jpg"},
               {"second": 6, "kind": "trough", "emotion": "valence", "value": -0.25, "thumbnail": "thumbs/gone.jpg"}]
    alpha = {"name": "alpha", "duration_s": 8.0, "video": "ads/alpha.mp4", "kind": "video", "viewers_total": 5,
             "viewers_kept": 4, "kpis": _kpis(0.62), "key_moments": moments, "photos": None}
    photos = {"n_photos": 6, "no_face_rate": 1 / 6, "mean": dict.fromkeys(FER7, 1 / 7),
              "dominant_share": {"happiness": 0.6, "neutral": 0.4}}
    beta = {"name": "beta & co", "duration_s": 7.0, "video": None, "kind": "mixed", "viewers_total": 4,
            "viewers_kept": 4, "kpis": _kpis(0.41), "key_moments": [], "photos": photos}
    ranking = [{"kpi": k, "higher_is_better": k != "negative_share",
                "rows": [{"rank": 1, "ad": "alpha", "value": 0.62, "ci_low": 0.52, "ci_high": 0.72, "n": 4},
                         {"rank": 2, "ad": "beta & co", "value": 0.41, "ci_low": 0.31, "ci_high": 0.51, "n": 4}]}
               for k in ("valence_index", "positive_share")]
    qc = [{"viewer": "v01", "ad": "alpha", "recording": "recordings/v01.mp4", "status": "kept", "reason": None,
           "face_found_rate": 0.9, "brightness": 120.5, "sharpness": 80.2, "seconds": 8},
          {"viewer": EVIL, "ad": "alpha", "recording": "recordings/v05_dogs.mp4", "status": "excluded",
           "reason": "face found in 0% of seconds (< 50%)", "face_found_rate": 0.0, "brightness": 97.0,
           "sharpness": None, "seconds": 8}]
    return {
        "campaign": "Spring launch", "generated_at": "2025-03-01T10:20:30+00:00", "emolens_version": "0.1.0",
        "model": {"name": "fer7-test", "labels": list(FER7)},
        "settings": {"expressing_threshold": 0.5, "min_face_rate": 0.5, "bootstrap": 2000, "seed": 0},
        "definitions": {"valence_index": "mean over face seconds of sum p(e)·valence(e)",
                        "face_found_rate": "seconds with a face / ad seconds"},
        "ads": [alpha, beta], "ranking": ranking,
        "comparisons": [{"kpi": "valence_index", "a": "alpha", "b": "beta & co", "difference": 0.21,
                         "ci_low": 0.05, "ci_high": 0.37, "p_value": 0.012}],
        "segments": [{"attribute": "segment", "value": "18-34", "ad": "alpha", "viewers": 2,
                      "kpis": {"positive_share": 0.5, "valence_index": None}}],
        "qc": qc, "files": {"series_csv": "series.csv", "summary_json": "summary.json"},
    }


@pytest.fixture()
def campaign(tmp_path: Path) -> tuple[dict[str, Any], pd.DataFrame, Path]:
    return make_summary(tmp_path), make_series({"alpha": 8, "beta & co": 7}), tmp_path


def test_report_shows_the_numbers(campaign: tuple[dict[str, Any], pd.DataFrame, Path]) -> None:
    summary, series, out = campaign
    path = write_report(summary, series, out)
    assert path == out / "report.html"
    html = path.read_text(encoding="utf-8")
    assert "Spring launch" in html and "fer7-test" in html
    assert "83.3%" in html  # face_found_rate 0.8333 as a percentage
    assert "+0.12" in html  # alpha's valence index 0.62 - 0.5
    assert "0.71" in html and "at second 3" in html  # peak happiness and its second
    assert "mean over face seconds of sum p(e)·valence(e)" in html  # definitions text
    assert "face found in 0% of seconds (&lt; 50%)" in html  # the QC reason, escaped
    assert "beta &amp; co" in html and "beta & co" not in html
    assert "0.012" in html  # p-value
    assert "series.csv" in html and "summary.json" in html  # sources named near the figures
    assert "Photo test" in html and "16.7%" in html  # no-face rate of the photo test


def test_report_escapes_user_strings(campaign: tuple[dict[str, Any], pd.DataFrame, Path]) -> None:
    summary, series, out = campaign
    summary["campaign"] = EVIL
    html = write_report(summary, series, out).read_text(encoding="utf-8")
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # only the report's own legend script


def test_report_is_self_contained(campaign: tuple[dict[str, Any], pd.DataFrame, Path]) -> None:
    summary, series, out = campaign
    html = write_report(summary, series, out).read_text(encoding="utf-8")
    uris = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', html)
    assert len(uris) == 1
    assert base64.b64decode(uris[0]) == (out / "thumbs" / "alpha_3.jpg").read_bytes()
    assert "no frame" in html  # the missing thumbs/gone.jpg is a placeholder
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', html, re.IGNORECASE)
    assert "http://" not in html and "https://" not in html
    assert "default-src 'none'" in html  # CSP: the page cannot load anything


def test_report_draws_one_chart_pair_per_video_ad(campaign: tuple[dict[str, Any], pd.DataFrame, Path]) -> None:
    summary, series, out = campaign
    html = render_report(summary, series, out)
    assert html.count('class="chart"') == 4  # mean + share for each ad
    assert html.count('<path class="line"') == 4 * len(FER7)
    assert 'data-series="happiness"' in html and "#fac314" in html  # fixed emotion colour
    assert html.count('class="band"') == 2 * len(FER7)  # bands only on the mean charts
    assert "happiness · second 3:" in html  # per-point tooltip from series.csv


def test_report_is_deterministic(campaign: tuple[dict[str, Any], pd.DataFrame, Path]) -> None:
    summary, series, out = campaign
    assert render_report(summary, series, out) == render_report(copy.deepcopy(summary), series.copy(), out)


def test_verdict_names_the_winner_only_when_significant(campaign: tuple[dict[str, Any], pd.DataFrame, Path]) -> None:
    summary, _, _ = campaign
    text = verdict(summary, summary["ads"])
    assert 'data-outcome="winner" data-winner="alpha"' in text
    assert "alpha worked better" in text and "p = 0.012" in text
    summary["comparisons"][0]["p_value"] = 0.2
    text = verdict(summary, summary["ads"])
    assert 'data-outcome="tie"' in text and "worked better" not in text and "smallest p = 0.200 &gt;= 0.05" in text


def test_verdict_without_a_test_is_a_tie_even_when_cis_are_apart(
        campaign: tuple[dict[str, Any], pd.DataFrame, Path]) -> None:
    summary, _, _ = campaign
    summary["comparisons"] = []  # the CIs 0.52-0.72 and 0.31-0.51 do not overlap, but nothing was tested
    text = verdict(summary, summary["ads"])
    assert 'data-outcome="tie"' in text and "no test was possible" in text


def test_verdict_of_the_summary_is_shown_word_for_word(campaign: tuple[dict[str, Any], pd.DataFrame, Path]) -> None:
    summary, series, out = campaign
    summary["verdict"] = {"text": "Tie & more: as decided", "outcome": "tie", "winner": None, "kpis": []}
    html = render_report(summary, series, out)
    assert "Tie &amp; more: as decided" in html


def test_one_ad_has_no_comparison_section(campaign: tuple[dict[str, Any], pd.DataFrame, Path]) -> None:
    summary, series, out = campaign
    summary["ads"] = summary["ads"][:1]
    summary["comparisons"] = []
    html = write_report(summary, series[series["ad"] == "alpha"], out).read_text(encoding="utf-8")
    assert 'id="comparisons"' not in html
    assert "Only one ad" in html


def test_null_kpis_and_no_kept_viewers(campaign: tuple[dict[str, Any], pd.DataFrame, Path]) -> None:
    summary, _, out = campaign
    for ad in summary["ads"]:
        ad["viewers_kept"] = 0
        ad["kpis"] = {k: {"value": None, "ci_low": None, "ci_high": None} for k in KPIS}
        ad["key_moments"] = []
    for entry in summary["ranking"]:
        for row in entry["rows"]:
            row.update(value=None, ci_low=None, ci_high=None, n=0)
    summary["comparisons"][0].update(difference=None, ci_low=None, ci_high=None, p_value=None)
    html = write_report(summary, make_series({}), out).read_text(encoding="utf-8")
    assert "No verdict" in html
    assert "—" in html
    assert "No per-second curves" in html


def test_no_thumbnails_and_photos_only(campaign: tuple[dict[str, Any], pd.DataFrame, Path]) -> None:
    summary, _, out = campaign
    for moment in summary["ads"][0]["key_moments"]:
        moment["thumbnail"] = None
    summary["ads"][0]["key_moments"].append(
        {"second": 1, "kind": "peak", "emotion": "anger", "value": 0.3, "thumbnail": "../../etc/passwd"})
    html = write_report(summary, pd.DataFrame(), out).read_text(encoding="utf-8")
    assert "data:image/jpeg" not in html
    assert html.count("no frame</div>") == 3
    assert "Photo test" in html


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="'ads'"):
        write_report({"campaign": "x"}, pd.DataFrame(), tmp_path)
    with pytest.raises(InvalidInput, match="n_viewers"):
        write_report({"ads": []}, make_series({"a": 2}).drop(columns=["n_viewers"]), tmp_path)


def test_ranking_states_each_direction_and_role(campaign: tuple[dict[str, Any], pd.DataFrame, Path]) -> None:
    summary, series, out = campaign
    rows = [{"rank": None, "ad": "alpha", "value": 0.3, "n": 4},
            {"rank": None, "ad": "beta & co", "value": 0.2, "n": 4}]
    summary["ranking"] += [{"kpi": "neutral_share", "rows": rows},
                           {"kpi": "face_found_rate", "rows": [dict(r, rank=1) for r in rows]}]
    html = render_report(summary, series, out)
    block = html[html.index('id="ranking"'):]
    assert "Neutral share<br><span class=\"muted\">no better direction, never a win" in block
    assert "Face found<br><span class=\"muted\">higher is better, never a win" in block
    assert "Valence index<br><span class=\"muted\">higher is better</span>" in block
