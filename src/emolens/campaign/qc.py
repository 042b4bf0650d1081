"""Recording quality control: image measures per frame and the keep/exclude decision per recording.

A video recording is excluded (and listed with every reason) when it could not be analysed, when
its face-found rate over the ad's seconds is below ``min_face_rate``, when the median brightness
of its analysed frames in the ad window is below ``min_brightness`` (mean gray, 0-255) or when the
median sharpness of the viewer's face is below ``min_sharpness`` (variance of the Laplacian of the
gray face crop resized to 64x64). Photo sets are excluded only when no photo could be read: their
no-face rate is an outcome that the report shows, not a reason to drop them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pandas as pd

SHARPNESS_SIZE = 64
"""Side in pixels the face crop is resized to before measuring sharpness."""


def frame_brightness(rgb: np.ndarray) -> float:
    """Mean gray level of an RGB (or gray) uint8 image, 0-255."""
    gray = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float(gray.mean())


def face_sharpness(rgb: np.ndarray, box: tuple[int, int, int, int] | tuple[float, ...]) -> float:
    """Variance of the Laplacian of the gray face crop (``box`` = x, y, w, h) resized to 64x64.

    Blurred faces give small values (a few units), sharp ones hundreds. The box is clipped to the
    image; an empty crop gives 0."""
    h, w = rgb.shape[:2]
    x, y, bw, bh = (round(v) for v in box[:4])
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    crop = rgb[y0:y1, x0:x1]
    gray = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (SHARPNESS_SIZE, SHARPNESS_SIZE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(small.astype(np.float64), cv2.CV_64F).var())


@dataclass(frozen=True)
class QCRow:
    """The QC verdict of one recording (one row of ``qc.csv``; ``to_dict`` is its summary.json form).

    ``seconds``: ad seconds the recording covers with at least one analysed frame (photos: photos
    read). ``sharpness`` is None when no face was found."""

    viewer: str
    ad: str
    recording: str
    kind: str
    status: str
    reason: str | None
    face_found_rate: float | None
    brightness: float | None
    sharpness: float | None
    seconds: int

    @property
    def kept(self) -> bool:
        return self.status == "kept"

    def to_dict(self) -> dict[str, Any]:
        return {"viewer": self.viewer, "ad": self.ad, "recording": self.recording, "kind": self.kind,
                "status": self.status, "reason": self.reason, "face_found_rate": _num(self.face_found_rate),
                "brightness": _num(self.brightness), "sharpness": _num(self.sharpness), "seconds": self.seconds}


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _median(values: pd.Series) -> float | None:
    v = values.dropna()
    return float(v.median()) if len(v) else None


def video_reasons(face_rate: float, brightness: float | None, sharpness: float | None,
                  min_face_rate: float, min_brightness: float, min_sharpness: float) -> list[str]:
    """Every reason to exclude a video recording (empty: keep it)."""
    reasons = []
    if face_rate < min_face_rate:
        reasons.append(f"face found in {face_rate:.0%} of the ad's seconds (< {min_face_rate:.0%})")
    if brightness is not None and brightness < min_brightness:
        reasons.append(f"too dark: median brightness {brightness:.1f} (< {min_brightness:g})")
    if sharpness is not None and sharpness < min_sharpness:
        reasons.append(f"too blurred: median face sharpness {sharpness:.1f} (< {min_sharpness:g})")
    return reasons


def assess_video(frames: pd.DataFrame, seconds: pd.DataFrame, *, min_face_rate: float, min_brightness: float,
                 min_sharpness: float) -> tuple[str | None, float, float | None, float | None, int]:
    """(reason or None, face_found_rate, brightness, sharpness, seconds covered) for one video.

    ``frames`` are the analysed frames inside the ad window, ``seconds`` the viewer's per-second
    table (:func:`emolens.campaign.series.viewer_seconds`)."""
    face_rate = float(seconds["face_found"].mean()) if len(seconds) else 0.0
    brightness = _median(frames["brightness"]) if len(frames) else None
    sharpness = _median(frames.loc[frames["face_found"], "sharpness"]) if len(frames) else None
    covered = int(seconds["covered"].sum()) if "covered" in seconds else len(seconds)
    if not len(frames):
        return "no analysed frame inside the ad's time window", face_rate, brightness, sharpness, covered
    reasons = video_reasons(face_rate, brightness, sharpness, min_face_rate, min_brightness, min_sharpness)
    return ("; ".join(reasons) or None), face_rate, brightness, sharpness, covered


def assess_photos(frames: pd.DataFrame) -> tuple[str | None, float, float | None, float | None, int]:
    """(reason or None, face rate, brightness, sharpness, photos read) for a photo set."""
    if not len(frames):
        return "no photo could be read", 0.0, None, None, 0
    face = frames["face_found"].astype(bool)
    return (None, float(face.mean()), _median(frames["brightness"]), _median(frames.loc[face, "sharpness"]),
            len(frames))
