"""A fake recording analyser for the campaign tests: known per-frame rows, calls counted.

:class:`FakeAnalyser` returns, for each recording file name, the frame rows given to it (filtered
to the ad window like the real engine), so a test knows every probability that enters a KPI and
can recompute it by hand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from emolens.campaign.recording import frame_table
from emolens.errors import UnsupportedMedia
from emolens.labels import FER7


def probs(dominant: str, p: float, labels: Sequence[str] = FER7) -> dict[str, float]:
    """A probability dict: ``p`` on ``dominant``, the rest shared equally by the other labels."""
    rest = (1.0 - p) / (len(labels) - 1)
    return {lb: (p if lb == dominant else rest) for lb in labels}


def frame(t: float, p: Mapping[str, float] | None, brightness: float = 100.0, sharpness: float = 200.0,
          source: str = "", looking: bool | None = None) -> dict[str, Any]:
    """One frame-table row: a face with probabilities ``p``, or no face when ``p`` is None;
    ``looking``: the head pose's verdict (None: no pose, as an engine without head pose)."""
    if p is None:
        return {"t": t, "face_found": False, "brightness": brightness, "source": source}
    return {"t": t, "face_found": True, "x": 10, "y": 10, "w": 40, "h": 40, "brightness": brightness,
            "sharpness": sharpness, "source": source, "looking": None if looking is None else float(looking), **p}


class FakeAnalyser:
    """``rows[name]``: frame rows of the recording whose file (or folder) is called ``name``;
    ``broken``: names that raise UnsupportedMedia. ``calls`` counts analyses per name."""

    model_name = "fake"

    def __init__(self, rows: Mapping[str, list[dict[str, Any]]], broken: Sequence[str] = (),
                 labels: tuple[str, ...] = FER7, identity: str = "fake-1") -> None:
        self.rows, self.broken, self.labels, self.identity = dict(rows), set(broken), labels, identity
        self.calls: Counter[str] = Counter()
        self.windows: dict[str, tuple[float, float]] = {}

    def analyse_video(self, path: Path, start_s: float, end_s: float) -> pd.DataFrame:
        self.calls[path.name] += 1
        self.windows[path.name] = (start_s, end_s)
        if path.name in self.broken:
            raise UnsupportedMedia(f"{path}: not a video OpenCV/FFmpeg can read")
        return frame_table([r for r in self.rows[path.name] if start_s <= r["t"] < end_s], self.labels)

    def analyse_photos(self, paths: Sequence[Path]) -> pd.DataFrame:
        name = paths[0].parent.name
        self.calls[name] += 1
        return frame_table(self.rows[name], self.labels)
