"""Pure alignment functions: level the eyes and cut a square face crop. Arrays in, arrays out.

Angles are in degrees, measured in the image as seen on screen (y grows downwards): a positive
angle means the eye line, and so the head, is tilted counter-clockwise (the eye on the right of
the image is higher). :func:`crop_face` removes such a tilt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import imgops
from ..errors import InvalidInput

Point = tuple[float, float]


def eye_angle(left_eye: Sequence[float], right_eye: Sequence[float]) -> float:
    """Tilt of the line through the two eye centres, in degrees, positive counter-clockwise.

    The eyes may be given in either order; the one with the smaller x is taken as the left one.
    """
    (x0, y0), (x1, y1) = sorted([(float(left_eye[0]), float(left_eye[1])), (float(right_eye[0]), float(right_eye[1]))])
    return math.degrees(math.atan2(y0 - y1, x1 - x0))


def crop_side(box: Sequence[int], margin: float) -> int:
    """Side of the square crop for ``box`` (x, y, w, h): ``max(w, h) * (1 + 2 * margin)``, at least 1."""
    return max(1, round(max(box[2], box[3]) * (1.0 + 2.0 * margin)))


def crop_face(
    rgb: np.ndarray,
    box: Sequence[int],
    margin: float,
    angle: float | None = None,
    center: Sequence[float] | None = None,
) -> np.ndarray:
    """A square crop around a face, upright when ``angle`` is given.

    ``box`` is (x, y, w, h); the crop has side :func:`crop_side` (``margin`` is added on each side,
    as a fraction of the box side) and is centred on ``center`` (default: the box centre).
    ``angle`` is the tilt to remove (from :func:`eye_angle`); ``None`` or 0 cuts without rotating.
    Parts of the crop outside the image repeat the border pixels. Returns an array of the same
    dtype and channels as ``rgb``, ``(side, side[, C])``.
    """
    if rgb.ndim not in (2, 3) or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InvalidInput(f"crop_face needs an (H, W) or (H, W, C) image, got shape {rgb.shape}")
    if box[2] <= 0 or box[3] <= 0:
        raise InvalidInput(f"crop_face needs a box with positive width and height, got {tuple(box)}")
    side = crop_side(box, margin)
    cx, cy = (box[0] + box[2] / 2.0, box[1] + box[3] / 2.0) if center is None else (center[0], center[1])
    if not angle:
        return _crop_straight(rgb, round(cx - side / 2.0), round(cy - side / 2.0), side)
    # Rotate about (cx, cy) by -angle (OpenCV's positive angle is counter-clockwise on screen), then
    # move (cx, cy) to the middle of the output.
    m = imgops.rotation_matrix((float(cx), float(cy)), -float(angle), 1.0)
    m[0, 2] += side / 2.0 - cx
    m[1, 2] += side / 2.0 - cy
    return imgops.warp_affine(rgb, m, (side, side))


def _crop_straight(img: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    x1, y1 = x0 + side, y0 + side
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if cx0 >= cx1 or cy0 >= cy1:  # wholly outside: replicate the nearest pixel
        px, py = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)
        reps = (side, side, 1) if img.ndim == 3 else (side, side)
        return np.tile(img[py : py + 1, px : px + 1], reps)
    part = img[cy0:cy1, cx0:cx1]
    pads = (cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1)
    if any(pads):
        part = imgops.pad_replicate(part, *pads)
    return np.ascontiguousarray(part)


def rotate_point(point: Sequence[float], center: Sequence[float], angle: float) -> Point:
    """Where ``point`` lands when the image is rotated about ``center`` to remove tilt ``angle``."""
    m = imgops.rotation_matrix((float(center[0]), float(center[1])), -float(angle), 1.0)
    x, y = float(point[0]), float(point[1])
    return (float(m[0, 0] * x + m[0, 1] * y + m[0, 2]), float(m[1, 0] * x + m[1, 1] * y + m[1, 2]))
