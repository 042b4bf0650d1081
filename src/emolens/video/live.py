"""Watching a stream as it runs: a live window where a display exists, one-line summaries otherwise.

:func:`display_available` says whether OpenCV can open a window here: the wheel emolens depends on
(``opencv-python-headless``) has no GUI at all, and on Linux a window also needs ``DISPLAY`` or
``WAYLAND_DISPLAY``. :class:`LiveWindow` shows annotated frames (``q`` or Esc closes it and stops
the stream). :class:`PeriodicReporter` turns the stream into a line every few seconds: time,
speed, and per face on screen its most frequent emotion since the last line.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable

import cv2
import numpy as np

from ..results import FrameResult
from .stream import VideoProgress
from .writer import draw_frame


def display_available() -> bool:
    """Whether ``cv2.imshow`` can open a window in this process."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    name = "emolens-probe"
    try:
        cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE)
        cv2.destroyWindow(name)
    except cv2.error:  # headless OpenCV: "The function is not implemented"
        return False
    return True


class LiveWindow:
    """An OpenCV window showing annotated frames; :meth:`show` returns False once the user quits."""

    QUIT_KEYS = frozenset({ord("q"), 27})

    def __init__(self, title: str = "emolens", *, blur: bool = False) -> None:
        self.title, self.blur = title, blur
        cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)

    def show(self, rgb: np.ndarray, frame: FrameResult) -> bool:
        img = draw_frame(rgb, frame, blur=self.blur)
        cv2.imshow(self.title, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        if key in self.QUIT_KEYS:
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            return False

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass


class PeriodicReporter:
    """Calls ``emit(line)`` at most every ``interval_s`` wall seconds (0: never) with a summary of
    the frames since the previous line, e.g.
    ``[  12.3 s video] 370 frames, 31.2 fps, broken 0 | #1 happiness 80%, #3 neutral 55%``."""

    def __init__(self, emit: Callable[[str], None], interval_s: float = 5.0, clock: Callable[[], float] | None = None):
        self.emit, self.interval_s = emit, interval_s
        self._clock = clock or time.monotonic
        self._last = self._clock()
        self._emotions: dict[int, Counter[str]] = {}
        self.lines = 0

    def add(self, frame: FrameResult, progress: VideoProgress) -> None:
        """Count one frame; emit a line when the interval has passed."""
        if self.interval_s <= 0:
            return
        for face in frame.faces:
            if face.track_id is not None:
                self._emotions.setdefault(face.track_id, Counter())[face.emotion] += 1
        now = self._clock()
        if now - self._last >= self.interval_s:
            self.emit(self.line(progress))
            self._last = now
            self._emotions = {}

    def line(self, progress: VideoProgress) -> str:
        """The summary line for the frames counted so far."""
        head = (f"[{progress.time_s:7.1f} s video] {progress.frames_done} frames, {progress.fps:.1f} fps, "
                f"broken {progress.broken_frames}")
        parts = []
        for tid in sorted(self._emotions):
            counts = self._emotions[tid]
            label, n = counts.most_common(1)[0]
            parts.append(f"#{tid} {label} {n / sum(counts.values()):.0%}")
        return head + " | " + (", ".join(parts) if parts else "no faces")
