"""Per-track summaries of a video, built one frame at a time (memory grows with tracks, not frames).

Time weighting: each frame stands for the time until the next frame of the stream (the last frame
for ``default_interval_s``, by default the interval before it), so a face's *on-screen time* is the
sum of the durations of the frames it is on, and shares and means are weighted by that time. This
is right for variable frame rates and skipped frames; on a constant-rate video every frame weighs
the same and the figures are plain frame averages.

Per track (:class:`TrackSummary`): first and last time seen, on-screen seconds, frames (and how many
were classified rather than carried forward), the share of its on-screen time each emotion was the
top one, the time-weighted mean probability of every label, per label the *peak moment*: the
first frame where that label's probability was highest, and ``looking_share``: the share of its
on-screen time with a head pose during which the head was towards the camera (None without poses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..results import FrameResult


@dataclass(frozen=True)
class Peak:
    """The moment a label was strongest for a track."""

    probability: float
    time_s: float
    frame: int

    def to_dict(self) -> dict[str, Any]:
        return {"probability": round(self.probability, 6), "time_s": round(self.time_s, 4), "frame": self.frame}


@dataclass(frozen=True)
class TrackSummary:
    """What one tracked face showed over the video (see the module docstring)."""

    track_id: int
    first_seen_s: float
    last_seen_s: float
    on_screen_s: float
    frames: int
    classified_frames: int
    emotion_shares: dict[str, float]
    mean_probabilities: dict[str, float]
    peaks: dict[str, Peak]
    looking_share: float | None = None

    @property
    def top_emotion(self) -> str:
        """The emotion that was on top for the longest time (ties: the earlier label)."""
        return max(self.emotion_shares, key=lambda lb: (self.emotion_shares[lb], -list(self.emotion_shares).index(lb)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "first_seen_s": round(self.first_seen_s, 4),
            "last_seen_s": round(self.last_seen_s, 4),
            "on_screen_s": round(self.on_screen_s, 4),
            "frames": self.frames,
            "classified_frames": self.classified_frames,
            "top_emotion": self.top_emotion,
            "emotion_shares": {k: round(v, 6) for k, v in self.emotion_shares.items()},
            "mean_probabilities": {k: round(v, 6) for k, v in self.mean_probabilities.items()},
            "peaks": {k: p.to_dict() for k, p in self.peaks.items()},
            "looking_share": None if self.looking_share is None else round(self.looking_share, 6),
        }

    def describe(self) -> str:
        """One line, e.g. ``#2 12.4 s on screen: happiness 62%, neutral 30%``."""
        ranked = sorted((lb for lb, v in self.emotion_shares.items() if v > 0), key=lambda lb: -self.emotion_shares[lb])
        parts = ", ".join(f"{lb} {self.emotion_shares[lb]:.0%}" for lb in ranked[:3])
        looking = "" if self.looking_share is None else f"; looking {self.looking_share:.0%}"
        return f"#{self.track_id} {self.on_screen_s:.1f} s on screen: {parts}{looking}"


@dataclass
class _Acc:
    first: float
    last: float = 0.0
    time: float = 0.0
    frames: int = 0
    classified: int = 0
    top_time: dict[str, float] = field(default_factory=dict)
    prob_time: dict[str, float] = field(default_factory=dict)
    peaks: dict[str, Peak] = field(default_factory=dict)
    posed_time: float = 0.0
    looking_time: float = 0.0


class TrackSummaryBuilder:
    """Feed frame results in stream order with :meth:`add`; :meth:`build` gives the summaries.

    ``labels`` fixes the label order (labels seen later are appended); ``default_interval_s`` is the
    duration given to the last frame (None: the interval before it, or 0 for a single frame).
    """

    def __init__(self, labels: Sequence[str], default_interval_s: float | None = None) -> None:
        self.labels: list[str] = list(dict.fromkeys(labels))
        self.default_interval_s = default_interval_s
        self._acc: dict[int, _Acc] = {}
        self._pending: FrameResult | None = None
        self._last_interval: float | None = None
        self.frames = 0
        self.classified_frames = 0
        self.face_rows = 0
        self.first_time_s: float | None = None
        self.last_time_s = 0.0
        self.label_time: dict[str, float] = {}

    def add(self, frame: FrameResult) -> None:
        """Count one frame (its faces are weighted once the next frame's time is known)."""
        if self._pending is not None:
            interval = max(0.0, frame.time_s - self._pending.time_s)
            self._fold(self._pending, interval)
            self._last_interval = interval
        self._pending = frame
        self.frames += 1
        self.classified_frames += int(frame.classified)
        self.face_rows += len(frame.faces)
        if self.first_time_s is None:
            self.first_time_s = frame.time_s
        self.last_time_s = frame.time_s

    def _final_interval(self) -> float:
        if self.default_interval_s is not None:
            return self.default_interval_s
        return self._last_interval if self._last_interval is not None else 0.0

    def _fold(self, frame: FrameResult, weight: float) -> None:
        for face in frame.faces:
            if face.track_id is None:
                continue
            acc = self._acc.get(face.track_id)
            if acc is None:
                acc = self._acc[face.track_id] = _Acc(first=frame.time_s)
            acc.last = frame.time_s
            acc.time += weight
            acc.frames += 1
            acc.classified += int(frame.classified)
            for label, p in face.probabilities.items():
                if label not in self.labels:
                    self.labels.append(label)
                acc.prob_time[label] = acc.prob_time.get(label, 0.0) + weight * float(p)
                best = acc.peaks.get(label)
                if best is None or float(p) > best.probability:
                    acc.peaks[label] = Peak(float(p), frame.time_s, frame.index)
            acc.top_time[face.emotion] = acc.top_time.get(face.emotion, 0.0) + weight
            if face.looking is not None:
                acc.posed_time += weight
                acc.looking_time += weight * bool(face.looking)
            self.label_time[face.emotion] = self.label_time.get(face.emotion, 0.0) + weight

    def _flush(self) -> None:
        if self._pending is not None:
            self._fold(self._pending, self._final_interval())
            self._pending = None

    @property
    def duration_s(self) -> float:
        """Video time covered: from the first frame to the end of the last one."""
        if self.first_time_s is None:
            return 0.0
        return self.last_time_s - self.first_time_s + self._final_interval()

    def build(self) -> list[TrackSummary]:
        """Summaries of every track, by id. Ends the input: call after the last :meth:`add`."""
        self._flush()
        return [self._summary(tid, acc) for tid, acc in sorted(self._acc.items())]

    def _summary(self, tid: int, acc: _Acc) -> TrackSummary:
        total = acc.time
        if total > 0:
            shares = {lb: acc.top_time.get(lb, 0.0) / total for lb in self.labels}
            means = {lb: acc.prob_time.get(lb, 0.0) / total for lb in self.labels}
        else:  # a single frame of zero weight: count it as one frame
            shares = {lb: 0.0 for lb in self.labels}
            means = {lb: 0.0 for lb in self.labels}
            top = max(acc.peaks, key=lambda lb: acc.peaks[lb].probability) if acc.peaks else self.labels[0]
            shares[top] = 1.0
            means.update({lb: p.probability for lb, p in acc.peaks.items()})
        peaks = {lb: acc.peaks[lb] for lb in self.labels if lb in acc.peaks}
        looking = acc.looking_time / acc.posed_time if acc.posed_time > 0 else None
        return TrackSummary(tid, acc.first, acc.last, total, acc.frames, acc.classified, shares, means, peaks, looking)
