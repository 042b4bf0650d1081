"""The campaign report: one self-contained ``report.html`` a marketer can open offline.

:func:`write_report` turns ``summary.json`` (as a mapping) and ``series.csv`` (as a DataFrame) into a
page with the verdict ("which ad worked better"), per-ad KPI cards with 95% CIs, per-second emotion
curves with 95% bands (inline SVG, :mod:`.report_svg`), key-moment thumbnails (the JPEGs under
``out_dir/thumbs/`` embedded as data URIs), photo-test distributions, and the ranking, comparison,
segment and QC tables (:mod:`.report_tables`). CSS and a small script (legend toggles) are inlined
from ``report_assets/``; a Content-Security-Policy forbids any network access. Every user string
(ad, viewer, attribute names from the manifest) is escaped; missing values show as ``—``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InvalidInput
from .report_ads import ad_section
from .report_svg import finite
from .report_tables import (
    comparisons_table,
    esc,
    fmt_ci,
    fmt_kpi,
    fmt_p,
    kpi_name,
    mapping_of,
    qc_table,
    ranking_table,
    rows_of,
    segments_table,
)

SERIES_COLUMNS = ("ad", "second", "emotion", "mean", "ci_low", "ci_high", "share_expressing", "n_viewers")
PRIMARY_KPIS = ("valence_index", "positive_share", "expressiveness")
ASSETS = Path(__file__).with_name("report_assets")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def write_report(summary: Mapping[str, Any], series: pd.DataFrame, out_dir: Path) -> Path:
    """Writes ``out_dir/report.html`` and returns its path.

    ``summary`` follows the summary.json schema (docs/campaigns.md); missing optional parts are
    left out of the page. ``series`` is series.csv (long format, columns ``ad, second, emotion, mean,
    ci_low, ci_high, share_expressing, n_viewers``); it may be empty (photos-only campaigns).
    Thumbnails named by ``key_moments[].thumbnail`` are read from ``out_dir``; a missing one shows a
    placeholder. Raises :class:`~emolens.errors.InvalidInput` when ``summary`` has no ``ads`` list
    or ``series`` lacks a required column.
    """
    _check(summary, series)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    path.write_text(render_report(summary, series, out_dir), encoding="utf-8")
    return path


def _check(summary: Mapping[str, Any], series: pd.DataFrame) -> None:
    if not isinstance(summary, Mapping):
        raise InvalidInput(f"summary must be a mapping (summary.json), got {type(summary).__name__}")
    if not isinstance(summary.get("ads"), list):
        raise InvalidInput("summary has no 'ads' list: not a campaign summary.json")
    if not isinstance(series, pd.DataFrame):
        raise InvalidInput(f"series must be a pandas DataFrame (series.csv), got {type(series).__name__}")
    missing = [c for c in SERIES_COLUMNS if c not in series.columns]
    if missing and len(series):
        raise InvalidInput(f"series (series.csv) lacks the column(s) {', '.join(missing)}")


def render_report(summary: Mapping[str, Any], series: pd.DataFrame, out_dir: Path) -> str:
    """The report's HTML text (see :func:`write_report`, which also checks the input)."""
    ads = rows_of(summary.get("ads"))
    labels = [str(x) for x in mapping_of(summary.get("model")).get("labels") or []]
    ad_html = "".join(ad_section(i, ad, _series_of(series, ad.get("name")), labels, out_dir)
                      for i, ad in enumerate(ads))
    compare = ""
    if len(ads) >= 2:
        compare = (f'<section id="comparisons"><h2>Pairwise comparisons</h2><p class="muted">Permutation test over '
                   f"viewers (two-sided); a p-value below 0.05 means the difference is unlikely to be chance."
                   f"</p>{comparisons_table(summary.get('comparisons'))}</section>")
    body = (f"{_header(summary)}{_verdict_section(summary, ads)}{_nav(ads)}{ad_html}"
            f'<section id="ranking"><h2>Ranking per KPI</h2>{ranking_table(summary.get("ranking"))}</section>'
            f"{compare}"
            f'<section id="segments"><h2>Segments</h2>{segments_table(summary.get("segments"))}</section>'
            f'<section id="qc"><h2>Quality control</h2>{_qc_intro(summary)}{qc_table(summary.get("qc"))}</section>'
            f"{_footer(summary)}")
    title = f"Campaign report: {summary.get('campaign', 'campaign')}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{esc(title)}</title>'
            f"<style>{_asset('report.css')}</style></head><body>{body}"
            f"<script>{_asset('report.js')}</script></body></html>\n")


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def _series_of(series: pd.DataFrame, ad: object) -> pd.DataFrame:
    if not len(series) or "ad" not in series.columns:
        return series.iloc[0:0]
    return series[series["ad"].astype(str) == str(ad)]


