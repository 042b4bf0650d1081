"""Draw analysis results onto images: pure OpenCV, arrays in, arrays out (needs the ``opencv`` extra).

:func:`annotate` returns an annotated RGB copy of an image given its
:class:`~emolens.results.ImageResult`: one box per face in the colour of its emotion, the emotion and
its confidence as a label, a small probability bar chart beside each face and the facial keypoints
when the result has them. Every size (line width, font, bars) is scaled to the image, and everything
drawn stays inside it. :data:`EMOTION_COLORS` is the shared palette (RGB), so web pages and reports
can show an emotion in the same colour as the annotated images.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import imgops
from ..errors import InvalidInput
from ..preprocess import to_channels
from ..results import FaceResult, ImageResult

RGB = tuple[int, int, int]

EMOTION_COLORS: Mapping[str, RGB] = {
    "anger": (220, 40, 40),
    "disgust": (110, 160, 30),
    "fear": (150, 70, 200),
    "happiness": (250, 195, 20),
    "sadness": (45, 110, 220),
    "surprise": (255, 125, 0),
    "neutral": (165, 165, 165),
    "contempt": (150, 95, 55),
}
"""RGB colour of each canonical emotion label (see :mod:`emolens.labels`)."""

_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX


def _cv() -> Any:
    """OpenCV, or MissingExtra naming the ``opencv`` extra (the core install has no drawing)."""
    return imgops.require_cv2("drawing annotated images (--annotate)")


def emotion_color(label: str) -> RGB:
    """The RGB colour of an emotion; labels outside the palette get a stable colour from their name."""
    if label in EMOTION_COLORS:
        return EMOTION_COLORS[label]
    h = zlib.crc32(label.encode("utf-8"))
    return (64 + (h & 0x7F), 64 + ((h >> 8) & 0x7F), 64 + ((h >> 16) & 0x7F))


def emotion_color_hex(label: str) -> str:
    """The colour of an emotion as a CSS hex string, e.g. ``#dc2828``."""
    r, g, b = emotion_color(label)
    return f"#{r:02x}{g:02x}{b:02x}"


def _text_color(bg: RGB) -> RGB:
    """Black or white, whichever reads better on ``bg``."""
    luminance = 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


@dataclass(frozen=True)
class _Style:
    """Sizes derived from the image, so a 4K photo and a 200 px thumbnail look alike."""

    thickness: int
    font_scale: float
    font_thickness: int
    row_h: int
    bar_w: int
    radius: int

    @classmethod
    def for_image(cls, height: int, width: int) -> _Style:
        s = max(min(height, width) / 480.0, 0.4)
        return cls(
            thickness=max(1, round(2 * s)),
            font_scale=0.5 * s,
            font_thickness=max(1, round(1.2 * s)),
            row_h=max(6, round(12 * s)),
            bar_w=max(12, round(56 * s)),
            radius=max(1, round(2 * s)),
        )


def _as_rgb(img: np.ndarray) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim < 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InvalidInput(f"annotate needs an (H, W) or (H, W, 3|4) image, got shape {arr.shape}")
    return np.ascontiguousarray(to_channels(arr, 3)).copy()


