"""Per-second series in ad time: per viewer, then per ad over viewers.

Ad time ``t_ad = t_recording - offset_s``; second ``s = floor(t_ad)`` for ``0 <= t_ad < duration_s``,
``s`` in ``[0, ceil(duration_s))``. Per viewer and second: ``face_found`` = 1 when any analysed frame
of that second has the viewer's face; the probabilities are the mean over those frames (NaN when
none). Per ad, second and emotion (:func:`ad_series`): the mean over the viewers with a face that
second with a Student-t 95% band (:func:`emolens.campaign.stats.t_band`), the share of those viewers
whose probability is >= ``threshold`` (``share_expressing``) and their number (``n_viewers``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..labels import VALENCE
from .stats import t_band

SERIES_COLUMNS = ("ad", "second", "emotion", "mean", "ci_low", "ci_high", "share_expressing", "n_viewers")


def frame_looking(frames: pd.DataFrame) -> np.ndarray:
    """Per frame: 1 looking at the camera, 0 turned away or no face, NaN a face without a pose; all
    NaN when no frame has a pose (attention unavailable, see :mod:`emolens.campaign.attention`)."""
    face = frames["face_found"].to_numpy(dtype=bool)
    pose = frames["looking"].to_numpy(dtype=float) if "looking" in frames else np.full(len(frames), np.nan)
    if not np.isfinite(pose).any():
        return np.full(len(frames), np.nan)
    return np.where(face, pose, 0.0)


def viewer_seconds(frames: pd.DataFrame, offset_s: float, duration_s: float, labels: Sequence[str]) -> pd.DataFrame:
    """One row per ad second: ``second, face_found (0/1), covered (0/1: any analysed frame),
    looking (share of the second's frames looking at the camera, NaN without pose), <label>...``
    from a video's frame table (see :mod:`emolens.campaign.recording`)."""
    n = math.ceil(duration_s - 1e-9)
    out = pd.DataFrame({"second": np.arange(n, dtype=int)})
    t_ad = frames["t"].to_numpy(dtype=float) - offset_s
    inside = (t_ad >= 0) & (t_ad < duration_s)
    f = frames.loc[inside].assign(second=np.floor(t_ad[inside]).astype(int))
    f = f.assign(_looking=frame_looking(f))
    covered = f.groupby("second").size()
    faces = f.loc[f["face_found"].astype(bool)]
    probs = faces.groupby("second")[list(labels)].mean()
    out["face_found"] = out["second"].isin(probs.index).astype(int)
    out["covered"] = out["second"].isin(covered.index).astype(int)
    out["looking"] = out["second"].map(f.groupby("second")["_looking"].mean()).astype(float)
    out = out.join(probs, on="second")
    for lb in labels:
        out[lb] = out[lb].astype(float)
    return out


def frames_in_window(frames: pd.DataFrame, offset_s: float, duration_s: float) -> pd.DataFrame:
    """The rows of a frame table inside the ad's window ``[offset_s, offset_s + duration_s)``."""
    t_ad = frames["t"].to_numpy(dtype=float) - offset_s
    return frames.loc[(t_ad >= 0) & (t_ad < duration_s)]


def matrix(seconds: Sequence[pd.DataFrame], column: str, n_seconds: int) -> np.ndarray:
    """(viewers, seconds) array of one column of the viewers' per-second tables (NaN = no face)."""
    out = np.full((len(seconds), n_seconds), np.nan)
    for i, vs in enumerate(seconds):
        v = vs[column].to_numpy(dtype=float)
        out[i, : len(v)] = np.where(vs["face_found"].to_numpy() > 0, v, np.nan)[:n_seconds]
    return out


def valence_matrix(seconds: Sequence[pd.DataFrame], labels: Sequence[str], n_seconds: int) -> np.ndarray:
    """(viewers, seconds) per-second valence ``sum_e p(e)·VALENCE[e]`` (NaN = no face)."""
    out = np.zeros((len(seconds), n_seconds))
    for lb in labels:
        out += VALENCE.get(lb, 0) * np.nan_to_num(matrix(seconds, lb, n_seconds), nan=0.0)
    faces = matrix(seconds, labels[0], n_seconds)
    return np.where(np.isnan(faces), np.nan, out)


def ad_series(ad: str, seconds: Sequence[pd.DataFrame], labels: Sequence[str], n_seconds: int,
              threshold: float = 0.5, confidence: float = 0.95) -> pd.DataFrame:
    """Long table ``ad, second, emotion, mean, ci_low, ci_high, share_expressing, n_viewers``
    (one row per second x emotion, emotions in label order within each second) over the given
    viewers' per-second tables."""
    parts = []
    for lb in labels:
        m = matrix(seconds, lb, n_seconds)
        mean, low, high, n = t_band(m, confidence)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n > 0, (m >= threshold).sum(axis=0) / np.maximum(n, 1), np.nan)
        parts.append(pd.DataFrame({
            "ad": ad, "second": np.arange(n_seconds, dtype=int), "emotion": lb, "mean": mean, "ci_low": low,
            "ci_high": high, "share_expressing": share, "n_viewers": n.astype(int),
        }))
    if not parts:
        return pd.DataFrame(columns=list(SERIES_COLUMNS))
    order = {lb: i for i, lb in enumerate(labels)}
    df = pd.concat(parts, ignore_index=True)
    df = df.sort_values(["second", "emotion"], key=lambda c: c.map(order) if c.name == "emotion" else c,
                        kind="stable")
    return df.reset_index(drop=True)[list(SERIES_COLUMNS)]


def curve(series: pd.DataFrame, emotion: str) -> np.ndarray:
    """The mean curve of one emotion from an ad's long series (index = second)."""
    s = series.loc[series["emotion"] == emotion].sort_values("second")
    return s["mean"].to_numpy(dtype=float)
