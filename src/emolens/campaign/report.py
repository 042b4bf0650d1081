"""The campaign report: one self-contained ``report.html`` a marketer can open offline.

:func:`write_report` turns ``summary.json`` (as a mapping) and ``series.csv`` (as a DataFrame) into a
page with the verdict (the sentence of :func:`emolens.campaign.verdict.decide`, as the CLI prints it),
what the model is worth (:mod:`.report_model`), and per ad: notes in plain words, KPI cards (direction,
95% CI, percentile among the norms), the valence curve with its key moments and the ad's filmstrip and
the attention chart (:mod:`.report_timeline`), per-second emotion curves with 95% bands (inline SVG,
:mod:`.report_svg`), key-moment thumbnails (the JPEGs under ``out_dir/thumbs/`` embedded as data URIs),
a per-viewer drill-down (:mod:`.report_viewers`), photo-test distributions; then the ranking,
comparison, segment and QC tables (:mod:`.report_tables`) and links to the data files. CSS and a
small script (legend toggles) are inlined from ``report_assets/``; a Content-Security-Policy forbids
any network access (only the annotated viewer videos next to the report may load). Every user string
(ad, viewer, attribute names from the manifest) is escaped; missing values show as ``—``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .. import fsio
from ..errors import InvalidInput
from .kpis import AD_KPIS as KPI_COLUMNS
from .report_ads import AdData, ad_section
from .report_model import model_section
from .report_svg import finite
from .report_tables import (
    comparisons_table,
    esc,
    fmt_kpi,
    kpi_name,
    mapping_of,
    qc_table,
    ranking_table,
    rows_of,
    segments_table,
)
from .report_timeline import file_link
from .verdict import DIRECTION_TEXT, MIN_VIEWERS, ROLE_TEXT, decide

SERIES_COLUMNS = ("ad", "second", "emotion", "mean", "ci_low", "ci_high", "share_expressing", "n_viewers")
ASSETS = Path(__file__).with_name("report_assets")
CSP = ("default-src 'none'; img-src data:; media-src 'self'; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'")


def write_report(summary: Mapping[str, Any], series: pd.DataFrame, out_dir: Path, *,
                 timeline: pd.DataFrame | None = None, viewer_seconds: pd.DataFrame | None = None,
                 viewer_kpis: pd.DataFrame | None = None) -> Path:
    """Writes ``out_dir/report.html`` and returns its path.

    ``summary`` follows the summary.json schema (docs/campaigns.md); missing optional parts are
    left out of the page. ``series`` is series.csv (long format, columns ``ad, second, emotion, mean,
    ci_low, ci_high, share_expressing, n_viewers``); it may be empty (photos-only campaigns).
    Thumbnails named by ``key_moments[].thumbnail`` are read from ``out_dir``; a missing one shows a
    placeholder. ``timeline``, ``viewer_seconds`` and ``viewer_kpis`` (timeline.csv,
    viewer_seconds.csv, kpis.csv) add the valence and attention charts and the per-viewer
    drill-down; without them those parts are left out. Raises
    :class:`~emolens.errors.InvalidInput` when ``summary`` has no ``ads`` list or ``series`` lacks a
    required column.
    """
    _check(summary, series)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html = render_report(summary, series, out_dir, timeline=timeline, viewer_seconds=viewer_seconds,
                         viewer_kpis=viewer_kpis)
    return fsio.write_text(out_dir / "report.html", html)  # whole or not at all (OutputError when it cannot)


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


def render_report(summary: Mapping[str, Any], series: pd.DataFrame, out_dir: Path, *,
                  timeline: pd.DataFrame | None = None, viewer_seconds: pd.DataFrame | None = None,
                  viewer_kpis: pd.DataFrame | None = None) -> str:
    """The report's HTML text (see :func:`write_report`, which also checks the input)."""
    ads = rows_of(summary.get("ads"))
    labels = [str(x) for x in mapping_of(summary.get("model")).get("labels") or []]
    norms = mapping_of(mapping_of(summary.get("norms")).get("ads"))
    empty = pd.DataFrame()
    attributes = tuple(c for c in (viewer_kpis.columns if viewer_kpis is not None else [])
                       if c not in ("ad", "viewer", *KPI_COLUMNS))
    ad_html = "".join(
        ad_section(i, ad, AdData(_series_of(series, ad.get("name")), _series_of(_or(timeline, empty), ad.get("name")),
                                 _series_of(_or(viewer_kpis, empty), ad.get("name")),
                                 _series_of(_or(viewer_seconds, empty), ad.get("name")), attributes),
                   labels, out_dir, norms.get(str(ad.get("name"))))
        for i, ad in enumerate(ads))
    compare = ""
    if len(ads) >= 2:
        compare = (f'<section id="comparisons"><h2>Pairwise comparisons</h2><p class="muted">Permutation test over '
                   f"viewers (two-sided); a p-value below 0.05 means the difference is unlikely to be chance."
                   f"</p>{comparisons_table(summary.get('comparisons'))}</section>")
    body = (f"{_header(summary)}{_verdict_section(summary, ads)}{model_section(summary.get('model'))}"
            f"{_nav(ads)}{ad_html}"
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


def _or(df: pd.DataFrame | None, default: pd.DataFrame) -> pd.DataFrame:
    return df if df is not None else default


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
            f'<details><summary>Definitions of the measures</summary><dl class="defs">{def_html}</dl>'
            f'<p class="muted">95% CIs are bootstrap intervals over viewers; groups of fewer than {MIN_VIEWERS} '
            f"viewers get none.</p></details></header>")


