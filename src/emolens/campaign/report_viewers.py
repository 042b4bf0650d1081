"""The report's per-viewer drill-down: one folded row per kept viewer of an ad, with their KPIs,
attributes and their own valence and attention curves (from kpis.csv and viewer_seconds.csv)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..labels import VALENCE
from .report_svg import Curve, curve_chart, finite
from .report_tables import esc, fmt_kpi, kpi_name
from .report_timeline import file_link

SHOWN = ("valence_index", "positive_share", "expressiveness", "attention", "face_found_rate")


def _valence(rows: pd.DataFrame, labels: Sequence[str]) -> list[float | None]:
    present = [lb for lb in labels if lb in rows]
    if not present:
        return [None] * len(rows)
    weights = np.array([VALENCE.get(lb, 0) for lb in present], dtype=float)
    values = rows[present].to_numpy(dtype=float) @ weights
    face = rows["face_found"].to_numpy(dtype=float) > 0 if "face_found" in rows else np.ones(len(rows), bool)
    return [finite(v) if f else None for v, f in zip(values, face, strict=True)]


def _video(rel: object) -> str:
    if not isinstance(rel, str) or not rel.startswith("videos/") or ".." in rel:
        return ""
    return (f'<video class="viewer-video" controls muted preload="none" src="{esc(rel)}" '
            f'title="annotated recording">{file_link(rel)}</video>')


def viewer_details(ad: str, kpis: pd.DataFrame, seconds: pd.DataFrame, labels: Sequence[str],
                   attributes: Sequence[str], videos: Mapping[str, object] | None = None) -> str:
    """``<details>`` per viewer of ``ad`` (``kpis``/``seconds``: that ad's rows of kpis.csv and
    viewer_seconds.csv; ``videos``: viewer -> annotated video path); empty when there is none."""
    if not len(kpis):
        return ""
    parts = []
    for _, k in kpis.iterrows():
        viewer = str(k["viewer"])
        rows = seconds[seconds["viewer"].astype(str) == viewer].sort_values("second") if len(seconds) else seconds
        figures = " · ".join(f"{kpi_name(x).lower()} {fmt_kpi(x, k.get(x))}" for x in SHOWN if x in k
                             and finite(k.get(x)) is not None)
        attrs = ", ".join(f"{a}: {k.get(a)}" for a in attributes if a in k and str(k.get(a)) not in ("", "nan"))
        chart = ""
        if len(rows):
            xs = [int(s) for s in rows["second"]]
            curves = [Curve("valence", _valence(rows, labels))]
            look = [finite(v) for v in rows["looking"]] if "looking" in rows else []
            if any(v is not None for v in look):
                curves.append(Curve("share looking", [None if v is None else 2 * v - 1 for v in look],
                                    tips=[f"second {s}: looking {'—' if v is None else f'{v * 100:.0f}%'}"
                                          for s, v in zip(xs, look, strict=True)]))
            chart = curve_chart(xs, curves, title=f"viewer {viewer}, ad {ad}", y_title="valence",
                                y_range=(-1.0, 1.0), y_fmt=lambda v: f"{v:+.1f}")
        parts.append(f'<details class="viewer" data-viewer="{esc(viewer)}"><summary><b>{esc(viewer)}</b> '
                     f'<span class="muted">{esc(attrs)}</span> — {figures}</summary>'
                     f'<div class="viewer-body">{chart}{_video((videos or {}).get(viewer))}</div></details>')
    return (f'<h3>Viewer by viewer</h3><div class="viewers">{"".join(parts)}</div><p class="muted">Each viewer\'s '
            f"valence per second (blue) and, when the head pose is known, the share of the second spent looking at "
            f"the screen (green, drawn from −1 = 0% to +1 = 100%). Data: {file_link('kpis.csv')}, "
            f"{file_link('viewer_seconds.csv')}</p>")
