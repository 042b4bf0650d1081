"""Reuse each track's eye positions for a while instead of searching for the eyes on every frame.

Levelling a face needs its eyes. Detectors without landmarks (dlib, Haar) leave that to the
analyzer's Haar eye search, 2-6 ms per face here (more when it fails: it retries at two tilts), as
much as the rest of a frame's work. A head's tilt changes slowly, so :class:`EyeCache` keeps, per
track, where the eyes sat *relative to the face box* when they were last searched, and for
``interval_s`` seconds hands them back mapped into the current box as detection landmarks (which
the analyzer uses as they are). A search that found no eyes is remembered too: the face then gets
level *placeholder* eyes, which give exactly the crop of a failed search (no rotation), and the
caller reports no roll and no keypoints for it. ``interval_s = 0`` searches on every frame.
Detections that bring their own eye landmarks are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ..inference.detect import Detection

RelEyes = tuple[tuple[float, float], tuple[float, float]]
PLACEHOLDER: RelEyes = ((0.3, 0.4), (0.7, 0.4))
"""Level eyes (relative to the box) standing in for a search that found none: roll 0, no rotation."""


@dataclass(frozen=True)
class CachedEyes:
    """A detection carrying cached eye landmarks; ``placeholder``: the last search found no eyes."""

    detection: Detection
    placeholder: bool


class EyeCache:
    """Per-track eye positions relative to the face box, refreshed every ``interval_s`` seconds."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self._eyes: dict[int, tuple[float, RelEyes | None]] = {}
        self.hits = 0

    def lookup(self, tid: int, det: Detection, t: float) -> CachedEyes | None:
        """``det`` with track ``tid``'s cached eyes as landmarks, or None when a fresh search is due
        (nothing cached, cache older than ``interval_s``, or the detector gave landmarks itself)."""
        if det.landmarks and "left_eye" in det.landmarks:
            return None
        entry = self._eyes.get(tid)
        if entry is None or t - entry[0] >= self.interval_s or t < entry[0]:
            return None
        rel = entry[1] if entry[1] is not None else PLACEHOLDER
        x, y, w, h = det.box
        (lx, ly), (rx, ry) = rel
        marks = {"left_eye": (x + lx * w, y + ly * h), "right_eye": (x + rx * w, y + ry * h)}
        self.hits += 1
        return CachedEyes(replace(det, landmarks={**(det.landmarks or {}), **marks}), entry[1] is None)

    def store(self, tid: int, det: Detection, marks: Mapping[str, tuple[float, float]] | None, t: float) -> None:
        """Remember what the eye search found for ``det`` of track ``tid`` at time ``t`` (``marks``
        without both eyes: it found none)."""
        if not marks or "left_eye" not in marks or "right_eye" not in marks:
            self._eyes[tid] = (t, None)
            return
        x, y, w, h = det.box
        w, h = max(w, 1), max(h, 1)
        (lx, ly), (rx, ry) = marks["left_eye"], marks["right_eye"]
        self._eyes[tid] = (t, (((lx - x) / w, (ly - y) / h), ((rx - x) / w, (ry - y) / h)))

    def keep_only(self, ids: Iterable[int]) -> None:
        """Forget the tracks not in ``ids``."""
        alive = set(ids)
        self._eyes = {k: v for k, v in self._eyes.items() if k in alive}
