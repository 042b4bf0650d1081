"""One verdict everywhere: campaigns with known effects (clear winner, tie, small groups) built through
a fake analyser and run through the real CLI entry point; the CLI, summary.json and report.html must
say the same thing. Plus the rules of :func:`emolens.campaign.verdict.decide` on hand-made inputs."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pytest

from emolens.campaign.verdict import KPI_ROLES, MIN_VIEWERS, decide
from emolens.cli import main

from .fakes import FakeAnalyser, frame, probs


def _viewer(emotion: str, p: float) -> list[dict[str, Any]]:
    return [frame(t, probs(emotion, p)) for t in (0.0, 1.0, 2.0)]


def _campaign(tmp_path: Path, a: list[tuple[str, float]], b: list[tuple[str, float]]) -> tuple[Path, FakeAnalyser]:
    rows, lines = {}, []
    for ad, viewers in (("spot_a", a), ("spot_b", b)):
        for i, (emotion, p) in enumerate(viewers):
            name = f"{ad}_{i}.mp4"
            (tmp_path / name).write_bytes(b"x")
            rows[name] = _viewer(emotion, p)
            lines.append(f"  - {{viewer: v{i}, ad: {ad}, recording: {name}}}")
    manifest = tmp_path / "m.yaml"
    manifest.write_text("campaign: known\nads:\n  - {name: spot_a, duration_s: 3}\n  - {name: spot_b, duration_s: 3}\n"
                        "recordings:\n" + "\n".join(lines) + "\n")
    return manifest, FakeAnalyser(rows)


def _run_cli(manifest: Path, fake: FakeAnalyser, out: Path, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> tuple[str, dict[str, Any], str]:
    monkeypatch.setattr("emolens.cli.campaign._analyzer", lambda model, detector: fake)
    code = main(["campaign", "analyze", str(manifest), "--out", str(out), "--bootstrap", "500", "--no-progress",
                 "--no-norms"])
    text = capsys.readouterr().out
    assert code == 0, text
    summary = json.loads((out / "summary.json").read_text())
    return text, summary, (out / "report.html").read_text(encoding="utf-8")


def _agree(cli: str, summary: dict[str, Any], page: str) -> dict[str, Any]:
    v = summary["verdict"]
    assert f"verdict: {v['text']}" in cli
    assert html.escape(v["text"], quote=True) in page
    assert f'data-outcome="{v["outcome"]}" data-winner="{v["winner"] or ""}"' in page
    return v


HAPPY = [("happiness", p) for p in (0.9, 0.85, 0.8, 0.75, 0.7, 0.95)]
SAD = [("sadness", p) for p in (0.9, 0.85, 0.8, 0.75, 0.7, 0.95)]


def test_clear_winner_is_the_same_in_cli_json_and_html(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    manifest, fake = _campaign(tmp_path, SAD, HAPPY)
    cli, summary, page = _run_cli(manifest, fake, tmp_path / "out", monkeypatch, capsys)
    v = _agree(cli, summary, page)
    assert (v["outcome"], v["winner"]) == ("winner", "spot_b")
    assert v["text"].startswith("spot_b worked better")
    valence = next(k for k in v["kpis"] if k["kpi"] == "valence_index")
    assert valence["better_than"] == {"spot_b": ["spot_a"]}
    face = next(k for k in v["kpis"] if k["kpi"] == "face_found_rate")
    assert face["result"] == "not a win" and face["role"] == "quality"  # equal quality is never a win anyway
    assert v["small_groups"] == []
    ranking = {r["kpi"]: r for r in summary["ranking"]}
    assert [(r["rank"], r["ad"]) for r in ranking["valence_index"]["rows"]] == [(1, "spot_b"), (2, "spot_a")]
    assert ranking["neutral_share"]["direction"] == "none" and ranking["neutral_share"]["rows"][0]["rank"] is None
    assert ranking["negative_share"]["direction"] == "lower"
    assert all(a["kpis"]["valence_index"]["ci_low"] is not None for a in summary["ads"])  # 6 viewers: a CI


def test_tie_is_a_tie_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    manifest, fake = _campaign(tmp_path, HAPPY, HAPPY)
    cli, summary, page = _run_cli(manifest, fake, tmp_path / "out", monkeypatch, capsys)
    v = _agree(cli, summary, page)
    assert (v["outcome"], v["winner"]) == ("tie", None)
    assert "the ads have the same valence index" in v["text"] and " worked better:" not in cli + page
    ranks = {r["kpi"]: [x["rank"] for x in r["rows"]] for r in summary["ranking"]}
    assert ranks["valence_index"] == [1, 1] and ranks["face_found_rate"] == [1, 1]  # equal values share a rank
    assert all(k["result"] in ("tie", "untested", "not a win", "descriptive") for k in v["kpis"])


def test_small_groups_are_flagged_without_intervals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    manifest, fake = _campaign(tmp_path, SAD[:3], HAPPY[:3])  # a large effect, but 3 viewers per ad
    cli, summary, page = _run_cli(manifest, fake, tmp_path / "out", monkeypatch, capsys)
    v = _agree(cli, summary, page)
    assert v["outcome"] == "tie"  # an exact permutation test over 3 + 3 viewers cannot reach p < 0.05
    assert v["small_groups"] == [{"ad": "spot_a", "viewers": 3}, {"ad": "spot_b", "viewers": 3}]
    assert f"fewer than {MIN_VIEWERS} viewers for spot_a (3), spot_b (3)" in v["text"]
    for ad in summary["ads"]:
        assert ad["small_group"] and ad["kpi_viewers"] == 3
        assert all(k["ci_low"] is None and k["ci_high"] is None for k in ad["kpis"].values())
    assert all(c["ci_low"] is None for c in summary["comparisons"])
    assert "3 (few)" in cli


def _ranking(values: dict[str, float], n: int = 8) -> list[dict[str, Any]]:
    return [{"kpi": "valence_index", "rows": [{"ad": a, "value": x, "n": n} for a, x in values.items()]}]


def test_three_ads_winner_needs_to_beat_every_other() -> None:
    ranking = _ranking({"a": 0.5, "b": 0.1, "c": 0.0})
    tests = [{"kpi": "valence_index", "a": "a", "b": "b", "difference": 0.4, "p_value": 0.01},
             {"kpi": "valence_index", "a": "a", "b": "c", "difference": 0.5, "p_value": 0.2},
             {"kpi": "valence_index", "a": "b", "b": "c", "difference": 0.1, "p_value": 0.5}]
    v = decide(ranking, tests, {"a": 8, "b": 8, "c": 8})
    assert (v["outcome"], v["winner"]) == ("partial", None) and "a > b" in v["text"]
    tests[1]["p_value"] = 0.001
    v = decide(ranking, tests, {"a": 8, "b": 8, "c": 8})
    assert (v["outcome"], v["winner"]) == ("winner", "a")


def test_significance_against_the_direction_is_not_a_win() -> None:
    ranking = [{"kpi": "negative_share", "rows": [{"ad": "a", "value": 0.6}, {"ad": "b", "value": 0.2}]},
               {"kpi": "face_found_rate", "rows": [{"ad": "a", "value": 1.0}, {"ad": "b", "value": 0.5}]}]
    tests = [{"kpi": "negative_share", "a": "a", "b": "b", "difference": 0.4, "p_value": 0.001},
             {"kpi": "face_found_rate", "a": "a", "b": "b", "difference": 0.5, "p_value": 0.001}]
    kpis = {k["kpi"]: k for k in decide(ranking, tests, {"a": 9, "b": 9}, confidence=0.99)["kpis"]}
    assert kpis["negative_share"]["winner"] == "b"  # lower is better
    assert kpis["face_found_rate"]["winner"] is None and kpis["face_found_rate"]["result"] == "not a win"


def test_the_level_follows_the_confidence() -> None:
    ranking = _ranking({"a": 0.5, "b": 0.1})
    tests = [{"kpi": "valence_index", "a": "a", "b": "b", "difference": 0.4, "p_value": 0.03}]
    assert decide(ranking, tests, {"a": 8, "b": 8}, confidence=0.95)["winner"] == "a"
    assert decide(ranking, tests, {"a": 8, "b": 8}, confidence=0.99)["winner"] is None


def test_every_kpi_states_a_direction() -> None:
    assert all(d in ("higher", "lower", "none") for _, d in KPI_ROLES.values())
    assert KPI_ROLES["neutral_share"] == ("descriptive", "none")
    assert KPI_ROLES["attention"][0] == "attention" and KPI_ROLES["face_found_rate"][0] == "quality"
