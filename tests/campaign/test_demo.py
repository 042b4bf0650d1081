"""The demo campaign: built from the shared media, sane files and offsets, a manifest that loads,
DatasetError naming what is missing; the cutting helpers on generated frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from emolens.campaign import demo
from emolens.errors import DatasetError


@pytest.fixture(scope="module")
def built(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.build_demo(shared_data / "media", tmp_path_factory.mktemp("demo"))


def _video(path: Path) -> tuple[float, list[float]]:
    """(duration in s from frame count / fps, mean gray of every frame)."""
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    grays = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        grays.append(float(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).mean()))
    cap.release()
    return len(grays) / fps, grays


def test_demo_files_and_manifest(built: Path) -> None:
    assert built.name == "manifest.yaml" and built.is_file()
    data = yaml.safe_load(built.read_text(encoding="utf-8"))
    root = built.parent
    ads = {a["name"]: a for a in data["ads"]}
    assert set(ads) == {"ad_a", "ad_b"}
    for ad in ads.values():
        duration, _ = _video(root / ad["video"])
        assert duration == pytest.approx(ad["duration_s"], abs=0.15)
        assert 6 <= ad["duration_s"] <= 8
    videos = [r for r in data["recordings"] if str(r["recording"]).endswith(".mp4")]
    for ad in ads:
        assert len({r["viewer"] for r in videos if r["ad"] == ad}) >= 5  # 4 usable + the one QC must exclude
    for rec in videos:
        assert 0.5 <= rec["offset_s"] <= 2.0
        assert rec["attributes"]["segment"] in ("18-34", "35-54")
        duration, _ = _video(root / rec["recording"])
        expected = rec["offset_s"] + ads[rec["ad"]]["duration_s"] + demo.TAIL_S
        assert duration == pytest.approx(expected, abs=0.15)
    photos = [r for r in data["recordings"] if (root / r["recording"]).is_dir()]
    assert photos and all(len(list((root / r["recording"]).glob("*.jpg"))) >= 2 for r in photos)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert size < 20 * 2**20


def test_demo_qc_failures_are_real(built: Path) -> None:
    """The darkened recording is below the brightness limit; the others are well lit; the dog
    recording is a pan over dlib_dogs.jpg (no human face)."""
    root = built.parent
    data = yaml.safe_load(built.read_text(encoding="utf-8"))
    dark = [c for c in demo.VIEWERS if c.gain < 1]
    assert len(dark) == 1
    for rec in data["recordings"]:
        if not str(rec["recording"]).endswith(".mp4"):
            continue
        _, grays = _video(root / rec["recording"])
        is_dark = (rec["viewer"], rec["ad"]) == (dark[0].viewer, dark[0].ad)
        assert (float(np.median(grays)) < 40) == is_dark, rec["recording"]
    assert [c.source for c in demo.VIEWERS if c.viewer == "v06"] == [demo.DOGS]


def test_demo_manifest_loads(built: Path) -> None:
    manifest_mod = pytest.importorskip("emolens.campaign.manifest")
    m = manifest_mod.load_manifest(built)
    assert [a.name for a in m.ads] == ["ad_a", "ad_b"]
    assert all(a.video is not None and a.video.is_file() for a in m.ads)
    kinds = {(r.viewer, r.ad): r.kind for r in m.recordings}
    assert kinds[("p01", "ad_b")] == "photos" and kinds[("v01", "ad_a")] == "video"
    assert set(m.attributes) == {"segment", "region"}


def test_missing_media_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found") as err:
        demo.build_demo(tmp_path / "nowhere", tmp_path / "out")
    assert str(tmp_path / "nowhere") in str(err.value)
    assert not (tmp_path / "out").exists()


def test_missing_media_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "media" / "videos").mkdir(parents=True)
    (tmp_path / "media" / "videos" / demo.WOMAN).write_bytes(b"")
    with pytest.raises(DatasetError) as err:
        demo.build_demo(tmp_path / "media", tmp_path / "out")
    text = str(err.value)
    assert str(tmp_path / "media" / "videos" / demo.GATES) in text
    assert str(tmp_path / "media" / "photos" / demo.DOGS) in text
    assert demo.WOMAN not in text


def test_undecodable_source_is_a_dataset_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(DatasetError, match=r"broken\.mp4"):
        demo.read_frames(bad)


def test_pick_loops_and_plays_back_and_forth() -> None:
    assert demo._pick(4, 1, 7, "loop") == [1, 2, 3, 1, 2, 3, 1]
    assert demo._pick(4, 0, 9, "pingpong") == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert demo._pick(1, 0, 3, "pingpong") == [0, 0, 0]


def test_write_and_resample_a_video(tmp_path: Path) -> None:
    frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(20)]
    path = tmp_path / "clip.mp4"
    demo.write_video(path, frames, fps=20.0)
    half = demo.read_frames(path, fps=10.0)
    assert len(half) == 10
    assert [round(float(f.mean()) / 10) for f in half[:3]] == [0, 2, 4]  # every other frame
    assert len(demo.read_frames(path, fps=40.0)) == 40  # repeated frames


def test_pan_and_even_sizes() -> None:
    photo = np.arange(500 * 700 * 3, dtype=np.uint32).reshape(500, 700, 3).astype(np.uint8)
    pans = demo.pan_frames(photo, 5, size=(480, 360))
    assert all(f.shape == (360, 480, 3) for f in pans)
    assert not np.array_equal(pans[0], pans[-1])
    assert demo._even(np.zeros((239, 321, 3), np.uint8), None).shape == (238, 320, 3)
    assert demo._even(np.zeros((480, 720, 3), np.uint8), 480).shape == (320, 480, 3)
