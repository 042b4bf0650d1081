"""Inline SVG charts of the campaign report, built as strings in Python.

Deterministic (same input, same bytes), no JavaScript library and no external reference: the
``<svg>`` elements go straight into ``report.html``. Every drawn series carries ``data-series`` so the
report's small script can toggle it from the legend, and every point carries a ``<title>`` (the
browser's own tooltip) with the exact figure it draws. Values that are ``None`` or NaN are gaps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from itertools import pairwise

from ..inference.annotate import emotion_color_hex

WIDTH, HEIGHT = 640, 250
LEFT, RIGHT, TOP, BOTTOM = 46, 14, 14, 36
MAX_POINTS = 2000  # beyond this many points per chart, no per-point circles (the lines stay)


def finite(value: object) -> float | None:
    """``value`` as a float, or None when it is missing, NaN or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


MEASURE_COLORS = {"valence": "#1f4e99", "share looking": "#0f8a5f", "retention": "#6a3d9a",
                  "engagement": "#d95f02"}
"""Colours of the curves that are not emotions."""


def color_of(label: str) -> str:
    """The fixed CSS colour of an emotion (shared with the annotated images and the web page) or of
    a measure of :data:`MEASURE_COLORS`."""
    return MEASURE_COLORS.get(label) or emotion_color_hex(label)


@dataclass(frozen=True)
class Curve:
    """One line of a chart: a value per x position, with an optional band (low/high) and tooltips."""

    label: str
    values: Sequence[float | None]
    low: Sequence[float | None] | None = None
    high: Sequence[float | None] | None = None
    tips: Sequence[str] | None = None


@dataclass(frozen=True)
class Mark:
    """A highlighted point (a key moment) drawn as a ring with a tooltip."""

    x: float
    y: float
    label: str
    tip: str


class _Frame:
    """Maps data coordinates (seconds, values in ``y_range``) to pixels."""

    def __init__(self, x_max: float, y_range: tuple[float, float] = (0.0, 1.0)) -> None:
        self.x_max = max(x_max, 1.0)
        self.y0, self.y1 = y_range
        self.w = WIDTH - LEFT - RIGHT
        self.h = HEIGHT - TOP - BOTTOM

    def x(self, value: float) -> float:
        return LEFT + self.w * value / self.x_max

    def y(self, value: float) -> float:
        frac = (min(max(value, self.y0), self.y1) - self.y0) / (self.y1 - self.y0)
        return TOP + self.h * (1.0 - frac)


def _f(v: float) -> str:
    return f"{v:.1f}"


def _runs(values: Sequence[float | None]) -> list[list[int]]:
    """Index runs where ``values`` is defined (a gap splits a line)."""
    runs: list[list[int]] = []
    current: list[int] = []
    for i, v in enumerate(values):
        if finite(v) is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(i)
    if current:
        runs.append(current)
    return runs


def _x_step(x_max: float) -> int:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300):
        if x_max / step <= 16:
            return step
    return 600


def _axes(frame: _Frame, y_fmt: Callable[[float], str], x_title: str, y_title: str) -> list[str]:
    out = []
    for i in range(5):
        tick = frame.y0 + i * (frame.y1 - frame.y0) / 4
        y = _f(frame.y(tick))
        out.append(f'<line class="grid" x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{y}" text-anchor="end" dy="0.32em">{y_fmt(tick)}</text>')
    step = _x_step(frame.x_max)
    base = _f(TOP + frame.h)
    for s in range(0, int(frame.x_max) + 1, step):
        x = _f(frame.x(s))
        out.append(f'<line class="axis" x1="{x}" y1="{base}" x2="{x}" y2="{_f(TOP + frame.h + 4)}"/>')
        out.append(f'<text class="tick" x="{x}" y="{_f(TOP + frame.h + 16)}" text-anchor="middle">{s}</text>')
    out.append(f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}"/>')
    out.append(f'<text class="axis-title" x="{_f(LEFT + frame.w / 2)}" y="{HEIGHT - 4}" '
               f'text-anchor="middle">{escape(x_title)}</text>')
    out.append(f'<text class="axis-title" x="12" y="{_f(TOP + frame.h / 2)}" text-anchor="middle" '
               f'transform="rotate(-90 12 {_f(TOP + frame.h / 2)})">{escape(y_title)}</text>')
    return out


def _band(frame: _Frame, xs: Sequence[float], curve: Curve, run: list[int]) -> str:
    assert curve.low is not None and curve.high is not None
    highs = [(xs[i], finite(curve.high[i])) for i in run]
    lows = [(xs[i], finite(curve.low[i])) for i in run]
    if any(v is None for _, v in highs + lows) or len(run) < 2:
        return ""
    pts = [f"{_f(frame.x(x))},{_f(frame.y(v or 0.0))}" for x, v in highs]
    pts += [f"{_f(frame.x(x))},{_f(frame.y(v or 0.0))}" for x, v in reversed(lows)]
    return f'<polygon class="band" points="{" ".join(pts)}" fill="{color_of(curve.label)}"/>'


