"""KPIs of an ad: per viewer, then averaged over the kept viewers with bootstrap CIs; key moments.

Per viewer (over the ad's seconds; "face seconds" = seconds with the viewer's face):

* ``face_found_rate``: face seconds / ad seconds;
* ``positive_share`` / ``negative_share`` / ``neutral_share``: fraction of face seconds whose dominant
  emotion (highest mean probability that second) has valence +1 / -1 / 0 (:data:`emolens.labels.VALENCE`;
  surprise counts as 0);
* ``expressiveness``: mean of ``1 - p(neutral)`` over face seconds;
* ``valence_index``: mean over face seconds of ``sum_e p(e)·VALENCE[e]`` (in [-1, 1]);
* ``attention``, ``attention_first3s``, ``engagement``: from the head pose (:mod:`.attention`), NaN
  when the engine gave no pose.

Per ad: each KPI is the mean over kept viewers (NaN ignored) with a 95% percentile-bootstrap CI
over viewers (one resample matrix per ad, :func:`emolens.campaign.stats.bootstrap_indices`, shared
by all KPIs of the ad). ``peak_happiness`` is the maximum over seconds of the ad's mean happiness
curve and its second; its CI comes from the same resamples (the curve recomputed on each).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..labels import VALENCE
from .attention import ATTENTION_KPIS, viewer_attention
from .series import matrix, valence_matrix
from .stats import bootstrap_indices, bootstrap_means, nanmean, percentile_ci, resample_weights

VIEWER_KPIS = ("face_found_rate", "positive_share", "negative_share", "neutral_share", "expressiveness",
               "valence_index", *ATTENTION_KPIS)
AD_KPIS = (*VIEWER_KPIS, "peak_happiness")
LOWER_IS_BETTER = frozenset({"negative_share"})

DEFINITIONS: dict[str, str] = {
    "face_found_rate": "share of the ad's seconds in which the viewer's face was found",
    "positive_share": "share of face seconds whose dominant emotion is positive (happiness)",
    "negative_share": "share of face seconds whose dominant emotion is negative (anger, disgust, fear, sadness, "
                      "contempt)",
    "neutral_share": "share of face seconds whose dominant emotion is neither (neutral, surprise)",
    "expressiveness": "mean of 1 - p(neutral) over face seconds",
    "valence_index": "mean over face seconds of sum of p(emotion) x valence (+1 happiness, -1 negative, 0 other); "
                     "from -1 to 1",
    "peak_happiness": "highest value of the ad's mean happiness curve (over viewers with a face) and its second",
    "attention": "mean over the ad's seconds of the share of frames in which the viewer looks at the screen "
                 "(head pose; no face counts as not looking); empty when the model gives no head pose",
    "attention_first3s": "attention over the ad's first 3 seconds",
    "engagement": "expressiveness while looking: mean of 1 - p(neutral) over the seconds in which the viewer looks "
                  "at the screen",
    "share_expressing": "share of viewers with a face that second whose probability of the emotion is >= the "
                        "expressing threshold",
}


def viewer_kpis(seconds: pd.DataFrame, labels: Sequence[str]) -> dict[str, float]:
    """The per-viewer KPIs from one viewer's per-second table (NaN where undefined: no face second)."""
    n_total = len(seconds)
    face = seconds.loc[seconds["face_found"] > 0, list(labels)].to_numpy(dtype=float)
    out = {k: math.nan for k in VIEWER_KPIS}
    out.update(viewer_attention(seconds, labels))
    out["face_found_rate"] = len(face) / n_total if n_total else math.nan
    if not len(face):
        return out
    val = np.array([VALENCE.get(lb, 0) for lb in labels], dtype=float)
    dominant = val[np.argmax(face, axis=1)]
    out["positive_share"] = float(np.mean(dominant > 0))
    out["negative_share"] = float(np.mean(dominant < 0))
    out["neutral_share"] = float(np.mean(dominant == 0))
    if "neutral" in labels:
        out["expressiveness"] = float(np.mean(1.0 - face[:, list(labels).index("neutral")]))
    out["valence_index"] = float(np.mean(face @ val))
    return out


@dataclass(frozen=True)
class KpiValue:
    """A KPI of an ad: value and CI (NaN when undefined); ``second`` for peak_happiness."""

    value: float
    ci_low: float
    ci_high: float
    second: int | None = None
    is_peak: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: _num(getattr(self, k)) for k in ("value", "ci_low", "ci_high")}
        if self.is_peak:
            d["second"] = self.second
        return d


