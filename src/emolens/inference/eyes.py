"""Find the two eyes inside a face box with OpenCV's Haar eye cascade (for detectors without landmarks).

The cascade only finds nearly upright eyes, so the face region is searched as it is and, when
that fails, turned by each of ``tries`` degrees. A pair is accepted only when it looks like two
eyes: one in each half of the face, of similar size, a plausible distance apart, tilted less than
``max_angle``. Anything less certain returns ``None`` and the caller does not rotate. Measured on
400 rotated (+-25 degrees) faces of the facial-keypoints test split (``bench/detectors.py
--eyes``), the angle error of accepted pairs has a median near 1 degree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import imgops
from .align import eye_angle
from .detect import ThreadLocalCascade

Eyes = tuple[tuple[float, float], tuple[float, float]]


class HaarEyeFinder:
    """Thread-safe eye finder (one cascade per thread). ``min_face``: faces smaller than this many
    pixels are not searched (the cascade needs eyes of ~12 px); ``max_angle``: the largest
    eye-line tilt, in degrees, accepted as real; ``tries``: extra tilts (degrees) at which the face
    region is searched when the upright search finds no pair."""

    WORK_SIDE = 120
    """Faces are searched at most this many pixels wide."""

    def __init__(
        self,
        min_face: int = 56,
        max_angle: float = 35.0,
        min_neighbors: int = 3,
        tries: Sequence[float] = (-20.0, 20.0),
    ) -> None:
        self.min_face, self.max_angle, self.min_neighbors = min_face, max_angle, min_neighbors
        self.tries = tuple(tries)
        self._cascade = ThreadLocalCascade("eye")

    def find(self, gray: np.ndarray, box: Sequence[int]) -> Eyes | None:
        """(left eye, right eye) centres in image pixels (left = smaller x), or None when unsure.

        ``gray`` is the whole image, ``uint8 (H, W)``; ``box`` the face (x, y, w, h) in it.
        """
        x, y, w, h = (int(v) for v in box)
        side = max(w, h)
        if side < self.min_face:
            return None
        # A square patch around the face, large enough to turn without losing the eyes, shrunk so
        # the face is at most WORK_SIDE pixels (the cascade gains nothing from more, and time grows).
        cx, cy = x + w / 2.0, y + h / 2.0
        half = int(0.75 * side)
        ox, oy = int(cx) - half, int(cy) - half
        patch = _square(gray, ox, oy, 2 * half)
        f = min(1.0, self.WORK_SIDE / side)
        if f < 1.0:
            patch = imgops.resize(patch, (round(2 * half * f),) * 2, imgops.AREA)
        n, work_side = patch.shape[0], round(side * f)
        for tilt in (0.0, *self.tries):
            pair = self._search(patch if not tilt else _turn(patch, tilt), work_side)
            if pair is not None:
                back = [_unturn(p, tilt, n) for p in pair] if tilt else list(pair)
                (lx, ly), (rx, ry) = sorted(back)
                return (lx / f + ox, ly / f + oy), (rx / f + ox, ry / f + oy)
        return None

    def _search(self, patch: np.ndarray, side: int) -> Eyes | None:
        n = patch.shape[0]
        mid = n / 2.0
        # In the common box convention (brows to chin) the eyes sit in the upper half of the box.
        y0, y1 = int(mid - 0.6 * side), int(mid + 0.05 * side)
        x0, x1 = int(mid - 0.5 * side), int(mid + 0.5 * side)
        y0, x0 = max(0, y0), max(0, x0)
        roi = patch[y0:y1, x0:x1]
        if roi.shape[0] < 8 or roi.shape[1] < 8:
            return None
        lo, hi = max(6, side // 10), max(8, side // 3)
        found = self._cascade.get().detectMultiScale(
            roi, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(lo, lo), maxSize=(hi, hi)
        )
        cands = [(x0 + ex + ew / 2.0, y0 + ey + eh / 2.0, float(ew)) for ex, ey, ew, eh in np.reshape(found, (-1, 4))]
        return self._best_pair(cands, mid, side)

    def _best_pair(self, cands: list[tuple[float, float, float]], mid: float, side: int) -> Eyes | None:
        best: tuple[float, Eyes] | None = None
        for lx, ly, ls in (c for c in cands if c[0] < mid):
            for rx, ry, rs in (c for c in cands if c[0] >= mid):
                dist = float(np.hypot(rx - lx, ry - ly))
                if not 0.25 * side <= dist <= 0.75 * side or max(ls, rs) > 1.6 * min(ls, rs):
                    continue
                if abs(eye_angle((lx, ly), (rx, ry))) > self.max_angle:
                    continue
                # prefer pairs symmetric about the face centre, with eyes ~0.4 box apart
                cost = abs((lx + rx) / 2.0 - mid) / side + abs(dist / side - 0.4)
                if best is None or cost < best[0]:
                    best = (cost, ((lx, ly), (rx, ry)))
        return None if best is None else best[1]


def _square(gray: np.ndarray, x0: int, y0: int, n: int) -> np.ndarray:
    """The n x n patch at (x0, y0), border pixels repeated where it leaves the image."""
    h, w = gray.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x0 + n), min(h, y0 + n)
    if cx0 >= cx1 or cy0 >= cy1:
        return np.zeros((n, n), np.uint8)
    part = gray[cy0:cy1, cx0:cx1]
    pads = (cy0 - y0, y0 + n - cy1, cx0 - x0, x0 + n - cx1)
    return imgops.pad_replicate(part, *pads) if any(pads) else part


def _turn(patch: np.ndarray, tilt: float) -> np.ndarray:
    """The patch rotated about its centre by ``tilt`` degrees (counter-clockwise on screen)."""
    n = patch.shape[0]
    m = imgops.rotation_matrix((n / 2.0, n / 2.0), tilt, 1.0)
    return imgops.warp_affine(patch, m, (n, n))


def _unturn(p: tuple[float, float], tilt: float, n: int) -> tuple[float, float]:
    """Map a point of the turned patch back to the patch."""
    m = imgops.rotation_matrix((n / 2.0, n / 2.0), -tilt, 1.0)
    return (float(m[0, 0] * p[0] + m[0, 1] * p[1] + m[0, 2]), float(m[1, 0] * p[0] + m[1, 1] * p[1] + m[1, 2]))
