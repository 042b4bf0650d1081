from pathlib import Path

import cv2
import numpy as np
import pytest

from emolens.errors import InvalidInput, MediaTooLarge, UnsupportedMedia
from emolens.video.reader import FrameReader, probe_video, webcam_index

from .synth import set_mp4_rotation, write_video


class FakeCapture:
    """Plays ``script``: a frame index (decodable) or None (a broken frame); stamps 40 ms apart."""

    def __init__(self, script: list[int | None], stamps_ms: list[float] | None = None) -> None:
        self.script, self.pos = script, 0
        self.stamps = stamps_ms or [40.0 * i for i in range(len(script))]
        self.released = False

    def isOpened(self) -> bool:
        return True

    def grab(self) -> bool:
        if self.pos >= len(self.script):
            return False
        self.pos += 1
        return self.script[self.pos - 1] is not None

    def retrieve(self):
        value = self.script[self.pos - 1]
        return True, np.full((8, 10, 3), value, np.uint8)

    def get(self, prop: int) -> float:
        return {
            cv2.CAP_PROP_FPS: 25.0,
            cv2.CAP_PROP_FRAME_COUNT: float(len(self.script)),
            cv2.CAP_PROP_POS_MSEC: self.stamps[self.pos - 1] if self.pos else 0.0,
            cv2.CAP_PROP_POS_FRAMES: float(self.pos),
            cv2.CAP_PROP_ORIENTATION_AUTO: 1.0,
        }.get(prop, 0.0)

    def set(self, prop: int, value: float) -> bool:
        return True

    def release(self) -> None:
        self.released = True


def fake(script, stamps=None):
    cap = FakeCapture(script, stamps)
    return lambda source: (cap, "fake.mp4", False)


