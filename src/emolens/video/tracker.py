"""Identities across frames: a small ByteTrack-like tracker for face boxes, timed in seconds.

Each :class:`Track` keeps its last box and a constant-velocity motion estimate (centre and size per
second), so it can predict where the face is at any later time. :meth:`FaceTracker.update` takes
one frame's detections and assigns them track ids in two stages, as ByteTrack does:

1. detections scoring at least ``high_score`` are matched to every live track (seen or lost) by
   the IoU of the detection with the track's predicted box (Hungarian assignment,
   ``scipy.optimize.linear_sum_assignment``; pairs under ``match_iou`` are not matched);
2. the remaining low-score detections are matched, more strictly (``low_match_iou``), only to
   tracks that were seen on the previous update: they keep a face that blurs or turns for a moment,
   but never start a track. Unmatched low-score detections are dropped.

Unmatched high-score detections start new tracks (ids count up from 1 and are never reused). A track
whose first detection scores under ``confirm_score`` is *tentative*: it gets no id and is not
reported until a second frame matches it (then it is confirmed and numbered), and it is dropped as
soon as a frame misses it: a face fragment at the frame's edge that a detector sees for one frame
(YuNet at 0.80-0.90 on ``youtubefaces_0492_03_009_bill_gates.avi``) does not become a track. A
track that is not matched is *lost* but keeps its id, predicted forward, until it has been unseen
for more than ``max_age_s`` seconds; then it is removed. Time, not frame counts, drives everything,
so skipped frames and variable frame rates are handled alike.

Why not a library: ``supervision``'s ByteTrack counts age in frames at a fixed rate, wants its
``Detections`` type and pulls a large dependency tree; the association needed here is ~150 lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import InvalidInput

BoxF = tuple[float, float, float, float]

VELOCITY_BLEND = 0.6
"""Weight of the newest measured velocity in the motion estimate (the rest is the previous one)."""


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` arrays of (x, y, w, h) boxes -> ``(N, M)``."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ax0, ay0, ax1, ay1 = a[:, 0:1], a[:, 1:2], a[:, 0:1] + a[:, 2:3], a[:, 1:2] + a[:, 3:4]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    ih = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    inter = iw * ih
    union = a[:, 2:3] * a[:, 3:4] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclass
class Track:
    """One face followed through time. ``state`` = (cx, cy, w, h) at ``last_seen`` (seconds);
    ``velocity`` = their change per second."""

    id: int
    state: np.ndarray
    first_seen: float
    last_seen: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    hits: int = 1
    seen_last_update: bool = True
    confirmed: bool = True

    @staticmethod
    def to_state(box: Sequence[float]) -> np.ndarray:
        x, y, w, h = (float(v) for v in box)
        return np.array([x + w / 2.0, y + h / 2.0, w, h])

    def predict(self, t: float, horizon_s: float) -> BoxF:
        """The (x, y, w, h) box expected at time ``t`` (motion extrapolated at most ``horizon_s``)."""
        dt = min(max(t - self.last_seen, 0.0), horizon_s)
        cx, cy, w, h = self.state + self.velocity * dt
        w, h = max(w, 1.0), max(h, 1.0)
        return (cx - w / 2.0, cy - h / 2.0, w, h)

    def observe(self, box: Sequence[float], t: float) -> None:
        """Move the track to a matched detection seen at time ``t``."""
        new = self.to_state(box)
        dt = t - self.last_seen
        if 0.0 < dt <= 0.5:  # after a longer gap the old motion says little
            measured = (new - self.state) / dt
            self.velocity = VELOCITY_BLEND * measured + (1.0 - VELOCITY_BLEND) * self.velocity
        else:
            self.velocity = np.zeros(4)
        self.state, self.last_seen = new, t
        self.hits += 1
        self.seen_last_update = True


class FaceTracker:
    """ByteTrack-like association of face boxes over time (see the module docstring).

    ``high_score``: detections at least this confident are first-stage and may start tracks (scores
    are per detector backend: :func:`default_high_score`). ``max_age_s``: how long a track
    survives unseen. ``match_iou`` / ``low_match_iou``: least IoU with a predicted box to match in
    stage 1 / stage 2. ``predict_horizon_s``: motion is extrapolated at most this far.
    ``confirm_score``: a new track whose detection scores less is tentative until matched again.
    """

    def __init__(
        self,
        *,
        high_score: float = 0.5,
        max_age_s: float = 1.0,
        match_iou: float = 0.2,
        low_match_iou: float = 0.4,
        predict_horizon_s: float = 0.5,
        confirm_score: float = 0.0,
    ) -> None:
        if max_age_s < 0 or not 0 < match_iou <= 1 or not 0 < low_match_iou <= 1 or predict_horizon_s < 0:
            raise InvalidInput("tracker needs max_age_s >= 0, 0 < match_iou, low_match_iou <= 1, horizon >= 0")
        self.high_score, self.max_age_s = high_score, max_age_s
        self.match_iou, self.low_match_iou = match_iou, low_match_iou
        self.horizon = predict_horizon_s
        self.confirm_score = confirm_score
        self.tracks: list[Track] = []
        self._next_id = 1
        self._next_tentative = -1
        self.newly_lost = 0
        """Tracks seen on the previous update but not on the last one."""

    def predicted(self, t: float) -> list[tuple[int, BoxF]]:
        """(track id, predicted box at ``t``) for every live track."""
        return [(tr.id, tr.predict(t, self.horizon)) for tr in self.tracks]

    def _match(
        self, tracks: list[Track], boxes: np.ndarray, t: float, min_iou: float
    ) -> tuple[list[tuple[int, int]], list[int], list[int]]:
        """Hungarian matching of ``tracks`` to ``boxes``: (pairs (track idx, box idx), unmatched
        track idx, unmatched box idx)."""
        if not tracks or len(boxes) == 0:
            return [], list(range(len(tracks))), list(range(len(boxes)))
        pred = np.array([tr.predict(t, self.horizon) for tr in tracks], dtype=np.float64)
        ious = iou_matrix(pred, boxes)
        rows, cols = linear_sum_assignment(1.0 - ious)
        pairs = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if ious[r, c] >= min_iou]
        used_t, used_b = {r for r, _ in pairs}, {c for _, c in pairs}
        return (pairs, [i for i in range(len(tracks)) if i not in used_t],
                [j for j in range(len(boxes)) if j not in used_b])

    def update(self, boxes: Sequence[Sequence[float]], scores: Sequence[float], t: float) -> list[int | None]:
        """Assign one frame's detections (seen at time ``t``); returns a track id per detection, in
        order, or None for a low-score detection that matched no track (drop it)."""
        if len(boxes) != len(scores):
            raise InvalidInput(f"{len(boxes)} boxes but {len(scores)} scores")
        arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        sc = np.asarray(scores, dtype=np.float64).reshape(-1)
        ids: list[int | None] = [None] * len(arr)
        high = [i for i in range(len(arr)) if sc[i] >= self.high_score]
        low = [i for i in range(len(arr)) if sc[i] < self.high_score]

        pairs, free_t, free_h = self._match(self.tracks, arr[high], t, self.match_iou)
        matched: set[int] = set()
        for ti, bi in pairs:
            self._assign(self.tracks[ti], high[bi], arr, t, ids, matched)
        recent = [self.tracks[i] for i in free_t if self.tracks[i].seen_last_update]
        pairs2, _, _ = self._match(recent, arr[low], t, self.low_match_iou)
        for ti, bi in pairs2:
            self._assign(recent[ti], low[bi], arr, t, ids, matched)

        self.newly_lost = 0
        for tr in self.tracks:
            if tr.id not in matched:
                self.newly_lost += int(tr.seen_last_update and tr.confirmed)
                tr.seen_last_update = False
        self.tracks = [tr for tr in self.tracks
                       if tr.id in matched or (tr.confirmed and t - tr.last_seen <= self.max_age_s)]
        for bi in free_h:
            di = high[bi]
            confirmed = sc[di] >= self.confirm_score
            tr = Track(self._next_id if confirmed else self._next_tentative, Track.to_state(arr[di]),
                       first_seen=t, last_seen=t, confirmed=confirmed)
            if confirmed:
                self._next_id += 1
                ids[di] = tr.id
            else:
                self._next_tentative -= 1
            self.tracks.append(tr)
        return ids

    def _assign(self, tr: Track, det: int, arr: np.ndarray, t: float, ids: list[int | None], matched: set[int]) -> None:
        tr.observe(arr[det], t)
        if not tr.confirmed:  # seen a second time: a real track now, numbered in order of confirmation
            tr.confirmed, tr.id = True, self._next_id
            self._next_id += 1
        ids[det] = tr.id
        matched.add(tr.id)

    @property
    def live_ids(self) -> set[int]:
        """Ids of the confirmed tracks still alive (seen, or lost for at most ``max_age_s``)."""
        return {tr.id for tr in self.tracks if tr.confirmed}


DEFAULT_HIGH_SCORES: dict[str, float] = {"yunet": 0.8, "dlib": 0.75, "haar": 0.3, "mediapipe": 0.6}
"""First-stage score per detector backend. YuNet reports faces from 0.8 (its threshold): all "high".
dlib maps its SVM margin ``m`` to ``1/(1+exp(-2(m+0.5)))``,
so 0.75 is a margin of about 0.05: nearly all its detections at the default threshold (0) are
"high"; Haar's squashed neighbour count passes 0.3 from 3 neighbours, its own default."""


DEFAULT_CONFIRM_SCORES: dict[str, float] = {"yunet": 0.9}
"""Score from which a new track is reported at once (others wait for a second frame), per backend; 0 for
the others (their scores rarely separate fragments from faces)."""


def default_confirm_score(detector_name: str) -> float:
    """The ``confirm_score`` for a detector backend."""
    return DEFAULT_CONFIRM_SCORES.get(detector_name.split("-", 1)[0], 0.0)


def default_high_score(detector_name: str) -> float:
    """The first-stage score threshold for a detector backend (0.5 for unknown ones)."""
    base = detector_name.split("-", 1)[0]
    return DEFAULT_HIGH_SCORES.get(base, 0.5)
