"""The report's timeline of one ad: the valence curve with its key moments and the ad's filmstrip
under the same time axis, the attention chart, and the plain-language notes.

Everything is drawn from ``timeline.csv`` (:mod:`.attention`) and the ad's entry of summary.json.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .report_svg import Curve, Mark, color_of, curve_chart, filmstrip, finite
from .report_tables import esc, mapping_of, rows_of

DataUri = Callable[[Path], str | None]
"""Reads an image file into a ``data:`` URI (None when it cannot)."""


def file_link(name: str) -> str:
    """A link to an output file next to report.html."""
    return f'<a class="file" href="{esc(name)}">{esc(name)}</a>'


def _col(rows: pd.DataFrame, name: str) -> list[float | None]:
    return [finite(v) for v in rows[name].tolist()] if name in rows else [None] * len(rows)


def valence_marks(ad: Mapping[str, Any]) -> list[Mark]:
    """Rings for the valence key moments (the emotion ones go on the emotion chart)."""
    return [Mark(float(s), float(v), "valence", moment_text(m)) for m in rows_of(ad.get("key_moments"))
            if str(m.get("emotion")) == "valence" and (s := finite(m.get("second"))) is not None
            and (v := finite(m.get("value"))) is not None]


def moment_text(m: Mapping[str, Any]) -> str:
    emotion, kind = str(m.get("emotion")), str(m.get("kind"))
    v = finite(m.get("value"))
    value = "—" if v is None else (f"{v:+.2f}".replace("-", "−") if emotion == "valence" else f"{v:.2f}")
    what = "highest" if kind == "peak" else "lowest"
    return f"second {esc(m.get('second'))}: {what} {esc(emotion)} ({value})"


def _frames(ad: Mapping[str, Any], out_dir: Path, data_uri: DataUri) -> list[tuple[float, str]]:
    root = out_dir.resolve()
    out = []
    for f in rows_of(ad.get("filmstrip")):
        second, rel = finite(f.get("second")), f.get("thumbnail")
        if second is None or not isinstance(rel, str):
            continue
        path = (root / rel).resolve()
        uri = data_uri(path) if path.is_relative_to(root) else None
        if uri is not None:
            out.append((second, uri))
    return out


def valence_chart(ad: Mapping[str, Any], timeline: pd.DataFrame, out_dir: Path, data_uri: DataUri) -> str:
    """The valence curve with its 95% band, the valence key moments ringed, and the filmstrip."""
    if not len(timeline) or not any(v is not None for v in _col(timeline, "valence")):
        return ""
    xs = [int(s) for s in timeline["second"]]
    tips = [f"second {s}: valence {'—' if v is None else f'{v:+.2f}'} ({n} viewers)"
            for s, v, n in zip(xs, _col(timeline, "valence"), timeline["n_viewers"].tolist(), strict=True)]
    curve = Curve("valence", _col(timeline, "valence"), _col(timeline, "valence_ci_low"),
                  _col(timeline, "valence_ci_high"), tips)
    svg = curve_chart(xs, [curve], title=f"Valence per second, ad {ad.get('name')}", y_title="valence (−1 to +1)",
                      marks=valence_marks(ad), y_range=(-1.0, 1.0), y_fmt=lambda v: f"{v:+.1f}")
    frames = _frames(ad, out_dir, data_uri)
    strip = filmstrip(max(xs, default=1), frames, title=f"frames of ad {ad.get('name')}") if frames else ""
    return (f'<figure class="chart-box" data-chart="valence">{svg}{strip}<figcaption>Valence: +1 when every '
            f"face shows happiness, −1 when every face shows a negative emotion, 0 neutral or surprised; mean "
            f"over viewers with its 95% band. Rings: the valence key moments."
            f"{' The strip shows the ad at those seconds.' if frames else ''} Data: {file_link('timeline.csv')}"
            f"</figcaption></figure>")


def attention_chart(ad: Mapping[str, Any], timeline: pd.DataFrame) -> str:
    """Share of viewers looking, retention and engagement per second, or why there is none."""
    if not ad.get("attention_available") or not len(timeline):
        return ('<p class="muted attention-unavailable">Attention is unavailable for this ad: the analysis has '
                "no head pose (an engine or cache without it), so nothing is reported rather than a false 0.</p>")
    xs = [int(s) for s in timeline["second"]]
    curves = []
    for name, col in (("share looking", "share_looking"), ("retention", "retention"), ("engagement", "engagement")):
        values = _col(timeline, col)
        tips = [f"{name} · second {s}: {'—' if v is None else f'{v * 100:.0f}%'}" for s, v in zip(xs, values,
                                                                                                   strict=True)]
        curves.append(Curve(name, values, tips=tips))
    svg = curve_chart(xs, curves, title=f"Attention per second, ad {ad.get('name')}", y_title="share of viewers",
                      y_fmt=lambda v: f"{v * 100:.0f}%")
    legend = "".join(f'<button type="button" class="legend-item" data-series="{esc(c.label)}" aria-pressed="true">'
                     f'<span class="swatch" style="background:{color_of(c.label)}"></span>{esc(c.label)}</button>'
                     for c in curves)
    return (f'<figure class="chart-box" data-chart="attention"><div class="legend">{legend}</div>{svg}<figcaption>'
            f"Share looking: viewers whose head faces the screen for at least half of the second. Retention: "
            f"viewers who have not yet looked away for 2 seconds in a row. Engagement: mean expressiveness "
            f"(1 − p(neutral)) of the viewers looking. Data: {file_link('timeline.csv')}</figcaption></figure>")


def notes(ad: Mapping[str, Any], timeline: pd.DataFrame, norms: Mapping[str, Any]) -> list[str]:
    """Plain-language sentences about one ad (numbers from summary.json and timeline.csv)."""
    out = []
    n = int(finite(ad.get("kpi_viewers")) or 0)
    if n == 0:
        return ["No viewer of this ad could be measured on video (see quality control)."]
    val = [(s, v) for s, v in zip(timeline["second"].tolist(), _col(timeline, "valence"), strict=True)
           if v is not None] if len(timeline) else []
    if val:
        hi, lo = max(val, key=lambda x: x[1]), min(val, key=lambda x: x[1])
        if hi[1] - lo[1] < 0.05:
            out.append(f"Valence stayed level through the ad, at about {hi[1]:+.2f}.")
        else:
            out.append(f"Viewers felt best at second {hi[0]} (valence {hi[1]:+.2f}) and worst at second {lo[0]} "
                       f"({lo[1]:+.2f}).")
    if ad.get("attention_available") and len(timeline):
        first = finite(mapping_of(mapping_of(ad.get("kpis")).get("attention_first3s")).get("value"))
        if first is not None:
            out.append(f"In the first 3 seconds viewers looked at the screen {first * 100:.0f}% of the time.")
        ret = [(s, r) for s, r in zip(timeline["second"].tolist(), _col(timeline, "retention"), strict=True)
               if r is not None]
        drop = next((s for s, r in ret if r < 0.5), None)
        out.append(f"Half the viewers had looked away for good by second {drop}." if drop is not None
                   else "At least half the viewers kept watching to the end.")
    pcts = {k: finite(mapping_of(v).get("percentile")) for k, v in norms.items()}
    if (p := pcts.get("valence_index")) is not None:
        base = int(finite(mapping_of(norms.get("valence_index")).get("base")) or 0)
        out.append(f"Its valence index is higher than {p:.0f}% of the {base} earlier ads analysed with this model.")
    return out


def notes_html(ad: Mapping[str, Any], timeline: pd.DataFrame, norms: Mapping[str, Any]) -> str:
    items = "".join(f"<li>{esc(t)}</li>" for t in notes(ad, timeline, norms))
    return f'<ul class="notes">{items}</ul>' if items else ""