def _num(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def peak(curve: np.ndarray) -> tuple[float, int | None]:
    """(max, first second of the max) of a curve, ignoring NaN; (nan, None) when all NaN."""
    c = np.asarray(curve, dtype=float)
    if not np.isfinite(c).any():
        return math.nan, None
    i = int(np.nanargmax(c))
    return float(c[i]), i


def ad_kpis(per_viewer: pd.DataFrame, happiness: np.ndarray, resamples: int, seed: int,
            confidence: float = 0.95, min_viewers_ci: int = 1) -> dict[str, KpiValue]:
    """The KPIs of one ad. ``per_viewer``: one row per kept viewer, one column per viewer KPI;
    ``happiness``: the (viewers, seconds) happiness matrix of the same viewers (NaN = no face).
    With fewer than ``min_viewers_ci`` viewers the values come without a CI (NaN): a bootstrap over
    2-4 viewers is little more than their min-max and would pretend a precision it does not have."""
    n = len(per_viewer)
    nan = KpiValue(math.nan, math.nan, math.nan)
    if n == 0:
        return {**{k: nan for k in VIEWER_KPIS}, "peak_happiness": KpiValue(math.nan, math.nan, math.nan, None, True)}
    idx = bootstrap_indices(n, resamples, seed)
    out = {}
    for k in VIEWER_KPIS:
        v = per_viewer[k].to_numpy(dtype=float) if k in per_viewer else np.full(n, np.nan)
        lo, hi = percentile_ci(bootstrap_means(v, idx), confidence)
        out[k] = KpiValue(nanmean(v), lo, hi)
    out["peak_happiness"] = peak_happiness(happiness, idx, confidence)
    if n < min_viewers_ci:
        out = {k: KpiValue(v.value, math.nan, math.nan, v.second, v.is_peak) for k, v in out.items()}
    return out


def peak_happiness(happiness: np.ndarray, idx: np.ndarray, confidence: float = 0.95) -> KpiValue:
    """Peak of the mean happiness curve with a bootstrap CI over the resamples ``idx``."""
    h = np.asarray(happiness, dtype=float)
    value, second = peak(_mean_curve(h))
    w = resample_weights(idx, h.shape[0])
    ok = ~np.isnan(h)
    with np.errstate(invalid="ignore", divide="ignore"):
        curves = (w @ np.where(ok, h, 0.0)) / (w @ ok.astype(float))
    finite = np.isfinite(curves).any(axis=1)
    peaks = np.full(len(curves), np.nan)
    peaks[finite] = np.nanmax(curves[finite], axis=1)
    lo, hi = percentile_ci(peaks, confidence)
    return KpiValue(value, lo, hi, second, True)


def _mean_curve(m: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(m)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, m, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan)


def key_moments(seconds: Sequence[pd.DataFrame], labels: Sequence[str], n_seconds: int,
                max_moments: int = 6, min_gap_s: int = 2) -> list[dict[str, Any]]:
    """Peaks and troughs of the ad's mean curves, most prominent first.

    Candidates: for each emotion except neutral, the second of its highest mean; for happiness and
    for valence (mean per-second valence) also the trough (lowest mean). Each is ranked by its
    prominence, the distance from its curve's own mean over the ad's seconds (halved for valence,
    whose scale is twice as wide); a candidate less than
    ``min_gap_s`` seconds from one already taken is skipped; at most ``max_moments``."""
    curves = {lb: _mean_curve(matrix(seconds, lb, n_seconds)) for lb in labels if lb != "neutral"}
    if labels and seconds:
        curves["valence"] = _mean_curve(valence_matrix(seconds, labels, n_seconds))
    cands: list[tuple[float, dict[str, Any]]] = []
    for name, c in curves.items():
        if not np.isfinite(c).any():
            continue
        level = float(np.nanmean(c))
        kinds = [("peak", 1.0), ("trough", -1.0)] if name in ("happiness", "valence") else [("peak", 1.0)]
        for kind, sign in kinds:
            v, s = peak(sign * c)
            scale = 0.5 if name == "valence" else 1.0  # valence spans [-1, 1], probabilities [0, 1]
            cands.append((scale * (v - sign * level), {"second": s, "kind": kind, "emotion": name, "value": sign * v}))
    chosen: list[dict[str, Any]] = []
    for _, m in sorted(cands, key=lambda p: -p[0]):
        if len(chosen) < max_moments and all(abs(m["second"] - c["second"]) >= min_gap_s for c in chosen):
            chosen.append(m)
    return chosen
