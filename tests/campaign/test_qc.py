"""QC measures and the keep/exclude decisions."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from emolens.campaign.qc import assess_photos, assess_video, face_sharpness, frame_brightness, video_reasons
from emolens.campaign.recording import frame_table
from emolens.labels import FER7

from .fakes import frame, probs


def test_brightness_is_the_mean_gray_level() -> None:
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[:, :5] = 200
    assert frame_brightness(rgb) == pytest.approx(100.0, abs=0.5)
    assert frame_brightness(np.full((4, 4), 37, np.uint8)) == 37.0


def test_sharpness_drops_when_the_face_is_blurred(rng: np.random.Generator) -> None:
    rgb = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    box = (20, 20, 80, 80)
    sharp = face_sharpness(rgb, box)
    blurred = face_sharpness(cv2.GaussianBlur(rgb, (0, 0), 6), box)
    assert sharp > 100 * blurred and blurred < 15
    crop = cv2.cvtColor(rgb[20:100, 20:100], cv2.COLOR_RGB2GRAY)
    small = cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float64)
    assert sharp == pytest.approx(cv2.Laplacian(small, cv2.CV_64F).var())
    assert face_sharpness(rgb, (500, 500, 10, 10)) == 0.0  # outside the image


def test_every_failing_reason_is_listed() -> None:
    assert video_reasons(0.9, 100, 50, 0.5, 40, 15) == []
    reasons = video_reasons(0.25, 30.0, 5.0, 0.5, 40, 15)
    assert reasons == ["face found in 25% of the ad's seconds (< 50%)", "too dark: median brightness 30.0 (< 40)",
                       "too blurred: median face sharpness 5.0 (< 15)"]


def _seconds(faces: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"second": range(len(faces)), "face_found": faces, "covered": [1] * len(faces)})


def test_assess_video_uses_medians_over_the_window() -> None:
    rows = [frame(0.0, probs("happiness", .8), brightness=30, sharpness=10),
            frame(0.5, probs("happiness", .8), brightness=50, sharpness=30),
            frame(1.0, None, brightness=60), frame(1.5, probs("anger", .6), brightness=45, sharpness=40)]
    frames = frame_table(rows, FER7)
    reason, rate, bright, sharp, covered = assess_video(frames, _seconds([1, 1]), min_face_rate=.5,
                                                        min_brightness=40, min_sharpness=15)
    assert (reason, rate, bright, sharp, covered) == (None, 1.0, 47.5, 30.0, 2)
    reason, *_ = assess_video(frames, _seconds([1, 0, 0]), min_face_rate=.5, min_brightness=48, min_sharpness=15)
    assert reason == "face found in 33% of the ad's seconds (< 50%); too dark: median brightness 47.5 (< 48)"
    empty = frame_table([], FER7)
    assert assess_video(empty, _seconds([0, 0]), min_face_rate=.5, min_brightness=40,
                        min_sharpness=15)[0] == "no analysed frame inside the ad's time window"


def test_photo_sets_are_kept_unless_nothing_was_read() -> None:
    rows = [frame(0, probs("happiness", .9), source="a.jpg"), frame(1, None, source="b.jpg")]
    assert assess_photos(frame_table(rows, FER7)) == (None, 0.5, 100.0, 200.0, 2)
    assert assess_photos(frame_table([], FER7))[0] == "no photo could be read"
