"""When each ad really played, in the recording's clock, and the mapping of recording time to ad time.

The viewer page starts its clock when ``MediaRecorder`` starts (recording time 0) and notes, for
each ad, every stretch during which the ad was actually playing: a *segment*
``[rec_start, rec_end, ad_start, ad_end]`` (recording seconds, then the ad's own ``currentTime``).
A stall (buffering) or a pause ends a segment and the next ``playing`` event opens another, so the
time the ad stood still is simply not covered.

:func:`parse_timing` checks what the page sent; :func:`to_ad_time` turns a frame table in
recording time into one in ad time: a frame inside a segment gets
``ad_start + (t - rec_start) * (ad_end - ad_start) / (rec_end - rec_start)`` (exact at both ends of
every segment), a frame outside every segment (before, between, after, during a stall) is dropped.
The campaign code then sees each (viewer, ad) as a recording with offset 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput

TOLERANCE_S = 0.5
"""Slack allowed on ad times past the ad's duration (event timing is not frame-exact)."""
MAX_SEGMENTS = 200


@dataclass(frozen=True)
class Segment:
    rec_start: float
    rec_end: float
    ad_start: float
    ad_end: float


@dataclass(frozen=True)
class AdTiming:
    """When one ad played: its segments in order, and whether it played to its end."""

    ad_id: str
    segments: tuple[Segment, ...]
    completed: bool

    @property
    def rec_start(self) -> float:
        return self.segments[0].rec_start

    @property
    def rec_end(self) -> float:
        return self.segments[-1].rec_end

    def to_dict(self) -> dict[str, Any]:
        return {"ad_id": self.ad_id, "completed": self.completed,
                "segments": [[s.rec_start, s.rec_end, s.ad_start, s.ad_end] for s in self.segments]}


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise InvalidInput(f"timing: {what} must be a finite number, got {value!r}"[:200])
    return float(value)


def _segments(raw: Any, name: str, duration: float) -> tuple[Segment, ...]:
    if not isinstance(raw, list | tuple) or not raw:
        raise InvalidInput(f"timing of ad {name!r}: segments must be a non-empty list")
    if len(raw) > MAX_SEGMENTS:
        raise InvalidInput(f"timing of ad {name!r}: {len(raw)} segments; at most {MAX_SEGMENTS}")
    out: list[Segment] = []
    for i, seg in enumerate(raw):
        if not isinstance(seg, list | tuple) or len(seg) != 4:
            raise InvalidInput(f"timing of ad {name!r}: segment {i} must be [rec_start, rec_end, ad_start, ad_end]")
        s = Segment(*(_number(v, f"segment {i} of ad {name!r}") for v in seg))
        if s.rec_start < 0 or s.rec_end < s.rec_start or s.ad_start < 0 or s.ad_end < s.ad_start:
            raise InvalidInput(f"timing of ad {name!r}: segment {i} runs backwards or starts below 0")
        if s.ad_end > duration + TOLERANCE_S:
            raise InvalidInput(f"timing of ad {name!r}: segment {i} ends at ad time {s.ad_end:.2f} s, past the "
                               f"ad's {duration:.2f} s")
        if out and s.rec_start < out[-1].rec_end - 1e-6:
            raise InvalidInput(f"timing of ad {name!r}: segment {i} starts before the previous one ended")
        out.append(s)
    return tuple(out)


def parse_timing(raw: Any, ads: Mapping[str, tuple[str, float]], order: Sequence[str]) -> tuple[AdTiming, ...]:
    """The page's timing checked against the session's ads (``ads[id] = (name, duration_s)``,
    ``order``: the ad ids in the order shown). Ads the viewer never reached may be missing; the
    others must come in ``order`` and must not overlap in the recording.
    :class:`InvalidInput` naming the problem otherwise."""
    if not isinstance(raw, list | tuple):
        raise InvalidInput("timing must be a list with one entry per ad played")
    out: list[AdTiming] = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise InvalidInput("timing: each entry must be {ad_id, segments, completed}")
        ad_id = str(entry.get("ad_id", ""))
        if ad_id not in ads:
            raise InvalidInput(f"timing names ad {ad_id[:64]!r}, which this session does not show")
        if any(t.ad_id == ad_id for t in out):
            raise InvalidInput(f"timing gives ad {ads[ad_id][0]!r} twice")
        name, duration = ads[ad_id]
        timing = AdTiming(ad_id, _segments(entry.get("segments"), name, duration), bool(entry.get("completed")))
        if out and timing.rec_start < out[-1].rec_end - 1e-6:
            raise InvalidInput(f"timing: ad {name!r} starts before the previous ad ended")
        out.append(timing)
    shown = [t.ad_id for t in out]
    if shown != [a for a in order if a in shown]:
        raise InvalidInput("timing: the ads are not in the order this session showed them")
    return tuple(out)


def to_ad_time(frames: pd.DataFrame, timing: AdTiming) -> pd.DataFrame:
    """``frames`` (column ``t`` in recording seconds) in ad time, frames outside the segments dropped."""
    t = frames["t"].to_numpy(dtype=float)
    ad_t = np.full(len(t), np.nan)
    for s in timing.segments:
        inside = (t >= s.rec_start) & (t < s.rec_end) if s.rec_end > s.rec_start else np.zeros(len(t), bool)
        scale = (s.ad_end - s.ad_start) / (s.rec_end - s.rec_start) if s.rec_end > s.rec_start else 0.0
        ad_t[inside] = s.ad_start + (t[inside] - s.rec_start) * scale
    keep = ~np.isnan(ad_t)
    out = frames.loc[keep].copy()
    out["t"] = ad_t[keep]
    return out.reset_index(drop=True)