def _curve(frame: _Frame, xs: Sequence[float], curve: Curve, points: bool) -> str:
    color, key = color_of(curve.label), escape(curve.label)
    parts = [f'<g class="series" data-series="{key}">']
    for run in _runs(curve.values):
        if curve.low is not None and curve.high is not None:
            parts.append(_band(frame, xs, curve, run))
        coords = [f"{_f(frame.x(xs[i]))},{_f(frame.y(finite(curve.values[i]) or 0.0))}" for i in run]
        if len(coords) > 1:
            parts.append(f'<path class="line" d="M{" L".join(coords)}" stroke="{color}"/>')
    if points:
        for i, v in enumerate(curve.values):
            fv = finite(v)
            if fv is None:
                continue
            tip = escape(curve.tips[i]) if curve.tips else f"{escape(curve.label)}: {fv:.3f}"
            parts.append(f'<circle class="pt" cx="{_f(frame.x(xs[i]))}" cy="{_f(frame.y(fv))}" r="3" '
                         f'fill="{color}"><title>{tip}</title></circle>')
    parts.append("</g>")
    return "".join(parts)


def curve_chart(
    xs: Sequence[float],
    curves: Sequence[Curve],
    *,
    title: str,
    y_title: str,
    y_fmt: Callable[[float], str] = lambda v: f"{v:.2f}",
    x_title: str = "second of the ad",
    marks: Sequence[Mark] = (),
    y_range: tuple[float, float] = (0.0, 1.0),
) -> str:
    """An SVG line chart over ``xs`` (seconds) with values in ``y_range``, one line per curve in its
    colour, 95% bands where given, and rings at ``marks``. Returns the ``<svg>`` markup."""
    frame = _Frame(max(xs, default=1.0), y_range)
    points = len(xs) * len(curves) <= MAX_POINTS
    body = _axes(frame, y_fmt, x_title, y_title)
    body += [_curve(frame, xs, c, points) for c in curves]
    for m in marks:
        body.append(f'<g class="mark" data-series="{escape(m.label)}"><circle cx="{_f(frame.x(m.x))}" '
                    f'cy="{_f(frame.y(m.y))}" r="7"/><title>{escape(m.tip)}</title></g>')
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def filmstrip(x_max: float, frames: Sequence[tuple[float, str]], *, title: str) -> str:
    """The ad's frames (``(second, data URI)``) on the x axis of :func:`curve_chart` (same width and
    margins, so each frame sits under its second of the curves above), the second under each."""
    frame = _Frame(max(x_max, 1.0))
    spacing = min((frame.x(b) - frame.x(a) for (a, _), (b, _) in pairwise(frames)),
                  default=float(WIDTH - LEFT - RIGHT))
    w = min(96.0, spacing - 4)
    h = w * 9 / 16
    body = []
    for second, uri in frames:
        cx = frame.x(second)  # under the second's tick (the frame is the middle of that second)
        x = max(cx - w / 2, 0.0)
        body.append(f'<g class="frame"><line class="axis" x1="{_f(cx)}" y1="0" x2="{_f(cx)}" y2="6"/>'
                    f'<image href="{escape(uri)}" x="{_f(x)}" y="6" width="{_f(w)}" height="{_f(h)}" '
                    f'preserveAspectRatio="xMidYMid slice"/><text class="tick" x="{_f(cx)}" y="{_f(h + 20)}" '
                    f'text-anchor="middle">{second:g} s</text><title>ad frame at second {second:g}</title></g>')
    height = int(h + 26)
    return (f'<svg class="filmstrip" viewBox="0 0 {WIDTH} {height}" overflow="visible" role="img" '
            f'aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def bar_chart(items: Sequence[tuple[str, float | None]], *, title: str, fmt: Callable[[float], str]) -> str:
    """Horizontal bars for values in [0, 1] (one per label, in the label's colour, value at the end)."""
    row, label_w, bar_w = 22, 92, 240
    height = row * len(items) + 8
    body = []
    for i, (label, value) in enumerate(items):
        y = 4 + i * row
        v = finite(value)
        body.append(f'<text class="tick" x="{label_w - 6}" y="{y + 11}" text-anchor="end">{escape(label)}</text>')
        body.append(f'<rect class="track" x="{label_w}" y="{y + 3}" width="{bar_w}" height="14"/>')
        if v is not None:
            width = _f(bar_w * min(max(v, 0.0), 1.0))
            body.append(f'<rect class="bar" data-series="{escape(label)}" x="{label_w}" y="{y + 3}" '
                        f'width="{width}" height="14" fill="{color_of(label)}"><title>{escape(label)}: '
                        f"{fmt(v)}</title></rect>")
        text = fmt(v) if v is not None else "—"
        body.append(f'<text class="tick" x="{label_w + bar_w + 6}" y="{y + 11}">{escape(text)}</text>')
    return (f'<svg class="bars" viewBox="0 0 {label_w + bar_w + 70} {height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(body)}</svg>')


def ci_bar(value: float | None, low: float | None, high: float | None, lo: float, hi: float) -> str:
    """A small interval plot (whisker from low to high, dot at value) on the scale [lo, hi], so the
    overlap of confidence intervals in a table is visible at a glance. Empty when value is None."""
    v, a, b = finite(value), finite(low), finite(high)
    if v is None or hi <= lo:
        return ""
    w, pad = 120.0, 5.0

    def px(x: float) -> str:
        return _f(pad + (w - 2 * pad) * (min(max(x, lo), hi) - lo) / (hi - lo))

    whisker = f'<line class="ci" x1="{px(a)}" y1="7" x2="{px(b)}" y2="7"/>' if a is not None and b is not None else ""
    return (f'<svg class="cibar" viewBox="0 0 {int(w)} 14" aria-hidden="true">'
            f'<line class="axis" x1="{_f(pad)}" y1="13" x2="{_f(w - pad)}" y2="13"/>{whisker}'
            f'<circle cx="{px(v)}" cy="7" r="3.2"/></svg>')
