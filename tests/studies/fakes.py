"""A recording analyser for the study tests that really decodes the video (real frame times) and
gives every sampled frame one face with known probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from emolens.campaign.recording import frame_table
from emolens.errors import UnsupportedMedia
from emolens.labels import FER7
from emolens.video.reader import FrameReader
from tests.campaign.fakes import frame, probs

WEBM = Path(__file__).parent / "data" / "mediarecorder_vp8.webm"


class DecodingFake:
    """``analyse_video`` walks the real frames in the window (at most ``sample_fps`` per second)
    and returns a face with ``emotion`` at 0.7 for each; ``windows`` records what was asked."""

    model_name = "decoding-fake"
    identity = "decoding-fake-1"
    labels = FER7

    def __init__(self, emotion: str = "happiness", sample_fps: float = 5.0) -> None:
        self.emotion, self.sample_fps = emotion, sample_fps
        self.windows: list[tuple[str, float, float]] = []

    def analyse_video(self, path: Path, start_s: float, end_s: float) -> pd.DataFrame:
        self.windows.append((path.name, start_s, end_s))
        rows, slot = [], -1
        with FrameReader(path) as reader:
            for f in reader:
                if f.time_s >= end_s:
                    break
                k = int((f.time_s - start_s) * self.sample_fps) if f.time_s >= start_s else -1
                if k > slot:
                    slot = k
                    rows.append(frame(f.time_s, probs(self.emotion, 0.7)))
        if not rows and start_s > 0:
            raise UnsupportedMedia(f"{path}: no frame in the window")
        return frame_table(rows, self.labels)

    def analyse_photos(self, paths: Sequence[Path]) -> pd.DataFrame:
        raise UnsupportedMedia("no photos here")