def _nav(ads: list[Mapping[str, Any]]) -> str:
    links = [f'<a href="#ad-{i}">{esc(ad.get("name"))}</a>' for i, ad in enumerate(ads)]
    links += ['<a href="#ranking">Ranking</a>']
    if len(ads) >= 2:
        links.append('<a href="#comparisons">Comparisons</a>')
    links += ['<a href="#segments">Segments</a>', '<a href="#qc">Quality control</a>']
    return f'<nav>{" · ".join(links)}</nav>'


def _verdict_section(summary: Mapping[str, Any], ads: list[Mapping[str, Any]]) -> str:
    return f'<section id="verdict" class="verdict"><h2>Which ad worked better?</h2>{verdict(summary, ads)}</section>'


def verdict_of(summary: Mapping[str, Any]) -> Mapping[str, Any]:
    """summary.json's ``verdict``; for an older summary without one, the same function
    (:func:`emolens.campaign.verdict.decide`) applied to its ranking and comparisons."""
    found = summary.get("verdict")
    if isinstance(found, Mapping) and isinstance(found.get("text"), str):
        return found
    counts: dict[str, int] = {}
    for a in rows_of(summary.get("ads")):
        counts[str(a.get("name"))] = 0
    for entry in rows_of(summary.get("ranking")):
        for r in rows_of(entry.get("rows")):
            n, ad = finite(r.get("n")), str(r.get("ad"))
            if ad in counts:
                counts[ad] = max(counts[ad], int(n or 0))
    confidence = finite(mapping_of(summary.get("settings")).get("confidence")) or 0.95
    return decide(rows_of(summary.get("ranking")), rows_of(summary.get("comparisons")), counts, confidence)


def verdict(summary: Mapping[str, Any], ads: list[Mapping[str, Any]]) -> str:
    """The verdict (HTML): the sentence of :func:`emolens.campaign.verdict.decide`, word for word
    what the CLI prints and summary.json holds, then one line per KPI with its direction and role
    and whether it separates the ads at the stated level."""
    v = verdict_of(summary)
    outcome = esc(v.get("outcome"))
    lead = (f'<p class="lead" data-outcome="{outcome}" data-winner="{esc(v.get("winner") or "")}">'
            f"{esc(v.get('text'))}</p>")
    rows = []
    for k in rows_of(v.get("kpis")):
        kpi = str(k.get("kpi"))
        values = mapping_of(k.get("values"))
        shown = ", ".join(f"{esc(a)} {fmt_kpi(kpi, x)}" for a, x in values.items())
        better = mapping_of(k.get("better_than"))
        result = str(k.get("result"))
        if better:
            result += ": " + "; ".join(f"{a} > {', '.join(map(str, bs))}" for a, bs in better.items())
        rows.append(f'<tr data-kpi="{esc(kpi)}" data-result="{esc(k.get("result"))}"><td>{esc(kpi_name(kpi))}</td>'
                    f'<td>{esc(DIRECTION_TEXT.get(str(k.get("direction")), ""))}</td>'
                    f'<td>{esc(ROLE_TEXT.get(str(k.get("role")), ""))}</td><td>{shown}</td><td>{esc(result)}</td></tr>')
    level = finite(v.get("confidence")) or 0.95
    table = ""
    if rows and len(ads) >= 2:
        table = (f'<details class="verdict-kpis"><summary>Every measure at the {level * 100:g}% level</summary>'
                 f'<div class="table-wrap"><table><thead><tr><th>Measure</th><th>Direction</th><th>Role</th>'
                 f'<th>Values</th><th>Result</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
                 f'<p class="muted">"better" needs a permutation test with p below {1 - level:g} in the '
                 f"measure's direction; anything else is a tie. Data quality and attention are never wins.</p>"
                 f"</details>")
    return lead + table


def _qc_intro(summary: Mapping[str, Any]) -> str:
    qc = rows_of(summary.get("qc"))
    excluded = [q for q in qc if q.get("status") == "excluded"]
    return (f'<p class="muted">{len(qc) - len(excluded)} of {len(qc)} recordings kept, {len(excluded)} excluded. '
            f"A recording is excluded when too few seconds show a face, the picture is too dark, or the face "
            f"is too blurred (thresholds under Settings).</p>")


def _footer(summary: Mapping[str, Any]) -> str:
    files = mapping_of(summary.get("files"))
    what = {"summary_json": "every figure of this page", "series_csv": "emotion curves per ad and second",
            "timeline_csv": "valence and attention per ad and second", "kpis_csv": "KPIs per viewer",
            "viewer_seconds_csv": "each viewer second by second", "qc_csv": "quality control per recording"}
    listed = "".join(f"<li>{file_link(str(v))} <span class='muted'>{esc(what.get(str(k), ''))}</span></li>"
                     for k, v in files.items() if str(v).endswith((".csv", ".json", ".parquet")))
    return (f'<footer><h2>Data files</h2><p class="muted">The tables behind this page, in the same folder '
            f"(Parquet copies hold the same rows):</p><ul>{listed}</ul></footer>")