def _header(summary: Mapping[str, Any]) -> str:
    model, settings = mapping_of(summary.get("model")), mapping_of(summary.get("settings"))
    definitions = mapping_of(summary.get("definitions"))
    generated = str(summary.get("generated_at") or "")
    facts = [("Generated", generated.replace("T", " ")[:19] or "—"),
             ("Model", f"{model.get('name', '—')} ({', '.join(map(str, model.get('labels', [])))})"),
             ("emolens", summary.get("emolens_version", "—"))]
    fact_html = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in facts)
    set_html = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in settings.items())
    def_html = "".join(f"<dt>{esc(kpi_name(str(k)))} <code>{esc(k)}</code></dt><dd>{esc(v)}</dd>"
                       for k, v in definitions.items())
    return (f'<header><p class="kicker">Campaign report</p><h1>{esc(summary.get("campaign", "campaign"))}</h1>'
            f'<dl class="facts">{fact_html}</dl>'
            f'<details><summary>Settings</summary><dl class="facts">{set_html}</dl></details>'
            f'<details open><summary>Definitions of the measures</summary><dl class="defs">{def_html}</dl>'
            f'<p class="muted">Percentages are the fractions of summary.json × 100. 95% CIs are bootstrap '
            f"intervals over viewers.</p></details></header>")


def _nav(ads: list[Mapping[str, Any]]) -> str:
    links = [f'<a href="#ad-{i}">{esc(ad.get("name"))}</a>' for i, ad in enumerate(ads)]
    links += ['<a href="#ranking">Ranking</a>']
    if len(ads) >= 2:
        links.append('<a href="#comparisons">Comparisons</a>')
    links += ['<a href="#segments">Segments</a>', '<a href="#qc">Quality control</a>']
    return f'<nav>{" · ".join(links)}</nav>'


def _verdict_section(summary: Mapping[str, Any], ads: list[Mapping[str, Any]]) -> str:
    return f'<section id="verdict" class="verdict"><h2>Which ad worked better?</h2>{verdict(summary, ads)}</section>'


def _primary_ranking(summary: Mapping[str, Any]) -> tuple[str, list[Mapping[str, Any]]] | None:
    """The first primary KPI whose ranking has at least two ads with a value."""
    by_kpi = {str(r.get("kpi")): r for r in rows_of(summary.get("ranking"))}
    for kpi in (*PRIMARY_KPIS, *by_kpi):
        rows = [r for r in rows_of(by_kpi.get(kpi, {}).get("rows")) if finite(r.get("value")) is not None]
        if len(rows) >= 2:
            return kpi, sorted(rows, key=lambda r: finite(r.get("rank")) or 1e9)
    return None


def _p_value(summary: Mapping[str, Any], kpi: str, a: object, b: object) -> float | None:
    for c in rows_of(summary.get("comparisons")):
        if c.get("kpi") == kpi and {str(c.get("a")), str(c.get("b"))} == {str(a), str(b)}:
            return finite(c.get("p_value"))
    return None


def _overlap(x: Mapping[str, Any], y: Mapping[str, Any]) -> bool | None:
    a0, a1, b0, b1 = (finite(v) for v in (x.get("ci_low"), x.get("ci_high"), y.get("ci_low"), y.get("ci_high")))
    if a0 is None or a1 is None or b0 is None or b1 is None:
        return None
    return a0 <= b1 and b0 <= a1


