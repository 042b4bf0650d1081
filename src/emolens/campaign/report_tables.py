"""Number formatting and the HTML tables of the campaign report (ranking, comparisons, segments, QC).

Every string that reaches the page goes through :func:`esc`; every number through :func:`fmt_kpi`
and friends, which show ``—`` for a missing value (None/NaN) instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .report_svg import ci_bar, finite
from .verdict import DIRECTION_TEXT, role_of

DASH = "—"

# name -> (display name, format kind). Kinds: pct (fraction shown as %), prob (0..1, 2 decimals),
# signed (-1..1 with sign). KPIs not listed here are shown by name with 3 decimals.
KPI_INFO: dict[str, tuple[str, str]] = {
    "face_found_rate": ("Face found", "pct"),
    "positive_share": ("Positive share", "pct"),
    "negative_share": ("Negative share", "pct"),
    "neutral_share": ("Neutral share", "pct"),
    "expressiveness": ("Expressiveness", "prob"),
    "valence_index": ("Valence index", "signed"),
    "peak_happiness": ("Peak happiness", "prob"),
    "attention": ("Attention", "pct"),
    "attention_first3s": ("Attention, first 3 s", "pct"),
    "engagement": ("Engagement", "prob"),
}
KPI_RANGE = {"pct": (0.0, 1.0), "prob": (0.0, 1.0), "signed": (-1.0, 1.0)}


def esc(value: object) -> str:
    """HTML-escaped text of any value (quotes included, so it is safe in attributes too)."""
    return escape("" if value is None else str(value), quote=True)


def rows_of(value: object) -> list[Mapping[str, Any]]:
    """The mappings of a list from summary.json (anything else is ignored, never a crash)."""
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        return []
    return [v for v in value if isinstance(v, Mapping)]


def mapping_of(value: object) -> Mapping[str, Any]:
    """``value`` when it is a mapping (a JSON object of summary.json), else an empty one."""
    return value if isinstance(value, Mapping) else {}


def kpi_name(kpi: str) -> str:
    return KPI_INFO.get(kpi, (kpi.replace("_", " ").capitalize(), "num"))[0]


def kpi_kind(kpi: str) -> str:
    return KPI_INFO.get(kpi, (kpi, "num"))[1]


def fmt_value(value: object, kind: str) -> str:
    """A value in its display format: ``pct`` 0.8333 -> ``83.3%``, ``prob`` -> ``0.83``,
    ``signed`` -> ``+0.83``, anything else 3 decimals; ``—`` when missing."""
    v = finite(value)
    if v is None:
        return DASH
    if kind == "pct":
        return f"{v * 100:.1f}%"
    if kind == "prob":
        return f"{v:.2f}"
    if kind == "signed":
        return f"{v:+.2f}".replace("-", "−")
    return f"{v:.3f}"


def fmt_kpi(kpi: str, value: object) -> str:
    return fmt_value(value, kpi_kind(kpi))


def fmt_diff(kpi: str, value: object) -> str:
    """A difference between two ads: percentage points for shares, signed decimals otherwise."""
    v = finite(value)
    if v is None:
        return DASH
    kind = kpi_kind(kpi)
    if kind == "pct":
        return f"{v * 100:+.1f} pp".replace("-", "−")
    return f"{v:+.{3 if kind == 'num' else 2}f}".replace("-", "−")


def fmt_ci(kpi: str, low: object, high: object, *, diff: bool = False) -> str:
    """``low – high`` in the KPI's format, or ``—`` when either end is missing."""
    if finite(low) is None or finite(high) is None:
        return DASH
    f = fmt_diff if diff else fmt_kpi
    return f"{f(kpi, low)} to {f(kpi, high)}"


def fmt_p(value: object) -> str:
    v = finite(value)
    if v is None:
        return DASH
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def fmt_num(value: object, digits: int = 1) -> str:
    v = finite(value)
    return DASH if v is None else f"{v:.{digits}f}"


def path_cell(path: object) -> str:
    """A file path shown by its name, the full path as a tooltip (recordings often sit deep)."""
    if path is None or str(path) == "":
        return DASH
    text = str(path).replace("\\", "/")
    return f'<span title="{esc(path)}">{esc(text.rstrip("/").rsplit("/", 1)[-1])}</span>'


def _table(head: Sequence[str], rows: Sequence[str], cls: str, files: Sequence[str]) -> str:
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join(rows) if rows else f'<tr><td colspan="{len(head)}" class="muted">no rows</td></tr>'
    return (f'<div class="table-wrap"><table class="{cls}"><thead><tr>{th}</tr></thead>'
            f'<tbody>{body}</tbody></table></div><p class="source">Data: '
            f'{", ".join(f"<a class=file href={chr(34)}{esc(f)}{chr(34)}>{esc(f)}</a>" for f in files)}</p>')