def _blend_rect(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, color: RGB, alpha: float) -> None:
    """Fill a rectangle with ``color`` at opacity ``alpha`` (clipped to the image), in place."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return
    roi = img[y0:y1, x0:x1]
    fill = np.empty_like(roi)
    fill[:] = color
    _cv().addWeighted(fill, alpha, roi, 1.0 - alpha, 0.0, dst=roi)


def _clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(v, hi))


def _draw_label(img: np.ndarray, face: FaceResult, color: RGB, st: _Style) -> None:
    """``emotion 87%`` on a filled tag above the box (inside it when the box touches the top edge)."""
    h, w = img.shape[:2]
    text = f"{face.emotion} {face.confidence:.0%}"
    (tw, th), base = _cv().getTextSize(text, _FONT, st.font_scale, st.font_thickness)
    pad = max(1, st.thickness)
    tag_w, tag_h = tw + 2 * pad, th + base + 2 * pad
    x, y, _, _ = face.box
    tx = _clamp(int(x), 0, max(0, w - tag_w))
    ty = int(y) - tag_h if int(y) - tag_h >= 0 else int(y)
    ty = _clamp(ty, 0, max(0, h - tag_h))
    _cv().rectangle(img, (tx, ty), (tx + tag_w - 1, ty + tag_h - 1), color, thickness=-1)
    _cv().putText(
        img, text, (tx + pad, ty + pad + th), _FONT, st.font_scale, _text_color(color),
        st.font_thickness, _cv().LINE_AA,
    )


Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)


def _bar_panel_size(
    labels: list[str], st: _Style, face_h: int, img_h: int, img_w: int
) -> tuple[int, int, int, float]:
    """(row height, text width, bar width, font scale) for a panel about as tall as the face (at
    most the image's style size), that fits inside the image. Rows under 7 px get bars only."""
    n = max(1, len(labels))
    row_h = max(5, min(st.row_h, round(1.3 * face_h / n)))
    row_h = min(row_h, max(2, img_h // n))
    font_scale = st.font_scale * 0.8 * row_h / st.row_h
    text_w = 0
    if row_h >= 7:
        text_w = max(_cv().getTextSize(lb[:3], _FONT, font_scale, 1)[0][0] for lb in labels) + 3
    bar_w = min(max(12, round(st.bar_w * row_h / st.row_h)), max(4, img_w - text_w - 2))
    if text_w + bar_w + 2 > img_w:  # too narrow for any text
        text_w, bar_w = 0, max(1, img_w - 2)
    return row_h, text_w, bar_w, font_scale


def _overlap(a: Rect, b: Rect) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _place_panel(box: Rect, pw: int, ph: int, w: int, h: int, gap: int, avoid: list[Rect]) -> Rect:
    """Where a ``pw x ph`` panel goes for a face ``box``: right of it, left, below, or inside,
    whichever (clamped into the image) covers the least of the other faces and panels in ``avoid``."""
    x0, y0, x1, y1 = box
    candidates = [
        (x1 + gap, y0), (x0 - gap - pw, y0), (x0, y1 + gap), (x1 - pw, y1 - ph), (x1 + gap, y1 - ph),
    ]
    best: Rect | None = None
    best_cost = -1
    for cx, cy in candidates:
        px, py = _clamp(cx, 0, max(0, w - pw)), _clamp(cy, 0, max(0, h - ph))
        rect = (px, py, px + pw, py + ph)
        cost = sum(_overlap(rect, r) for r in avoid) + _overlap(rect, box) // 2
        if best is None or cost < best_cost:
            best, best_cost = rect, cost
    assert best is not None
    return best


def _draw_bars(img: np.ndarray, face: FaceResult, st: _Style, avoid: list[Rect]) -> Rect | None:
    """A small bar per label beside the face; returns the rectangle it used."""
    labels = list(face.probabilities)
    if not labels:
        return None
    h, w = img.shape[:2]
    x, y, bw, bh = (int(v) for v in face.box)
    row_h, text_w, bar_w, font_scale = _bar_panel_size(labels, st, bh, h, w)
    panel_w, panel_h = text_w + bar_w + 2, row_h * len(labels)
    box = (x, y, x + bw, y + bh)
    px, py, _, _ = _place_panel(box, panel_w, panel_h, w, h, st.thickness + 2, [r for r in avoid if r != box])
    _blend_rect(img, px, py, px + panel_w, py + panel_h, (20, 20, 20), 0.55)
    for i, label in enumerate(labels):
        p = float(np.clip(face.probabilities[label], 0.0, 1.0))
        ry = py + i * row_h
        if text_w:
            _cv().putText(
                img, label[:3], (px + 1, ry + row_h - max(1, row_h // 5)), _FONT, font_scale,
                (235, 235, 235), 1, _cv().LINE_AA,
            )
        bx0 = px + 1 + text_w
        bx1 = bx0 + max(1, round(p * (bar_w - 1)))
        inset = max(1, row_h // 6) if row_h >= 4 else 0
        _cv().rectangle(img, (bx0, ry + inset), (bx1 - 1, ry + row_h - 1 - inset), emotion_color(label), -1)
    return (px, py, px + panel_w, py + panel_h)


def _draw_keypoints(img: np.ndarray, face: FaceResult, color: RGB, st: _Style) -> None:
    h, w = img.shape[:2]
    for px, py in (face.keypoints or {}).values():
        if not (np.isfinite(px) and np.isfinite(py)):
            continue
        cx, cy = round(float(px)), round(float(py))
        if 0 <= cx < w and 0 <= cy < h:
            _cv().circle(img, (cx, cy), st.radius + 1, (0, 0, 0), -1, _cv().LINE_AA)
            _cv().circle(img, (cx, cy), st.radius, color, -1, _cv().LINE_AA)


def annotate(
    rgb: np.ndarray,
    result: ImageResult,
    *,
    draw_bars: bool = True,
    draw_keypoints: bool = True,
) -> np.ndarray:
    """An annotated RGB ``uint8 (H, W, 3)`` copy of ``rgb``; the input is never modified.

    ``rgb`` is the upright image the result was computed on (gray and RGBA are accepted and
    converted). Each face gets a box in :func:`emotion_color` of its emotion, an ``emotion NN%`` tag,
    optionally a probability bar per label beside the face, and its keypoints when present.
    Boxes that reach outside the image are clipped. Raises
    :class:`~emolens.errors.InvalidInput` for an array that is not a uint8 image.
    """
    _cv()  # MissingExtra up front, whatever the image holds
    img = _as_rgb(rgb)
    h, w = img.shape[:2]
    st = _Style.for_image(h, w)
    occupied: list[Rect] = [(int(f.box[0]), int(f.box[1]), int(f.box[0] + f.box[2]), int(f.box[1] + f.box[3]))
                            for f in result.faces]
    for face in result.faces:
        color = emotion_color(face.emotion)
        x, y, bw, bh = (int(v) for v in face.box)
        x0, y0 = _clamp(x, 0, w - 1), _clamp(y, 0, h - 1)
        x1, y1 = _clamp(x + bw - 1, 0, w - 1), _clamp(y + bh - 1, 0, h - 1)
        _cv().rectangle(img, (x0, y0), (x1, y1), color, st.thickness, _cv().LINE_8)
        if draw_keypoints and face.keypoints:
            _draw_keypoints(img, face, color, st)
        if draw_bars:
            panel = _draw_bars(img, face, st, occupied)
            if panel is not None:
                occupied.append(panel)
    for face in result.faces:  # tags last, so no other face's bars cover them
        _draw_label(img, face, emotion_color(face.emotion), st)
    return img
