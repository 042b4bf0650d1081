"""``analyze_campaign`` end to end on a tiny synthetic campaign whose per-frame probabilities are
known (a fake analyser): every series value, KPI, CI, share, ranking and test is recomputed here by
hand, independently of the library's vectorised code. Plus the cache, outputs and a real-data run."""

from __future__ import annotations

import json
import math
import statistics
import sys
import types
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from emolens.campaign import CampaignSettings, analyze_campaign
from emolens.campaign.attention import ATTENTION_KPIS
from emolens.errors import InvalidInput
from emolens.labels import FER7, VALENCE
from tests.video.synth import write_video

from .fakes import FakeAnalyser, frame, probs

B, SEED = 300, 11
P = {  # the per-frame probabilities of each viewer, by recording file name
    "a1.mp4": [(1.0, ("happiness", .9)), (1.5, ("happiness", .7)), (2.0, ("anger", .6)), (2.5, ("neutral", .8)),
               (3.0, ("happiness", .5)), (3.5, ("surprise", .6)), (4.2, ("anger", .9))],
    "a2.mp4": [(0.0, ("happiness", .6)), (0.5, ("neutral", .5)), (1.0, ("sadness", .7)), (1.5, None), (2.0, None),
               (2.5, None)],
    "a3.mp4": [(0.0, ("happiness", .9)), (1.0, None), (2.0, None)],
    "a5.mp4": [(t, ("happiness", .8)) for t in (0.0, 1.0, 2.0)],
    "b1.mp4": [(0.0, ("happiness", .8)), (0.5, ("happiness", .6)), (1.0, ("fear", .55)), (2.0, ("happiness", .95)),
               (2.5, ("anger", .9))],
    "b2.mp4": [(0.5, ("neutral", .9)), (1.5, ("happiness", .5)), (2.0, ("disgust", .6)), (2.9, ("neutral", .6))],
}
OFFSETS = {"a1.mp4": 1.0, "a2.mp4": 0.0, "a3.mp4": 0.0, "a5.mp4": 0.0, "b1.mp4": 0.0, "b2.mp4": 0.5}
MANIFEST = """\
campaign: tiny
ads:
  - {name: A, duration_s: 3, video: ad_a.avi}
  - {name: B, duration_s: 2.5}
recordings:
  - {viewer: a1, ad: A, recording: a1.mp4, offset_s: 1.0, segment: young}
  - {viewer: a2, ad: A, recording: a2.mp4, segment: old}
  - {viewer: a3, ad: A, recording: a3.mp4, segment: young}
  - {viewer: a4, ad: A, recording: a4.mp4, segment: old}
  - {viewer: a5, ad: A, recording: a5.mp4, segment: old}
  - {viewer: b1, ad: B, recording: b1.mp4, segment: young}
  - {viewer: b2, ad: B, recording: b2.mp4, offset_s: 0.5, segment: old}
  - {viewer: b3, ad: B, recording: b3_photos, segment: old}
"""
PHOTOS = [("p1.jpg", ("happiness", .7)), ("p2.jpg", None), ("p3.jpg", ("sadness", .6))]


def _rows(name: str) -> list[dict[str, Any]]:
    bright = 20.0 if name == "a5.mp4" else 100.0
    return [frame(t, None if p is None else probs(*p), brightness=bright) for t, p in P[name]]


@pytest.fixture()
def campaign(tmp_path: Path) -> tuple[Path, FakeAnalyser]:
    for name in [*P, "a4.mp4"]:
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "b3_photos").mkdir()
    for name, _ in PHOTOS:
        (tmp_path / "b3_photos" / name).write_bytes(b"jpg")
    write_video(tmp_path / "ad_a.avi", 75, fps=25.0)
    (tmp_path / "m.yaml").write_text(MANIFEST)
    rows = {name: _rows(name) for name in P}
    rows["b3_photos"] = [frame(i, None if p is None else probs(*p), source=n) for i, (n, p) in enumerate(PHOTOS)]
    return tmp_path / "m.yaml", FakeAnalyser(rows, broken=["a4.mp4"])


