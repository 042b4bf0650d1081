"""``emolens video A B --out ROOT --ray`` and ``emolens campaign analyze --ray`` on a local Ray
(``ray.init(num_cpus=2)``, the fixture of test_ray_batch): the same files as the single-process commands, a bad
file among good ones reported with its named error (never dropped) and the same exit code (8, partial)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from emolens.cli import main
from emolens.partial import PARTIAL_EXIT_CODE

from ..inference.modelfactory import make_model
from ..video.synth import write_video
from .test_ray_batch import CLIPS, SAME_FILES, local_ray  # noqa: F401  (the module's local Ray)

pytest.importorskip("ray")
STAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?(\+00:00)?")
CAMPAIGN_TABLES = ("series.csv", "viewer_seconds.csv", "timeline.csv", "kpis.csv", "qc.csv")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _without_wall_times(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in ("stream", "files")}


def test_video_on_ray_writes_what_the_plain_run_writes(shared_data: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    clips = [str(shared_data / "media" / "videos" / c) for c in CLIPS]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    args = ["video", clips[0], str(broken), clips[1], "--max-seconds", "1", "-f", "json", "--no-progress",
            "--summary-every", "0"]
    runs = {}
    for name, extra in (("plain", []), ("ray", ["--ray"])):
        code, out, err = _run([*args, "--out", str(tmp_path / name), *extra], capsys)
        assert code == PARTIAL_EXIT_CODE, err
        assert "broken.mp4" in err and "partial: 1 video(s) could not be read" in err
        runs[name] = json.loads(out)
    for name in (Path(c).stem for c in CLIPS):
        plain, ray_dir = tmp_path / "plain" / name, tmp_path / "ray" / name
        for f in SAME_FILES:
            assert (ray_dir / f).read_bytes() == (plain / f).read_bytes(), f
        assert (plain / "frames.csv").read_text().count("\n") > 20
        summaries = [json.loads((d / "summary.json").read_text()) for d in (plain, ray_dir)]
        assert _without_wall_times(summaries[0]) == _without_wall_times(summaries[1])
    assert not (tmp_path / "ray" / "broken").exists()
    bodies = {k: [_without_wall_times(b) for b in r["videos"]] for k, r in runs.items()}
    assert bodies["plain"] == bodies["ray"] and [b["source"] for b in bodies["ray"]] == clips
    assert runs["plain"]["errors"] == runs["ray"]["errors"] == [
        {"source": str(broken), "error": "UnsupportedMedia", "message": runs["ray"]["errors"][0]["message"]}]
    assert all(b["tracks_count"] >= 1 for b in bodies["ray"])


def test_video_on_ray_with_generated_clips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One file: --out is its folder, as without --ray; every file unreadable: that error's exit code."""
    model = make_model(tmp_path / "tiny.onnx")
    clip = write_video(tmp_path / "square.avi", [[(40, 30, 40, "left")]] * 20, fps=10.0)
    common = ["--model", str(model), "--detector", "haar", "--no-progress", "-f", "json"]
    for name, extra in (("plain", []), ("ray", ["--ray"])):
        code, _, err = _run(["video", str(clip), "--out", str(tmp_path / name), *common, *extra], capsys)
        assert code == 0, err
    for f in SAME_FILES:
        assert (tmp_path / "ray" / f).read_bytes() == (tmp_path / "plain" / f).read_bytes(), f
    (tmp_path / "a.mp4").write_text("not a video\n" * 20)
    (tmp_path / "b.mp4").write_bytes(b"")
    code, out, err = _run(["video", str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), "--out", str(tmp_path / "x"),
                           *common, "--ray"], capsys)
    assert code == 3 and "none of the 2 video(s) could be read" in err
    assert "a.mp4" in err and "b.mp4" in err and len(json.loads(out)["errors"]) == 2


def _small_campaign(demo: Path) -> Path:
    """Four viewer videos and a photo set of the demo campaign, and a recording that is not a video."""
    (demo / "recordings" / "broken.mp4").write_bytes(b"\x00" * 2000)
    rows = [("v01", "ad_a", "recordings/v01_ad_a.mp4", 1.0), ("v01", "ad_b", "recordings/v01_ad_b.mp4", 0.8),
            ("v02", "ad_a", "recordings/v02_ad_a.mp4", 0.5), ("v02", "ad_b", "recordings/v02_ad_b.mp4", 1.2),
            ("v07", "ad_a", "recordings/broken.mp4", 0.0)]
    lines = ["campaign: ray check", "ads:", "  - {name: ad_a, duration_s: 8.0, video: ads/ad_a.mp4}",
             "  - {name: ad_b, duration_s: 7.0, video: ads/ad_b.mp4}", "recordings:"]
    lines += [f"  - {{viewer: {v}, ad: {a}, recording: {r}, offset_s: {o}}}" for v, a, r, o in rows]
    lines += ["  - {viewer: p01, ad: ad_b, recording: recordings/p01_ad_b_photos}"]
    path = demo / "small.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_campaign_on_ray_writes_what_the_plain_run_writes(shared_data: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from emolens.campaign.demo import build_demo

    build_demo(shared_data / "media", tmp_path / "demo")
    manifest = _small_campaign(tmp_path / "demo")
    args = ["campaign", "analyze", str(manifest), "--sample-fps", "2", "--bootstrap", "50", "--no-norms",
            "--no-progress"]
    outputs = {}
    for name, extra in (("plain", []), ("ray", ["--ray"])):
        out = tmp_path / name
        code, stdout, err = _run([*args, "--out", str(out), *extra], capsys)
        assert code == PARTIAL_EXIT_CODE, err
        assert "partial result: 1 recording(s) could not be analysed" in err
        assert "excluded: v07 / ad_a: could not be analysed" in stdout and "6 recording(s) analysed" in stdout
        outputs[name] = out
    plain, on_ray = outputs["plain"], outputs["ray"]
    for f in CAMPAIGN_TABLES:
        assert (on_ray / f).read_bytes() == (plain / f).read_bytes(), f
    assert (plain / "viewer_seconds.csv").read_text().count("\n") > 20
    summaries = [json.loads((d / "summary.json").read_text()) for d in (plain, on_ray)]
    for s in summaries:
        s.pop("generated_at")
    assert summaries[0] == summaries[1]
    reports = [STAMP.sub("<time>", (d / "report.html").read_text()) for d in (plain, on_ray)]
    assert reports[0] == reports[1]  # the report differs only in when it was generated
    qc = {row["viewer"]: row for row in summaries[1]["qc"]}
    assert qc["v07"]["status"] == "excluded" and "broken.mp4" in qc["v07"]["reason"]
    assert qc["v01"]["status"] == "kept" and qc["p01"]["status"] == "kept"
    code, stdout, _ = _run([*args, "--out", str(on_ray), "--ray"], capsys)  # the cache answers on Ray too
    assert code == PARTIAL_EXIT_CODE and "1 recording(s) analysed, 5 from the cache" in stdout