def test_synthetic_file_frames_and_timestamps(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.avi", 12, fps=25.0)
    with FrameReader(path) as reader:
        frames = list(reader)
    assert reader.info.frame_count == 12 and reader.info.fps == pytest.approx(25.0)
    assert (reader.info.width, reader.info.height) == (160, 120)
    assert [f.index for f in frames] == list(range(12))
    assert [f.time_s for f in frames] == pytest.approx([i * 0.04 for i in range(12)])
    assert frames[0].rgb.shape == (120, 160, 3) and frames[0].rgb.dtype == np.uint8
    assert reader.broken == 0 and reader.truncated == 0


def test_prefetch_thread_gives_the_same_frames(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.avi", 10)
    with FrameReader(path) as a, FrameReader(path, prefetch=3) as b:
        inline, threaded = list(a), list(b)
    assert [f.time_s for f in inline] == [f.time_s for f in threaded]
    assert all(np.array_equal(x.rgb, y.rgb) for x, y in zip(inline, threaded, strict=True))


def test_prefetch_stops_when_the_consumer_stops(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.avi", 30)
    reader = FrameReader(path, prefetch=2)
    it = iter(reader)
    next(it)
    reader.close()
    assert reader._thread is None


def test_loop_continues_time(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.avi", 5, fps=25.0)
    with FrameReader(path, loop=3) as reader:
        times = [f.time_s for f in reader]
    assert len(times) == 15
    assert np.all(np.diff(times) > 0)
    assert times[5] == pytest.approx(0.2)  # 4 * 0.04 + one interval


def test_rotation_metadata_is_honoured(tmp_path: Path) -> None:
    path = write_video(tmp_path / "r.mp4", [[(10, 10, 30, "left")]] * 4, size=(96, 160), codec="mp4v")
    with FrameReader(path) as reader:
        upright = next(iter(reader)).rgb
    set_mp4_rotation(path, 90)
    with FrameReader(path) as reader:
        turned = next(iter(reader)).rgb
        assert reader.info.rotation == 90
        assert (reader.info.width, reader.info.height) == (96, 160)
    assert upright.shape == (96, 160, 3) and turned.shape == (160, 96, 3)
    ys, xs = np.nonzero(turned.max(axis=2) > 200)  # the lit half moved where a 90° clockwise turn puts it
    assert xs.min() >= 96 - 40 and xs.max() <= 96 - 10 and ys.max() < 30


def test_broken_frames_are_skipped_and_counted() -> None:
    reader = FrameReader("x", capture=fake([0, 1, None, None, 4, 5, None, 7]))
    frames = list(reader)
    assert [int(f.rgb[0, 0, 0]) for f in frames] == [0, 1, 4, 5, 7]
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.time_s for f in frames] == pytest.approx([0.0, 0.04, 0.16, 0.2, 0.28])
    assert reader.broken == 3


def test_bad_timestamps_are_forced_upwards() -> None:
    reader = FrameReader("x", capture=fake([0, 1, 2, 3], stamps=[0.0, 40.0, 40.0, -1.0]))
    times = [f.time_s for f in reader]
    assert times == pytest.approx([0.0, 0.04, 0.08, 0.12])


def test_stream_ending_early_reports_missing_frames() -> None:
    reader = FrameReader("x", capture=fake([0, 1, 2] + [None] * 40))
    assert len(list(reader)) == 3
    assert reader.truncated == 40 and reader.broken == 0


def test_truncated_avi_yields_what_it_has(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.avi", 40)
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with FrameReader(cut) as reader:
        n = len(list(reader))
    assert 0 < n < 40
    assert reader.truncated == 40 - n


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p / "missing.mp4", "no such video file"),
        (lambda p: p, "not a file"),
        (lambda p: _file(p / "empty.mp4", b""), "empty"),
        (lambda p: _file(p / "text.mp4", b"just text\n" * 50), "not a video"),
    ],
    ids=["missing", "folder", "zero-length", "text-named-mp4"],
)
def test_unreadable_sources_raise_before_any_frame(tmp_path: Path, make, match: str) -> None:
    with pytest.raises(UnsupportedMedia, match=match):
        FrameReader(make(tmp_path))


def test_truncated_mp4_without_index_is_refused_by_name(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", 30, codec="mp4v")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(UnsupportedMedia, match=r"cut\.mp4"):
        probe_video(cut)


def test_frames_over_the_pixel_limit(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.avi", 3)
    with pytest.raises(MediaTooLarge, match="160x120"):
        FrameReader(path, max_pixels=1000)


def test_probe_and_sources() -> None:
    assert webcam_index(0) == 0 and webcam_index(" 2 ") == 2 and webcam_index("a.mp4") is None
    with pytest.raises(InvalidInput):
        webcam_index(True)
    with pytest.raises(InvalidInput):
        FrameReader(3.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        FrameReader("x", loop=0, capture=fake([0]))


def test_real_clip_timestamps(shared_data: Path) -> None:
    clip = shared_data / "media" / "videos" / "fer_test.mp4"
    with FrameReader(clip, prefetch=2) as reader:
        times = [f.time_s for f in reader]
    assert len(times) == reader.info.frame_count == 115
    assert times[0] == 0.0 and np.all(np.diff(times) > 0)
    assert times[-1] == pytest.approx(4.56, abs=0.05)  # stream stamps, not frame count / nominal fps


def test_live_source_drops_old_frames_instead_of_lagging() -> None:
    import time

    cap = FakeCapture(list(range(60)))
    reader = FrameReader(0, prefetch=1, capture=lambda source: (cap, "webcam 0", True))
    assert reader.info.live and reader.info.frame_count is None
    got = []
    for frame in reader:
        got.append(frame)
        time.sleep(0.01)  # a slow consumer
    assert reader.dropped > 0
    assert len(got) + reader.dropped == 60
    assert np.all(np.diff([f.time_s for f in got]) > 0)
    assert [int(f.rgb[0, 0, 0]) for f in got] == sorted(int(f.rgb[0, 0, 0]) for f in got)
