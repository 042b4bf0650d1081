"""``emolens campaign analyze`` and ``emolens campaign demo``: outputs, table, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emolens.cli import campaign as campaign_cli
from emolens.cli import main

from ..inference.modelfactory import make_model
from ..video.synth import write_video


def run(args: list[str]) -> int:
    """The ``emolens`` console entry point (core errors become exit codes, messages go to stderr)."""
    return main(args)


@pytest.fixture(autouse=True)
def _norms_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The campaign CLI records norms by default: keep them out of the home folder."""
    monkeypatch.setenv("EMOLENS_NORMS", str(tmp_path / "norms.sqlite"))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("cli-campaign") / "tiny.onnx")


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    """Two ads, one viewer each: one bright square "face" (kept) and a faceless video (excluded)."""
    write_video(tmp_path / "face.avi", [[(40, 30, 40, "left")]] * 30, fps=10.0)
    write_video(tmp_path / "blank.avi", 30, fps=10.0)
    path = tmp_path / "m.yaml"
    path.write_text("ads:\n  - {name: one, duration_s: 2}\n  - {name: two, duration_s: 2}\nrecordings:\n"
                    "  - {viewer: v1, ad: one, recording: face.avi, offset_s: 0.5}\n"
                    "  - {viewer: v1, ad: two, recording: blank.avi}\n")
    return path


def test_analyze_prints_the_ranking_and_writes_outputs(manifest: Path, model: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("emolens.cli.campaign._analyzer", lambda m, d: _square_analyzer(m))
    out = tmp_path / "out"
    code = run(["campaign", "analyze", str(manifest), "--out", str(out), "--model", str(model), "--sample-fps", "2",
                "--bootstrap", "50", "--seed", "3", "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "one" in text and "two" in text and "excluded: v1 / two: face found in 0%" in text
    assert "2 recording(s) analysed, 0 from the cache" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["seed"] == 3 and summary["settings"]["sample_fps"] == 2.0
    assert summary["ads"][0]["kpis"]["face_found_rate"]["value"] == 1.0
    assert (out / "series.csv").is_file() and (out / "cache").is_dir()
    assert run(["campaign", "analyze", str(manifest), "--out", str(out), "--model", str(model), "--sample-fps", "2",
                "--bootstrap", "50", "--no-progress"]) == 0
    assert "0 recording(s) analysed, 2 from the cache" in capsys.readouterr().out


def _square_analyzer(model: str | None) -> Any:
    from emolens.inference.analyzer import Analyzer
    from tests.video.synth import SquareDetector

    return Analyzer(model, detector=SquareDetector(), align=False, min_face=8)  # type: ignore[arg-type]


def test_bad_manifest_exits_2_naming_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("ads:\n  - {name: a, duration_s: 1}\nrecordings:\n  - {viewer: v, ad: b, recording: x.mp4}\n")
    assert run(["campaign", "analyze", str(bad), "--out", str(tmp_path / "o")]) == 2
    out = capsys.readouterr().err
    assert "bad.yaml" in out and "line 4: unknown ad 'b'" in out and "line 4: recording of viewer 'v' not found" in out


def test_bad_option_exits_2(manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["campaign", "analyze", str(manifest), "--out", str(tmp_path / "o"), "--threshold", "1.5"]) == 2
    assert "expressing_threshold must be in (0, 1]" in capsys.readouterr().err


def test_demo_without_media_exits_5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["campaign", "demo", "--media", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 5
    assert "nothing" in capsys.readouterr().err


def test_default_media_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EMOLENS_SHARED", str(tmp_path))
    assert campaign_cli.default_media_dir() == tmp_path / "data" / "media"
    monkeypatch.delenv("EMOLENS_SHARED")
    monkeypatch.chdir(tmp_path)
    assert campaign_cli.default_media_dir() == tmp_path.parent / "shared" / "data" / "media"


def test_a_recording_that_cannot_be_analysed_makes_the_run_partial(tmp_path: Path, model: Path,
                                                                   capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The outputs are written, but a recording is missing from them: exit 8 (partial), as a job ends partial."""
    from emolens.partial import PARTIAL_EXIT_CODE

    write_video(tmp_path / "face.avi", [[(40, 30, 40, "left")]] * 30, fps=10.0)
    (tmp_path / "broken.avi").write_bytes(b"RIFF" + b"\x00" * 4000)
    path = tmp_path / "m.yaml"
    path.write_text("ads:\n  - {name: one, duration_s: 2}\nrecordings:\n"
                    "  - {viewer: v1, ad: one, recording: face.avi}\n"
                    "  - {viewer: v2, ad: one, recording: broken.avi}\n")
    monkeypatch.setattr("emolens.cli.campaign._analyzer", lambda m, d: _square_analyzer(m))
    out = tmp_path / "out"
    code = run(["campaign", "analyze", str(path), "--out", str(out), "--model", str(model), "--sample-fps", "2",
                "--bootstrap", "20", "--no-progress"])
    captured = capsys.readouterr()
    assert code == PARTIAL_EXIT_CODE, captured.err
    assert "partial result: 1 recording(s) could not be analysed" in captured.err
    assert (out / "summary.json").is_file() and (out / "report.html").is_file()