def verdict(summary: Mapping[str, Any], ads: list[Mapping[str, Any]]) -> str:
    """The verdict paragraph (HTML): the leader on the primary KPI (valence index, else positive
    share, else expressiveness, else any ranked KPI) against the runner-up, and whether the difference
    is statistically significant (p < 0.05 by the permutation test; without a p-value, whether the
    95% CIs are apart)."""
    if len(ads) < 2:
        name = esc(ads[0].get("name")) if ads else "no ad"
        return f'<p class="lead">Only one ad (<b>{name}</b>) in this campaign: there is nothing to compare.</p>'
    found = _primary_ranking(summary)
    if found is None:
        return ('<p class="lead">No verdict: fewer than two ads have kept viewers with a value to compare '
                "(see Quality control).</p>")
    kpi, rows = found
    top, second = rows[0], rows[1]
    p, overlap = _p_value(summary, kpi, top.get("ad"), second.get("ad")), _overlap(top, second)
    significant = p < 0.05 if p is not None else overlap is False
    figures = (f"{esc(kpi_name(kpi).lower())} {fmt_kpi(kpi, top.get('value'))} "
               f"(95% CI {fmt_ci(kpi, top.get('ci_low'), top.get('ci_high'))}) against "
               f"{fmt_kpi(kpi, second.get('value'))} ({fmt_ci(kpi, second.get('ci_low'), second.get('ci_high'))}) "
               f"for <b>{esc(second.get('ad'))}</b>")
    if significant:
        why = f"p = {fmt_p(p)}" if p is not None else "the 95% CIs do not overlap"
        text = (f"<b>{esc(top.get('ad'))}</b> worked better: {figures}. "
                f"The difference is statistically significant ({why}).")
    else:
        reasons = [f"p = {fmt_p(p)} ≥ 0.05"] if p is not None else []
        reasons += ["the 95% CIs overlap"] if overlap else []
        text = (f"<b>{esc(top.get('ad'))}</b> scored higher, but the difference is not statistically significant "
                f"({'; '.join(reasons) or 'no test available'}): {figures}. Treat the ads as tied on this measure.")
    return f'<p class="lead" data-kpi="{esc(kpi)}">{text}</p>{_leads(summary)}'


def _leads(summary: Mapping[str, Any]) -> str:
    """How many KPIs each ad ranks first on (a tie for first place counts for nobody)."""
    firsts: dict[str, int] = {}
    total = ties = 0
    for entry in rows_of(summary.get("ranking")):
        rows = sorted((r for r in rows_of(entry.get("rows")) if finite(r.get("value")) is not None),
                      key=lambda r: finite(r.get("rank")) or 1e9)
        if len(rows) < 2:
            continue
        total += 1
        if finite(rows[0].get("value")) == finite(rows[1].get("value")):
            ties += 1
            continue
        firsts[str(rows[0].get("ad"))] = firsts.get(str(rows[0].get("ad")), 0) + 1
    if not total:
        return ""
    parts = [f"<b>{esc(ad)}</b> ranks first on {n} of {total}" for ad, n in sorted(firsts.items(), key=lambda x: -x[1])]
    parts += [f"tied on {ties}"] if ties else []
    return f'<p class="muted">Across the KPIs: {"; ".join(parts)} (see the ranking table).</p>'


def _qc_intro(summary: Mapping[str, Any]) -> str:
    qc = rows_of(summary.get("qc"))
    excluded = [q for q in qc if q.get("status") == "excluded"]
    return (f'<p class="muted">{len(qc) - len(excluded)} of {len(qc)} recordings kept, {len(excluded)} excluded. '
            f"A recording is excluded when too few seconds show a face, the picture is too dark, or the face "
            f"is too blurred (thresholds under Settings).</p>")


def _footer(summary: Mapping[str, Any]) -> str:
    files = mapping_of(summary.get("files"))
    listed = "".join(f"<li><code>{esc(v)}</code> <span class='muted'>({esc(k)})</span></li>" for k, v in files.items())
    return (f'<footer><h2>Data files</h2><p class="muted">Every figure above comes from these files in the same '
            f"folder: summary.json (KPIs, ranking, comparisons, segments, QC) and series.csv (curves).</p>"
            f"<ul>{listed}</ul></footer>")

