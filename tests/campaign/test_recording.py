"""Recording analysis: face choice, frame sampling, the engine on generated videos, the cache."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from emolens.campaign.manifest import Recording
from emolens.campaign.recording import (
    EngineAnalyser,
    FrameCache,
    analyse_recording,
    frame_table,
    pick_face,
)
from emolens.inference.analyzer import Analyzer
from emolens.labels import FER7
from emolens.results import FaceResult
from emolens.video.stream import sample_frames
from tests.inference.modelfactory import make_model
from tests.video.synth import SquareDetector, write_video

from .fakes import FakeAnalyser, frame, probs


def _face(box: tuple[int, int, int, int], track: int) -> FaceResult:
    return FaceResult(box, 0.9, "anger", {"anger": 1.0}, track_id=track)


def test_pick_face_follows_the_chosen_track_else_the_largest() -> None:
    small, big = _face((0, 0, 10, 10), 1), _face((50, 0, 30, 30), 2)
    assert pick_face([small, big], None) is big
    assert pick_face([small, big], 1) is small
    assert pick_face([small], 2) is small and pick_face([], 1) is None


def test_sample_frames_keeps_one_frame_per_slot_from_the_start() -> None:
    frames = [SimpleNamespace(time_s=i / 10) for i in range(40)]  # 10 fps, 0..3.9 s
    got = [round(f.time_s, 2) for f in sample_frames(iter(frames), 0.95, fps=2.0)]
    assert got == [1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert len(list(sample_frames(iter(frames), 0.0, None))) == 40


@pytest.fixture(scope="module")
def square_analyzer(tmp_path_factory: pytest.TempPathFactory) -> Analyzer:
    model = make_model(tmp_path_factory.mktemp("campaign-model") / "tiny.onnx")
    return Analyzer(model, detector=SquareDetector(), align=False, min_face=8)  # type: ignore[arg-type]


def test_engine_analyser_on_a_generated_video(tmp_path: Path, square_analyzer: Analyzer) -> None:
    # 4 s at 10 fps: a square bright on its left (anger) for 2 s, then no face for 2 s
    scenes = [[(40, 30, 40, "left")]] * 20 + [[]] * 20
    video = write_video(tmp_path / "v.avi", scenes, fps=10.0)
    an = EngineAnalyser(square_analyzer, sample_fps=2.0)
    frames = an.analyse_video(video, 1.0, 4.0)
    assert frames["t"].round(2).tolist() == [1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert frames["face_found"].tolist() == [True, True, False, False, False, False]
    faces = frames.loc[frames.face_found, list(FER7)]
    assert (faces.idxmax(axis=1) == "anger").all()  # the tiny model: bright left half = anger
    assert frames.loc[0, ["x", "y", "w", "h"]].tolist() == [40, 30, 40, 40]
    assert frames["brightness"].between(20, 120).all() and frames.loc[0, "sharpness"] > 15
    assert frames["sharpness"].isna().tolist() == [False, False, True, True, True, True]
    assert "sample_fps" in an.identity and an.labels == FER7


def test_engine_analyser_on_photos(tmp_path: Path, square_analyzer: Analyzer) -> None:
    import cv2

    from tests.video.synth import draw_squares

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), draw_squares(80, 100, [(20, 20, 30, "right")]))
    cv2.imwrite(str(folder / "b.png"), draw_squares(80, 100, []))
    (folder / "c.png").write_bytes(b"not an image")
    frames = EngineAnalyser(square_analyzer).analyse_photos(sorted(folder.iterdir()))
    assert frames["source"].tolist() == ["a.png", "b.png"]  # the unreadable photo is skipped
    assert frames["face_found"].tolist() == [True, False]
    assert frames.loc[0, list(FER7)].astype(float).idxmax() == "disgust"  # bright right half


def _rec(path: Path, offset: float = 0.0) -> Recording:
    return Recording("v1", "ad", path, "video", offset)


def test_cache_serves_the_second_call_and_tracks_changes(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    fake = FakeAnalyser({"v.mp4": [frame(0.5, probs("happiness", .8)), frame(1.5, None)]})
    cache = FrameCache(tmp_path / "cache")
    first = analyse_recording(_rec(video), 2.0, fake, cache)
    again = analyse_recording(_rec(video), 2.0, fake, cache)
    assert not first.cached and again.cached and fake.calls["v.mp4"] == 1
    assert again.frames.equals(first.frames)
    analyse_recording(_rec(video, offset=0.5), 2.0, fake, cache)  # another window
    assert fake.calls["v.mp4"] == 2 and fake.windows["v.mp4"] == (0.5, 2.5)
    video.write_bytes(b"changed")  # size changes
    analyse_recording(_rec(video), 2.0, fake, cache)
    fake.identity = "fake-2"  # another model
    analyse_recording(_rec(video), 2.0, fake, cache)
    assert fake.calls["v.mp4"] == 4
    for f in (tmp_path / "cache").glob("*.parquet"):
        f.write_bytes(b"damaged")
    assert not analyse_recording(_rec(video), 2.0, fake, cache).cached  # damaged file: analysed again


def test_a_broken_recording_gives_an_error_not_an_exception(tmp_path: Path) -> None:
    video = tmp_path / "bad.mp4"
    video.write_bytes(b"x")
    fake = FakeAnalyser({}, broken=["bad.mp4"])
    out = analyse_recording(_rec(video), 2.0, fake, FrameCache(tmp_path / "cache"))
    assert out.error is not None and "not a video" in out.error and len(out.frames) == 0
    assert not list((tmp_path / "cache").glob("*.parquet"))  # errors are not cached
    assert frame_table([], FER7).columns.tolist()[:9] == ["t", "face_found", "x", "y", "w", "h", "brightness",
                                                          "sharpness", "source"]