@pytest.fixture()
def no_report(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Replace the report module by a recorder (the report has its own tests)."""
    calls: list[tuple[Any, ...]] = []

    def write_report(summary: Any, series: pd.DataFrame, out_dir: Path, **tables: Any) -> Path:
        calls.append((summary, series, out_dir))
        (out_dir / "report.html").write_text("<html></html>")
        return out_dir / "report.html"

    fake = types.ModuleType("emolens.campaign.report")
    fake.write_report = write_report  # type: ignore[attr-defined]
    import emolens.campaign

    monkeypatch.setitem(sys.modules, "emolens.campaign.report", fake)
    monkeypatch.setattr(emolens.campaign, "report", fake, raising=False)
    return calls


# ---------------------------------------------------------------- the hand computation


def hand_seconds(name: str, duration: float) -> dict[int, dict[str, float] | None]:
    """second -> mean probabilities over the face frames of that second (None: no face)."""
    by_second: dict[int, list[dict[str, float]]] = defaultdict(list)
    seen: set[int] = set()
    for t, p in P[name]:
        t_ad = t - OFFSETS[name]
        if 0 <= t_ad < duration:
            seen.add(math.floor(t_ad))
            if p is not None:
                by_second[math.floor(t_ad)].append(probs(*p))
    out = {}
    for s in range(math.ceil(duration)):
        faces = by_second.get(s, [])
        out[s] = {lb: statistics.fmean(f[lb] for f in faces) for lb in FER7} if faces else None
    return out


def hand_kpis(secs: dict[int, dict[str, float] | None]) -> dict[str, float]:
    face = [p for p in secs.values() if p is not None]
    dom = [VALENCE[max(p, key=lambda lb: p[lb])] for p in face]
    return {
        "face_found_rate": len(face) / len(secs),
        "positive_share": sum(d > 0 for d in dom) / len(face),
        "negative_share": sum(d < 0 for d in dom) / len(face),
        "neutral_share": sum(d == 0 for d in dom) / len(face),
        "expressiveness": statistics.fmean(1 - p["neutral"] for p in face),
        "valence_index": statistics.fmean(sum(p[lb] * VALENCE[lb] for lb in FER7) for p in face),
    }


def hand_ci(stat: Any, n: int) -> tuple[float, float]:
    """Percentile CI of ``stat(list of viewer indices)`` over the documented resamples."""
    idx = np.random.default_rng(SEED).integers(0, n, size=(B, n))
    draws = [stat(list(idx[b])) for b in range(B)]
    return tuple(np.percentile([d for d in draws if not math.isnan(d)], [2.5, 97.5]))  # type: ignore[return-value]


def hand_curve(viewers: list[dict[int, dict[str, float] | None]], emotion: str, picks: list[int]) -> list[float]:
    out = []
    for s in viewers[0]:
        vals = [viewers[i][s][emotion] for i in picks if viewers[i][s] is not None]  # type: ignore[index]
        out.append(statistics.fmean(vals) if vals else math.nan)
    return out


# ---------------------------------------------------------------- the tests


def test_tiny_campaign_matches_the_hand_computation(campaign: tuple[Path, FakeAnalyser], tmp_path: Path,
                                                    no_report: list[Any]) -> None:
    manifest, fake = campaign
    res = analyze_campaign(manifest, tmp_path / "out", fake, CampaignSettings(bootstrap=B, seed=SEED, min_viewers_ci=1),
                           progress=False)
    s = res.summary
    qc = {q["viewer"]: q for q in s["qc"]}
    assert [v for v, q in qc.items() if q["status"] == "kept"] == ["a1", "a2", "b1", "b2", "b3"]
    assert "face found in 33%" in qc["a3"]["reason"] and "too dark" in qc["a5"]["reason"]
    assert qc["a4"]["reason"].startswith("could not be analysed:") and "not a video" in qc["a4"]["reason"]
    assert qc["a2"]["face_found_rate"] == pytest.approx(2 / 3) and qc["b3"]["face_found_rate"] == pytest.approx(2 / 3)

    viewers = {"A": ["a1.mp4", "a2.mp4"], "B": ["b1.mp4", "b2.mp4"]}
    dur = {"A": 3.0, "B": 2.5}
    per_viewer: dict[str, list[dict[str, float]]] = {}
    for ad, names in viewers.items():
        secs = [hand_seconds(n, dur[ad]) for n in names]
        kp = [hand_kpis(x) for x in secs]
        per_viewer[ad] = kp
        entry = next(a for a in s["ads"] if a["name"] == ad)
        for kpi in kp[0]:
            got = entry["kpis"][kpi]
            assert got["value"] == pytest.approx(statistics.fmean(k[kpi] for k in kp), abs=1e-12), (ad, kpi)
            ci = hand_ci(lambda pick, kpi=kpi, kp=kp: statistics.fmean(kp[i][kpi] for i in pick), len(kp))
            assert (got["ci_low"], got["ci_high"]) == pytest.approx(ci, abs=1e-12), (ad, kpi)
        happy = hand_curve(secs, "happiness", [0, 1])
        ph = entry["kpis"]["peak_happiness"]
        assert (ph["value"], ph["second"]) == (pytest.approx(max(happy)), happy.index(max(happy)))
        ci = hand_ci(lambda pick, secs=secs: np.nanmax(hand_curve(secs, "happiness", pick)), 2)
        assert (ph["ci_low"], ph["ci_high"]) == pytest.approx(ci, abs=1e-12)
        check_series(res.series, ad, secs)
    a = next(x for x in s["ads"] if x["name"] == "A")
    assert (a["viewers_total"], a["viewers_kept"], a["kind"], a["photos"]) == (5, 2, "video", None)
    assert all(m["thumbnail"] == f"thumbs/A_{m['second']}.jpg" for m in a["key_moments"])
    assert all((res.out_dir / m["thumbnail"]).is_file() for m in a["key_moments"])
    check_photos(next(x for x in s["ads"] if x["name"] == "B"))
    check_ranking_and_tests(s, per_viewer)
    check_files(res.out_dir, s)
    assert no_report and no_report[0][2] == res.out_dir and res.report == res.out_dir / "report.html"


def check_series(series: pd.DataFrame, ad: str, secs: list[dict[int, dict[str, float] | None]]) -> None:
    rows = series[series["ad"] == ad]
    assert len(rows) == len(secs[0]) * len(FER7)
    for r in rows.itertuples():
        vals = [v[r.second][r.emotion] for v in secs if v[r.second] is not None]  # type: ignore[index]
        assert r.n_viewers == len(vals)
        if not vals:
            assert math.isnan(r.mean) and math.isnan(r.share_expressing)
            continue
        m = statistics.fmean(vals)
        half = 0.0 if len(vals) < 2 else sps.t.ppf(.975, len(vals) - 1) * statistics.stdev(vals) / math.sqrt(len(vals))
        assert (r.mean, r.ci_low, r.ci_high) == pytest.approx((m, max(0, m - half), min(1, m + half)), abs=1e-12)
        assert r.share_expressing == pytest.approx(sum(v >= .5 for v in vals) / len(vals))


def check_photos(b: dict[str, Any]) -> None:
    photos = b["photos"]
    assert (b["kind"], b["viewers_total"], b["viewers_kept"]) == ("mixed", 3, 3)
    assert photos["n_photos"] == 3 and photos["no_face_rate"] == pytest.approx(1 / 3)
    p1, p3 = probs("happiness", .7), probs("sadness", .6)
    assert photos["mean"] == pytest.approx({lb: (p1[lb] + p3[lb]) / 2 for lb in FER7})
    assert photos["dominant_share"] == pytest.approx({lb: .5 if lb in ("happiness", "sadness") else 0.0
                                                      for lb in FER7})


def check_ranking_and_tests(s: dict[str, Any], per_viewer: dict[str, list[dict[str, float]]]) -> None:
    for block in s["ranking"]:
        kpi = block["kpi"]
        values = {a["name"]: a["kpis"][kpi]["value"] for a in s["ads"]}
        if kpi in ATTENTION_KPIS:  # the fake engine gives no head pose: unavailable, never 0
            assert set(values.values()) == {None} and [r["rank"] for r in block["rows"]] == [None, None]
            continue
        best = sorted(values, key=lambda ad: values[ad] if block["higher_is_better"] is False else -values[ad])
        ranks = [None, None] if block["direction"] == "none" else [1, 1 if values["A"] == values["B"] else 2]
        assert [r["ad"] for r in block["rows"]] == best and [r["rank"] for r in block["rows"]] == ranks
        assert all(r["n"] == 2 for r in block["rows"])
    assert [(c["a"], c["b"]) for c in s["comparisons"]] == [("A", "B")] * 9
    for j, c in enumerate(s["comparisons"]):
        if c["kpi"] in ATTENTION_KPIS:
            assert (c["difference"], c["p_value"]) == (None, None)
            continue
        x = [k[c["kpi"]] for k in per_viewer["A"]]
        y = [k[c["kpi"]] for k in per_viewer["B"]]
        assert c["difference"] == pytest.approx(statistics.fmean(x) - statistics.fmean(y), abs=1e-12)
        rng = np.random.default_rng(SEED + j)
        ia, ib = rng.integers(0, 2, (B, 2)), rng.integers(0, 2, (B, 2))
        draws = [np.mean(np.array(x)[ia[k]]) - np.mean(np.array(y)[ib[k]]) for k in range(B)]
        assert (c["ci_low"], c["ci_high"]) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])), abs=1e-12)
        pooled, obs = x + y, statistics.fmean(x) - statistics.fmean(y)
        perms = [statistics.fmean([pooled[i] for i in g])
                 - statistics.fmean([pooled[i] for i in range(4) if i not in g]) for g in combinations(range(4), 2)]
        p = min(1.0, 2 * min(np.mean([d >= obs - 1e-12 for d in perms]), np.mean([d <= obs + 1e-12 for d in perms])))
        assert c["p_value"] == pytest.approx(p), c
    seg = {(x["value"], x["ad"]): x for x in s["segments"]}
    assert set(seg) == {("old", "A"), ("old", "B"), ("young", "A"), ("young", "B")}
    assert seg[("young", "A")]["viewers"] == 1 and seg[("young", "A")]["ci"] is None
    assert seg[("young", "A")]["kpis"]["valence_index"] == pytest.approx(per_viewer["A"][0]["valence_index"])


def check_files(out: Path, s: dict[str, Any]) -> None:
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(s))
    assert on_disk["settings"] == {"expressing_threshold": .5, "min_face_rate": .5, "min_brightness": 40.0,
                                   "min_sharpness": 15.0, "bootstrap": B, "seed": SEED, "confidence": .95,
                                   "sample_fps": 5.0, "min_viewers_ci": 1}
    assert set(on_disk) == {"campaign", "generated_at", "emolens_version", "model", "settings", "definitions", "ads",
                            "verdict", "ranking", "comparisons", "segments", "qc", "files"}
    series = pd.read_csv(out / "series.csv")
    assert list(series.columns) == ["ad", "second", "emotion", "mean", "ci_low", "ci_high", "share_expressing",
                                    "n_viewers"]
    assert pd.read_parquet(out / "series.parquet").shape == series.shape == (6 * 7, 8)
    vs = pd.read_csv(out / "viewer_seconds.csv")
    assert list(vs.columns) == ["ad", "viewer", "second", "face_found", "looking", *FER7, "segment"]
    assert vs["looking"].isna().all()  # no head pose from this engine: unavailable, not 0
    timeline = pd.read_csv(out / "timeline.csv")
    assert timeline["ad"].tolist() == ["A"] * 3 + ["B"] * 3 and timeline["share_looking"].isna().all()
    assert (timeline["n_attention"] == 0).all()
    assert vs["viewer"].tolist() == ["a1"] * 3 + ["a2"] * 3 + ["b1"] * 3 + ["b2"] * 3
    assert pd.read_parquet(out / "viewer_seconds.parquet").shape == vs.shape
    kp = pd.read_csv(out / "kpis.csv")
    assert kp["viewer"].tolist() == ["a1", "a2", "b1", "b2"] and "segment" in kp
    qc = pd.read_csv(out / "qc.csv")
    assert qc["status"].tolist() == ["kept", "kept", "excluded", "excluded", "excluded", "kept", "kept", "kept"]


def test_rerun_analyses_only_new_recordings(campaign: tuple[Path, FakeAnalyser], tmp_path: Path,
                                            no_report: list[Any]) -> None:
    manifest, fake = campaign
    settings = CampaignSettings(bootstrap=50)
    first = analyze_campaign(manifest, tmp_path / "out", fake, settings, progress=False)
    assert (first.analysed, first.from_cache) == (8, 0)
    (tmp_path / "c1.mp4").write_bytes(b"c1")
    fake.rows["c1.mp4"] = [frame(t, probs("happiness", .9)) for t in (0.0, 1.0, 2.0)]
    manifest.write_text(MANIFEST + "  - {viewer: c1, ad: B, recording: c1.mp4}\n")
    calls_before = dict(fake.calls)
    again = analyze_campaign(manifest, tmp_path / "out", fake, settings, progress=False)
    new_calls = {k: v - calls_before.get(k, 0) for k, v in fake.calls.items() if v - calls_before.get(k, 0)}
    assert new_calls == {"c1.mp4": 1, "a4.mp4": 1}  # the new viewer, and the broken one is retried
    assert (again.analysed, again.from_cache) == (2, 7)
    b = next(a for a in again.summary["ads"] if a["name"] == "B")
    assert b["viewers_total"] == 4 and b["kpis"]["face_found_rate"]["value"] == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [{"expressing_threshold": 0}, {"min_face_rate": 2}, {"bootstrap": 1},
                                 {"sample_fps": 0}, {"confidence": 1.0}])
def test_bad_settings(bad: dict[str, float]) -> None:
    with pytest.raises(InvalidInput, match="bad campaign settings"):
        CampaignSettings(**bad)  # type: ignore[arg-type]


def test_out_must_be_a_folder(campaign: tuple[Path, FakeAnalyser], tmp_path: Path) -> None:
    manifest, fake = campaign
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="is not a folder"):
        analyze_campaign(manifest, tmp_path / "file", fake, progress=False)


@pytest.mark.shared
def test_real_clips_with_the_shipped_model(shared_data: Path, tmp_path: Path) -> None:
    videos = shared_data / "media" / "videos"
    (tmp_path / "m.yaml").write_text(f"""\
ads:
  - {{name: spot, duration_s: 3, video: {videos / "fer_test.mp4"}}}
recordings:
  - {{viewer: woman, ad: spot, recording: {videos / "fer_woman2.mp4"}, offset_s: 1}}
  - {{viewer: gates, ad: spot, recording: {videos / "youtubefaces_0492_03_009_bill_gates.avi"}}}
""")
    settings = CampaignSettings(sample_fps=2, bootstrap=100)
    res = analyze_campaign(tmp_path / "m.yaml", tmp_path / "out", settings=settings, progress=False)
    assert [q["status"] for q in res.summary["qc"]] == ["kept", "kept"]  # frontal faces, well lit
    spot = res.summary["ads"][0]
    assert spot["kpis"]["face_found_rate"]["value"] == 1.0
    assert res.summary["model"]["name"] == "fer7_vgg.int8"
    assert len(res.series) == 3 * 7 and (res.series["n_viewers"] == 2).all()
    assert spot["key_moments"] and all(m["thumbnail"] for m in spot["key_moments"])
    assert (tmp_path / "out" / "report.html").is_file()
