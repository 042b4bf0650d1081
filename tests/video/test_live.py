import pytest

from emolens.results import FrameResult
from emolens.video import live
from emolens.video.stream import VideoProgress

from .sequences import face


def progress(frames: int, t: float) -> VideoProgress:
    return VideoProgress(frames, None, t, 1.0, 30.0, None, 0)


def test_periodic_reporter_summarises_each_interval() -> None:
    now = [0.0]
    lines: list[str] = []
    rep = live.PeriodicReporter(lines.append, interval_s=5.0, clock=lambda: now[0])
    for i in range(10):
        now[0] = i * 1.0
        faces = (face(1, 0.9), face(2, 0.2 if i % 3 else 0.9))
        rep.add(FrameResult(i, i / 30, 10, 10, faces), progress(i + 1, i / 30))
    assert len(lines) == 1  # at t = 5 s
    assert lines[0].startswith("[    0.2 s video] 6 frames, 30.0 fps, broken 0 | ")
    assert "#1 a 100%" in lines[0] and "#2 b 67%" in lines[0]


def test_reporter_without_faces_and_switched_off() -> None:
    lines: list[str] = []
    rep = live.PeriodicReporter(lines.append, interval_s=0.0)
    rep.add(FrameResult(0, 0.0, 10, 10, ()), progress(1, 0.0))
    assert lines == []
    assert rep.line(progress(1, 0.0)).endswith("| no faces")


def test_no_display_without_display_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert live.display_available() is False


def test_headless_opencv_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":99")

    def no_gui(*args, **kw):
        raise live.cv2.error("The function is not implemented")

    monkeypatch.setattr(live.cv2, "namedWindow", no_gui)
    assert live.display_available() is False
