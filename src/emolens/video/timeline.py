"""Emotion timelines: one PNG per track, each label's probability over video time.

The rows are read back from ``frames.csv`` one at a time (nothing from the stream is kept in
memory) and averaged into at most ``max_points`` time bins per track, so a ten-hour video draws
as quickly as a short one. Gaps where the face was off screen stay gaps in the lines. Figures use
matplotlib's object API on the Agg canvas (no pyplot, no global backend), so this runs headless.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..inference.annotate import emotion_color_hex
from .tracksummary import TrackSummary

DPI = 100


class _Bins:
    """Time-binned sums of one track's probabilities."""

    def __init__(self, track: TrackSummary, n_labels: int, max_points: int) -> None:
        self.start = track.first_seen_s
        n = max(1, min(max_points, track.frames))
        span = max(track.last_seen_s - track.first_seen_s, 1e-9)
        self.width = span / n
        self.n = n
        self.sums = np.zeros((n + 1, n_labels))
        self.counts = np.zeros(n + 1)

    def add(self, t: float, probs: np.ndarray) -> None:
        i = min(self.n, max(0, int((t - self.start) / self.width)))
        self.sums[i] += probs
        self.counts[i] += 1

    def series(self) -> tuple[np.ndarray, np.ndarray]:
        """(bin times, mean probabilities per bin, NaN where the face was not seen)."""
        times = self.start + (np.arange(self.n + 1) + 0.5) * self.width
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self.sums / self.counts[:, None]
        return times, means


def select_tracks(tracks: Sequence[TrackSummary], min_on_screen_s: float, max_plots: int) -> list[TrackSummary]:
    """The tracks worth a timeline: on screen at least ``min_on_screen_s`` with 2 frames or more
    (every track when ``min_on_screen_s`` is 0; the single longest one when none qualifies), the
    longest ``max_plots`` of them, by id."""
    long = [t for t in tracks if t.on_screen_s >= min_on_screen_s and (t.frames >= 2 or min_on_screen_s <= 0)]
    if not long and tracks:
        long = [max(tracks, key=lambda t: (t.on_screen_s, t.frames))]
    chosen = sorted(long, key=lambda t: -t.on_screen_s)[:max_plots]
    return sorted(chosen, key=lambda t: t.track_id)


def plot_timelines(
    csv_path: Path,
    tracks: Sequence[TrackSummary],
    labels: Sequence[str],
    out_dir: Path,
    *,
    min_on_screen_s: float = 0.5,
    max_plots: int = 50,
    max_points: int = 1000,
) -> list[Path]:
    """Draw ``out_dir/track_<id>.png`` for the tracks :func:`select_tracks` picks; returns the paths."""
    chosen = select_tracks(tracks, min_on_screen_s, max_plots)
    if not chosen:
        return []
    bins = {t.track_id: _Bins(t, len(labels), max_points) for t in chosen}
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        head = next(reader)
        t_col, id_col = head.index("time_s"), head.index("track_id")
        cols = [head.index(lb) for lb in labels]
        for row in reader:
            b = bins.get(int(row[id_col]))
            if b is not None:
                b.add(float(row[t_col]), np.array([float(row[c]) for c in cols]))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for track in chosen:
        times, means = bins[track.track_id].series()
        paths.append(_draw(track, labels, times, means, out_dir / f"track_{track.track_id}.png"))
    return paths


def _draw(track: TrackSummary, labels: Sequence[str], times: np.ndarray, means: np.ndarray, path: Path) -> Path:
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax = fig.add_subplot()
    marker = "o" if np.count_nonzero(~np.isnan(means[:, 0])) < 3 else None
    for j, lb in enumerate(labels):
        ax.plot(times, means[:, j], label=lb, color=emotion_color_hex(lb), linewidth=1.4, marker=marker)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("video time (s)")
    ax.set_ylabel("probability")
    ax.set_title(f"track {track.track_id}: {track.on_screen_s:.1f} s on screen, "
                 f"mostly {track.top_emotion} ({track.emotion_shares[track.top_emotion]:.0%})")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI)
    return path
