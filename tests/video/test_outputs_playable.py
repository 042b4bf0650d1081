"""Playable, steady video outputs: the annotated MP4 is H.264 (PyAV says so, headless Chromium plays
it), a per-second table for every track, a timeline PNG for every track, smoothing on by default."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import av
import pyarrow.parquet as pq
import pytest

from emolens.cli import main
from emolens.results import FrameResult
from emolens.video.outputs import VideoRecorder
from emolens.video.smoothing import half_life_s

from .sequences import LABELS, face, sequence
from .synth import draw_squares


def _record(out: Path, size: tuple[int, int] = (120, 160), **kw: Any) -> None:
    rec = VideoRecorder(out, LABELS, **kw)
    for f in sequence():
        rec.add(f, draw_squares(size[0], size[1], [(20, 20, 30, "left"), (100, 60, 30, "right")]))
    rec.close()


def _probe(path: Path) -> tuple[str, int, tuple[int, int], str]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return stream.codec_context.name, frames, (stream.width, stream.height), str(stream.codec_context.pix_fmt)


def test_annotated_video_is_h264(tmp_path: Path) -> None:
    _record(tmp_path, annotate_mp4=True, fps=10.0)
    assert _probe(tmp_path / "annotated.mp4") == ("h264", 5, (160, 120), "yuv420p")


def test_odd_frame_sizes_are_padded_to_even(tmp_path: Path) -> None:
    _record(tmp_path, size=(121, 161), annotate_mp4=True, fps=10.0)
    assert _probe(tmp_path / "annotated.mp4")[:3] == ("h264", 5, (162, 122))


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_seconds_table_is_the_mean_per_track_and_second(tmp_path: Path) -> None:
    rec = VideoRecorder(tmp_path, LABELS, timelines=False)
    frames = sequence()  # 0.0-0.4 s; add a second second: track 1 at 1.2 s and 1.7 s
    frames += [FrameResult(5, 1.2, 160, 120, (face(1, 0.4),)), FrameResult(6, 1.7, 160, 120, (face(1, 1.0),))]
    for f in frames:
        rec.add(f)
    summary = rec.close()
    rows = _read(tmp_path / "seconds.csv")
    assert [(r["second"], r["track_id"], r["frames"], r["emotion"]) for r in rows] == [
        ("0", "1", "4", "a"), ("0", "2", "2", "b"), ("1", "1", "2", "a")]
    assert float(rows[0]["a"]) == pytest.approx((0.9 + 0.6 + 0.2 + 0.3) / 4)
    assert float(rows[1]["a"]) == pytest.approx((0.1 + 0.8) / 2) and float(rows[1]["b"]) == pytest.approx(0.55)
    assert float(rows[2]["a"]) == pytest.approx(0.7)
    table = pq.read_table(tmp_path / "seconds.parquet")
    assert table.column("second").to_pylist() == [0, 0, 1]
    assert table.column("a").to_pylist() == pytest.approx([float(r["a"]) for r in rows])
    assert {"seconds_csv", "seconds_parquet"} <= set(summary.files)


def test_a_timeline_png_for_every_track(tmp_path: Path) -> None:
    rec = VideoRecorder(tmp_path, LABELS)
    for f in [*sequence(), FrameResult(5, 0.5, 160, 120, (face(3, 0.7, x=60),))]:  # track 3: a single frame
        rec.add(f)
    rec.close()
    assert sorted(p.name for p in (tmp_path / "timelines").glob("*.png")) == [
        "track_1.png", "track_2.png", "track_3.png"]


def test_video_cli_smooths_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []

    def fake_iter_video(analyzer: Any, source: Any, options: Any) -> Any:
        seen.append(options.smoothing)
        raise KeyboardInterrupt  # stop here: only the options matter

    class FakeAnalyzer:
        def __init__(self, **kw: Any) -> None:
            self.labels = LABELS

    monkeypatch.setattr("emolens.video.stream.iter_video", fake_iter_video)
    monkeypatch.setattr("emolens.inference.analyzer.Analyzer", FakeAnalyzer)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    for extra in ([], ["--smoothing", "0.5"], ["--no-smoothing"]):
        assert main(["video", str(video), "--no-progress", *extra]) == 130
    assert seen == [0.95, 0.5, 0.0]
    assert half_life_s(0.95) == pytest.approx(0.45, abs=0.01)


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_chromium_plays_the_annotated_video(tmp_path: Path) -> None:
    from tests.browser import chromium_driver

    _record(tmp_path, annotate_mp4=True, fps=10.0)
    page = tmp_path / "play.html"
    page.write_text('<!DOCTYPE html><video id="v" src="annotated.mp4" muted preload="auto"></video>')
    with chromium_driver(tmp_path / "profile") as drv:
        drv.get(page.as_uri())
        state = drv.execute_async_script(
            "var done = arguments[0], v = document.getElementById('v');"
            "function report() { done([v.readyState, v.videoWidth, v.error && v.error.code]); }"
            "if (v.readyState >= 2) { report(); } else { v.addEventListener('loadeddata', report);"
            " v.addEventListener('error', report); setTimeout(report, 20000); }")
    assert state[2] is None, f"Chromium could not play the video (MediaError {state[2]})"
    assert state[0] >= 2 and state[1] == 160


def test_frames_and_seconds_carry_head_pose_and_looking(tmp_path: Path) -> None:
    from dataclasses import replace

    rec = VideoRecorder(tmp_path, LABELS, timelines=False)
    poses = [(10.0, -5.0, True), (45.0, 0.0, False), (None, None, None), (5.0, 2.0, True)]
    for i, (yaw, pitch, looking) in enumerate(poses):
        f = replace(face(1, 0.6), yaw=yaw, pitch=pitch, looking=looking)
        rec.add(FrameResult(i, 0.2 * i, 160, 120, (f,)))
    rec.close()
    frames = _read(tmp_path / "frames.csv")
    assert [(r["yaw"], r["pitch"], r["looking"]) for r in frames] == [
        ("10.00", "-5.00", "1"), ("45.00", "0.00", "0"), ("", "", ""), ("5.00", "2.00", "1")]
    assert pq.read_table(tmp_path / "frames.parquet").column("looking").to_pylist() == [True, False, None, True]
    (second,) = _read(tmp_path / "seconds.csv")
    assert float(second["looking_share"]) == pytest.approx(2 / 3, abs=1e-4)  # of the 3 frames with a pose
    (track,) = _read(tmp_path / "tracks.csv")
    assert float(track["looking_share"]) == pytest.approx(2 / 3, abs=1e-4)