def ranking_table(ranking: object) -> str:
    """One block of rows per KPI, best ad first, value, 95% CI (text and interval plot), n."""
    rows = []
    for entry in rows_of(ranking):
        kpi = str(entry.get("kpi", ""))
        lo, hi = KPI_RANGE.get(kpi_kind(kpi), (0.0, 1.0))
        role, direction = role_of(kpi)
        better = DIRECTION_TEXT[direction] + ("" if role == "outcome" else ", never a win")
        ranked = sorted(rows_of(entry.get("rows")), key=lambda r: finite(r.get("rank")) or 1e9)
        for i, r in enumerate(ranked):
            first = (f'<th scope="rowgroup" rowspan="{len(ranked)}">{esc(kpi_name(kpi))}'
                     f'<br><span class="muted">{better}</span></th>') if i == 0 else ""
            rows.append(
                f'<tr data-kpi="{esc(kpi)}">{first}<td class="num">{esc(r.get("rank"))}</td>'
                f'<td>{esc(r.get("ad"))}</td><td class="num">{fmt_kpi(kpi, r.get("value"))}</td>'
                f'<td class="num">{fmt_ci(kpi, r.get("ci_low"), r.get("ci_high"))}</td>'
                f'<td>{ci_bar(r.get("value"), r.get("ci_low"), r.get("ci_high"), lo, hi)}</td>'
                f'<td class="num">{esc(r.get("n", DASH))}</td></tr>')
    head = ("KPI", "Rank", "Ad", "Value", "95% CI", "Interval", "Viewers")
    return _table(head, rows, "ranking", ["summary.json"])


def comparisons_table(comparisons: object) -> str:
    """Every pair of ads per KPI: difference (a − b), its 95% CI, permutation-test p-value."""
    rows = []
    for c in rows_of(comparisons):
        kpi = str(c.get("kpi", ""))
        p = finite(c.get("p_value"))
        verdict = DASH if p is None else ("significant" if p < 0.05 else "not significant")
        if p is not None and role_of(kpi)[0] != "outcome":
            verdict += " (never a win)"
        cls = ' class="sig"' if p is not None and p < 0.05 else ""
        rows.append(
            f'<tr{cls}><td>{esc(kpi_name(kpi))}</td><td>{esc(c.get("a"))}</td><td>{esc(c.get("b"))}</td>'
            f'<td class="num">{fmt_diff(kpi, c.get("difference"))}</td>'
            f'<td class="num">{fmt_ci(kpi, c.get("ci_low"), c.get("ci_high"), diff=True)}</td>'
            f'<td class="num">{fmt_p(c.get("p_value"))}</td><td>{verdict}</td></tr>')
    head = ("KPI", "Ad A", "Ad B", "Difference (A − B)", "95% CI of the difference", "p-value", "At p < 0.05")
    return _table(head, rows, "comparisons", ["summary.json"])


def segments_table(segments: object) -> str:
    """Per attribute value and ad: viewers and the KPI values (no CI: segments are small)."""
    entries = rows_of(segments)
    kpis: list[str] = []
    for s in entries:
        kpis += [str(k) for k in mapping_of(s.get("kpis")) if k not in kpis]
    rows = []
    for s in entries:
        values = mapping_of(s.get("kpis"))
        cells = "".join(f'<td class="num">{fmt_kpi(k, values.get(k))}</td>' for k in kpis)
        rows.append(f'<tr><td>{esc(s.get("attribute"))}</td><td class="nowrap">{esc(s.get("value"))}</td>'
                    f'<td>{esc(s.get("ad"))}</td><td class="num">{esc(s.get("viewers"))}'
                    f'{" (few)" if s.get("small") else ""}</td>{cells}</tr>')
    head = ("Attribute", "Value", "Ad", "Viewers", *(kpi_name(k) for k in kpis))
    note = ('<p class="muted">Segments are small: "(few)" marks fewer than 5 viewers, whose figures are anecdotes; '
            "no interval is shown for them.</p>") if any(s.get("small") for s in entries) else ""
    return note + _table(head, rows, "segments", ["summary.json"])


def qc_table(qc: object) -> str:
    """Every recording, kept or excluded, with the reason and the measured QC figures."""
    rows = []
    for q in rows_of(qc):
        status = str(q.get("status", ""))
        cls = "excluded" if status == "excluded" else "kept"
        rows.append(
            f'<tr class="{cls}"><td>{esc(q.get("viewer"))}</td><td>{esc(q.get("ad"))}</td>'
            f'<td class="path">{path_cell(q.get("recording"))}</td>'
            f'<td><span class="status {cls}">{esc(status)}</span></td>'
            f'<td>{esc(q.get("reason") or "")}</td><td class="num">{fmt_value(q.get("face_found_rate"), "pct")}</td>'
            f'<td class="num">{fmt_num(q.get("brightness"))}</td><td class="num">{fmt_num(q.get("sharpness"))}</td>'
            f'<td class="num">{esc(q.get("seconds", DASH))}</td></tr>')
    head = ("Viewer", "Ad", "Recording", "Status", "Reason", "Face found", "Brightness", "Sharpness", "Seconds")
    return _table(head, rows, "qc", ["qc.csv", "summary.json"])
