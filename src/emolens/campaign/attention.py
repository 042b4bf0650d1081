"""Attention and engagement second by second, from the head pose's ``looking`` flag.

Per analysed frame (:func:`emolens.campaign.series.frame_looking`): 1 when the viewer's face looks
at the camera, 0 when it is turned away *or no face is found* (a viewer who left or turned fully
away is not watching), NaN when the face was found without a pose. When no frame of a recording
has a pose (an engine without head pose, an older cache) every value is NaN: attention is
*unavailable*, never 0.

Per viewer and ad second (``looking`` in viewer_seconds.csv): the mean of the frame values of that
second, a share in [0, 1]; the viewer *looks* in a second when it is >= :data:`LOOKING_SHARE`.

Per viewer (KPIs, all "attention" measures, reported but never a win, :mod:`.verdict`):

* ``attention``: mean ``looking`` over the ad's seconds;
* ``attention_first3s``: the same over seconds 0-2 (the first :data:`FIRST_S` seconds);
* ``engagement``: expressiveness while looking, the mean of ``1 - p(neutral)`` over the seconds in
  which the viewer looks and has a face.

Per ad and second (:func:`ad_timeline`, timeline.csv): ``share_looking`` (share of the viewers with a
pose that second who look), ``retention`` (share of the viewers with a pose who have not yet dropped
off: a viewer drops off at the start of the first run of :data:`DROP_S` consecutive seconds not
looking, and stays off), ``engagement`` (mean ``1 - p(neutral)`` over the viewers looking) and
``n_attention``; with the mean valence per second and its Student-t band (``valence``,
``valence_ci_low``, ``valence_ci_high``, ``n_viewers``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .series import matrix, valence_matrix
from .stats import t_band

ATTENTION_KPIS = ("attention", "attention_first3s", "engagement")
LOOKING_SHARE = 0.5
FIRST_S = 3
DROP_S = 2
TIMELINE_COLUMNS = ("ad", "second", "valence", "valence_ci_low", "valence_ci_high", "n_viewers", "share_looking",
                    "retention", "engagement", "n_attention")


def viewer_attention(seconds: pd.DataFrame, labels: Sequence[str]) -> dict[str, float]:
    """The attention KPIs of one viewer from their per-second table (NaN when unavailable)."""
    out = dict.fromkeys(ATTENTION_KPIS, math.nan)
    if "looking" not in seconds or not seconds["looking"].notna().any():
        return out
    look = seconds["looking"].to_numpy(dtype=float)
    out["attention"] = float(np.nanmean(look))
    first = look[:FIRST_S]
    out["attention_first3s"] = float(np.nanmean(first)) if np.isfinite(first).any() else math.nan
    if "neutral" in labels:
        watching = (look >= LOOKING_SHARE) & (seconds["face_found"].to_numpy() > 0)
        if watching.any():
            out["engagement"] = float(np.mean(1.0 - seconds["neutral"].to_numpy(dtype=float)[watching]))
    return out


def retained(look: np.ndarray) -> np.ndarray:
    """Per second, whether a viewer (``looking`` shares, NaN = no frame) has not yet dropped off
    (see the module docstring); all False when the viewer has no pose at all."""
    out = np.ones(len(look), dtype=bool)
    if not np.isfinite(look).any():
        return ~out
    run, start = 0, 0
    for s, v in enumerate(look):
        if not math.isfinite(v):  # no frame that second: the run neither breaks nor grows
            continue
        if v >= LOOKING_SHARE:
            run = 0
            continue
        start = s if run == 0 else start
        run += 1
        if run >= DROP_S:
            out[start:] = False
            break
    return out


def _looking_matrix(seconds: Sequence[pd.DataFrame], n_seconds: int) -> np.ndarray:
    out = np.full((len(seconds), n_seconds), np.nan)
    for i, vs in enumerate(seconds):
        if "looking" in vs:
            v = vs["looking"].to_numpy(dtype=float)[:n_seconds]
            out[i, : len(v)] = v
    return out


def ad_timeline(ad: str, seconds: Sequence[pd.DataFrame], labels: Sequence[str], n_seconds: int,
                confidence: float = 0.95) -> pd.DataFrame:
    """timeline.csv rows of one ad (see the module docstring) over the kept viewers' second tables."""
    val = valence_matrix(seconds, labels, n_seconds) if seconds and labels else np.full((0, n_seconds), np.nan)
    mean, low, high, n = t_band((val + 1.0) / 2.0, confidence)  # the band on [0, 1], mapped back to [-1, 1]
    look = _looking_matrix(seconds, n_seconds)
    has_pose = np.isfinite(look).any(axis=1)
    look, pose_seconds = look[has_pose], seconds_with_pose(look[has_pose])
    n_att = pose_seconds.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n_att > 0, (look >= LOOKING_SHARE).sum(axis=0) / np.maximum(n_att, 1), np.nan)
        kept = np.array([retained(row) for row in look]).reshape(len(look), n_seconds)
        retention = kept.mean(axis=0) if len(look) else np.full(n_seconds, np.nan)
    engagement = np.full(n_seconds, np.nan)
    if "neutral" in labels and len(look):
        expr = 1.0 - matrix([s for s, p in zip(seconds, has_pose, strict=True) if p], "neutral", n_seconds)
        watching = np.where((look >= LOOKING_SHARE) & np.isfinite(expr), expr, np.nan)
        ok = np.isfinite(watching).any(axis=0)
        engagement[ok] = np.nanmean(watching[:, ok], axis=0)
    return pd.DataFrame({
        "ad": ad, "second": np.arange(n_seconds, dtype=int), "valence": 2 * mean - 1, "valence_ci_low": 2 * low - 1,
        "valence_ci_high": 2 * high - 1, "n_viewers": n.astype(int), "share_looking": share,
        "retention": retention, "engagement": engagement, "n_attention": n_att.astype(int),
    })[list(TIMELINE_COLUMNS)]


def seconds_with_pose(look: np.ndarray) -> np.ndarray:
    """(viewers, seconds) True where the viewer's ``looking`` share is defined."""
    return np.isfinite(look)
