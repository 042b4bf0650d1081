"""Generated videos for the video tests: moving bright squares as "faces", rotation metadata, bad files.

:class:`SquareDetector` finds the bright squares :func:`write_video` draws, so the whole stream
(detection, tracking, classification, outputs) runs on tiny generated data in milliseconds. With the
test model of :mod:`tests.inference.modelfactory`, a square bright on its left half is class 0
(``anger``) and one bright on its right half class 1 (``disgust``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from emolens.inference.detect import Detection

Square = tuple[int, int, int, str]
"""(x, y, side, lit): a square whose ``lit`` half (``left``, ``right`` or ``all``) is white."""


def draw_squares(h: int, w: int, squares: Sequence[Square]) -> np.ndarray:
    """An RGB frame, dark grey, with each square drawn (grey body, one bright half)."""
    img = np.full((h, w, 3), 30, np.uint8)
    for x, y, s, lit in squares:
        img[y : y + s, x : x + s] = 90
        if lit == "left":
            img[y : y + s, x : x + s // 2] = 250
        elif lit == "right":
            img[y : y + s, x + s // 2 : x + s] = 250
        else:
            img[y : y + s, x : x + s] = 250
    return img


def write_video(
    path: Path,
    scenes: Sequence[Sequence[Square]] | int,
    *,
    size: tuple[int, int] = (120, 160),
    fps: float = 25.0,
    codec: str = "MJPG",
    frame_fn: Callable[[int], np.ndarray] | None = None,
) -> Path:
    """Write an RGB video to ``path``: one frame per item of ``scenes`` (its squares), or ``scenes``
    frames of plain noise-free grey when it is an int (a video with no faces). ``size`` = (h, w)."""
    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*codec), fps, (w, h))
    assert writer.isOpened(), f"cannot write {path} with {codec}"
    frames = range(scenes) if isinstance(scenes, int) else range(len(scenes))
    for i in frames:
        if frame_fn is not None:
            rgb = frame_fn(i)
        elif isinstance(scenes, int):
            rgb = np.full((h, w, 3), 40 + (i % 5), np.uint8)
        else:
            rgb = draw_squares(h, w, scenes[i])
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


class SquareDetector:
    """Finds the squares of :func:`draw_squares` (pixels brighter than 60), score ``score``."""

    name = "squares"

    def __init__(self, score: float = 0.9, min_side: int = 6) -> None:
        self.score, self.min_side = score, min_side
        self.calls: list[tuple[int, int]] = []  # (h, w) of every image it was given

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        self.calls.append(rgb.shape[:2])
        mask = (rgb.max(axis=2) > 60).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        out = []
        for x, y, w, h, _area in stats[1:n]:
            if min(w, h) >= self.min_side:
                out.append(Detection((int(x), int(y), int(w), int(h)), self.score))
        return out


def set_mp4_rotation(path: Path, degrees: int) -> None:
    """Write a display rotation into every track header (``tkhd`` matrix) of an MP4, in place."""
    one, minus = 0x00010000, 0xFFFF0000
    matrices = {
        90: (0, one, 0, minus, 0, 0, 0, 0, 0x40000000),
        180: (minus, 0, 0, 0, minus, 0, 0, 0, 0x40000000),
        270: (0, minus, 0, one, 0, 0, 0, 0, 0x40000000),
    }
    data = bytearray(path.read_bytes())
    start, found = 0, 0
    while (i := data.find(b"tkhd", start)) >= 0:
        version = data[i + 4]
        # version/flags 4, times 8|16, track id 4, reserved 4, duration 4|8, reserved 8, layer+group+volume+res 8
        offset = i + 4 + 4 + (16 if version == 1 else 8) + 4 + 4 + (8 if version == 1 else 4) + 8 + 8
        data[offset : offset + 36] = struct.pack(">9I", *matrices[degrees])
        start, found = i + 4, found + 1
    assert found, f"no tkhd box in {path}"
    path.write_bytes(bytes(data))
