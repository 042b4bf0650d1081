"""One ad's section of the campaign report: KPI cards, emotion curves, key moments, photo test."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .report_svg import Curve, Mark, bar_chart, color_of, curve_chart, finite
from .report_tables import KPI_INFO, esc, fmt_ci, fmt_kpi, fmt_value, kpi_name, mapping_of, path_cell, rows_of
from .report_timeline import attention_chart, file_link, moment_text, notes_html, valence_chart
from .report_viewers import viewer_details
from .verdict import DIRECTION_TEXT, MIN_VIEWERS, role_of

NO_CURVES = ("No per-second curves for this ad: it has no video recording with a kept viewer "
             "(photo test only, or every recording was excluded).")


def data_uri(path: Path) -> str | None:
    """``data:image/jpeg;base64,...`` of a JPEG file, or None when it is missing or not a JPEG."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(b"\xff\xd8"):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class AdData:
    """One ad's rows of the tables behind the report (each may be empty)."""

    series: pd.DataFrame
    timeline: pd.DataFrame
    kpis: pd.DataFrame
    seconds: pd.DataFrame
    attributes: tuple[str, ...] = ()


def _who(ad: Mapping[str, Any]) -> str:
    """Who is behind the figures, in words: video viewers measured, photo sets, exclusions."""
    total, kept = finite(ad.get("viewers_total")), finite(ad.get("viewers_kept"))
    n, photos = finite(ad.get("kpi_viewers")), int(finite(ad.get("photo_sets")) or 0)
    if n is None:  # an older summary.json
        return f"viewers kept: {esc(ad.get('viewers_kept', '—'))} of {esc(ad.get('viewers_total', '—'))}"
    parts = [f"{int(n)} viewer{'s' if n != 1 else ''} measured on video (the figures below)"]
    if photos:
        parts.append(f"{photos} photo set{'s' if photos != 1 else ''} (photo test only)")
    if total is not None and kept is not None and total > kept:
        parts.append(f"{int(total - kept)} recording{'s' if total - kept != 1 else ''} excluded")
    return ", ".join(parts)


def ad_section(index: int, ad: Mapping[str, Any], data: AdData, labels: Sequence[str], out_dir: Path,
               norms: object = None) -> str:
    """The HTML ``<section>`` of one ad (``data`` holds only this ad's rows)."""
    name = ad.get("name")
    duration = finite(ad.get("duration_s"))
    facts = [f"duration: {'—' if duration is None else f'{duration:g} s'}", _who(ad)]
    if ad.get("video"):
        facts.append(f"video: <code>{path_cell(ad.get('video'))}</code>")
    small = ""
    if ad.get("small_group"):
        small = (f'<p class="warn">Fewer than {MIN_VIEWERS} viewers: no confidence interval is shown, and no '
                 f"difference with another ad can be called significant.</p>")
    return (f'<section class="ad" id="ad-{index}" data-ad="{esc(name)}"><h2>Ad: {esc(name)}</h2>'
            f'<p class="muted">{" · ".join(facts)}</p>{small}'
            f"{notes_html(ad, data.timeline, mapping_of(norms))}"
            f"<h3>Key figures</h3>{kpi_cards(ad.get('kpis'), name, norms, ad.get('kpi_viewers'))}"
            f'<h3>Valence second by second</h3>{valence_chart(ad, data.timeline, out_dir, data_uri)}'
            f"<h3>Attention</h3>{attention_chart(ad, data.timeline)}"
            f"{_charts(ad, data.series, labels)}{_moments(ad, out_dir)}"
            f"{viewer_details(str(name), data.kpis, data.seconds, labels, data.attributes, _videos(ad))}"
            f"{_photos(ad, labels)}</section>")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def norm_text(norm: object) -> str:
    """"62nd percentile among 8 earlier ads" (or why there is none) from a norms entry."""
    entry = mapping_of(norm)
    if not entry:
        return ""
    base, pct = int(finite(entry.get("base")) or 0), finite(entry.get("percentile"))
    if pct is None:
        return "no norm yet (no earlier ad with this model)" if base == 0 else ""
    return f"{_ordinal(round(pct))} percentile among {base} earlier ad{'s' if base != 1 else ''}"


def _videos(ad: Mapping[str, Any]) -> dict[str, object]:
    return {str(k): v for k, v in mapping_of(ad.get("viewer_videos")).items()}


def kpi_cards(kpis: object, ad_name: object, norms: object = None, viewers: object = None) -> str:
    """One card per KPI: value, its direction, 95% CI (or why there is none), the second of the
    peak for peak_happiness, and the percentile among earlier ads when norms are given."""
    if not isinstance(kpis, Mapping) or not kpis:
        return '<p class="muted">No KPIs for this ad (no kept viewer).</p>'
    order = [k for k in KPI_INFO if k in kpis] + [k for k in kpis if k not in KPI_INFO]
    n = finite(viewers)
    cards = []
    for kpi in order:
        entry = kpis[kpi] if isinstance(kpis[kpi], Mapping) else {"value": kpis[kpi]}
        role, direction = role_of(kpi)
        extra = ""
        if finite(entry.get("second")) is not None:
            extra = f'<div class="kpi-extra">at second {int(finite(entry.get("second")) or 0)}</div>'
        ci = f"95% CI {fmt_ci(kpi, entry.get('ci_low'), entry.get('ci_high'))}"
        if finite(entry.get("ci_low")) is None and n is not None and 0 < n < MIN_VIEWERS:
            ci = f"no interval: {int(n)} viewer{'s' if n != 1 else ''} (fewer than {MIN_VIEWERS})"
        norm = norm_text(mapping_of(norms).get(kpi))
        norm_html = f'<div class="kpi-norm">{esc(norm)}</div>' if norm else ""
        cards.append(
            f'<div class="kpi role-{esc(role)}" data-kpi="{esc(kpi)}"><div class="kpi-name">{esc(kpi_name(kpi))}</div>'
            f'<div class="kpi-value">{fmt_kpi(kpi, entry.get("value"))}</div>'
            f'<div class="kpi-dir">{esc(DIRECTION_TEXT[direction])}'
            f'{"" if role == "outcome" else " · never a win"}</div>'
            f'<div class="kpi-ci">{esc(ci)}</div>{extra}{norm_html}</div>')
    return f'<div class="kpis">{"".join(cards)}</div>'



def _emotions(series: pd.DataFrame, labels: Sequence[str]) -> list[str]:
    present = [str(e) for e in pd.unique(series["emotion"].astype(str))]
    return [x for x in labels if x in present] + [e for e in present if e not in labels]


def _column(rows: pd.DataFrame, name: str) -> list[float | None]:
    return [finite(v) for v in rows[name].tolist()]


def _curves(series: pd.DataFrame, labels: Sequence[str], xs: list[int]) -> tuple[list[Curve], list[Curve]]:
    """(mean curves with bands, share-expressing curves), one per emotion, reindexed on ``xs``."""
    means, shares = [], []
    for emo in _emotions(series, labels):
        rows = series[series["emotion"].astype(str) == emo].drop_duplicates("second").set_index("second").reindex(xs)
        mean, low, high = _column(rows, "mean"), _column(rows, "ci_low"), _column(rows, "ci_high")
        share, n = _column(rows, "share_expressing"), _column(rows, "n_viewers")
        nn = ["—" if v is None else str(int(v)) for v in n]
        tips = [f"{emo} · second {s}: {'—' if m is None else f'{m:.3f}'} (95% band "
                f"{'—' if a is None else f'{a:.3f}'} to {'—' if b is None else f'{b:.3f}'}), n = {k}"
                for s, m, a, b, k in zip(xs, mean, low, high, nn, strict=True)]
        share_tips = [f"{emo} · second {s}: {'—' if v is None else f'{v * 100:.1f}%'} of {k} viewers expressing"
                      for s, v, k in zip(xs, share, nn, strict=True)]
        means.append(Curve(emo, mean, low, high, tips))
        shares.append(Curve(emo, share, tips=share_tips))
    return means, shares


def _legend(emotions: Sequence[str]) -> str:
    items = "".join(f'<button type="button" class="legend-item" data-series="{esc(e)}" aria-pressed="true">'
                    f'<span class="swatch" style="background:{color_of(e)}"></span>{esc(e)}</button>'
                    for e in emotions)
    return f'<div class="legend" aria-label="click an emotion to hide or show it">{items}</div>'


def _charts(ad: Mapping[str, Any], series: pd.DataFrame, labels: Sequence[str]) -> str:
    if not len(series):
        return f'<p class="muted">{NO_CURVES}</p>'
    series = series.assign(second=pd.to_numeric(series["second"], errors="coerce")).dropna(subset=["second"])
    if not len(series):
        return f'<p class="muted">{NO_CURVES}</p>'
    series = series.assign(second=series["second"].astype(int))
    duration = finite(ad.get("duration_s"))
    last = max(int(series["second"].max()), math.ceil(duration) - 1 if duration else 0)
    xs = list(range(last + 1))
    means, shares = _curves(series, labels, xs)
    names = [c.label for c in means]
    marks = [Mark(float(s), float(v), str(m.get("emotion")), moment_text(m))
             for m in rows_of(ad.get("key_moments"))
             if str(m.get("emotion")) in names and (s := finite(m.get("second"))) is not None
             and (v := finite(m.get("value"))) is not None]
    name = esc(ad.get("name"))
    n = pd.to_numeric(series["n_viewers"], errors="coerce")
    lo, hi = (None, None) if n.isna().all() else (int(n.min()), int(n.max()))
    n_text = "—" if lo is None else str(lo) if lo == hi else f"{lo} to {hi}"
    mean_svg = curve_chart(xs, means, title=f"Mean emotion probability per second, ad {ad.get('name')}",
                           y_title="mean probability", marks=marks)
    share_svg = curve_chart(xs, shares, title=f"Share of viewers expressing each emotion, ad {ad.get('name')}",
                            y_title="share of viewers", y_fmt=lambda v: f"{v * 100:.0f}%")
    return (f'<h3>Emotions second by second</h3><figure class="chart-box" data-chart="mean">{_legend(names)}'
            f"{mean_svg}<figcaption>Mean probability over viewers with a face in each second, with its 95% band "
            f"(Student t over viewers); rings mark the key moments of each emotion (valence moments are on the "
            f"valence chart). Viewers with a face per second: {n_text}. Data: {file_link('series.csv')} "
            f'(ad {name})</figcaption></figure><figure class="chart-box" data-chart="share">{_legend(names)}'
            f"{share_svg}<figcaption>Share of viewers whose probability of the emotion is at or above the "
            f"expressing threshold. Data: {file_link('series.csv')}</figcaption></figure>")


def _thumb(thumbnail: object, out_dir: Path) -> str:
    """The key moment's frame as an embedded image, or a placeholder (no file, unreadable, or a
    path that leaves the output folder)."""
    uri = None
    if isinstance(thumbnail, str) and thumbnail:
        root = out_dir.resolve()
        path = (root / thumbnail).resolve()
        if path.is_relative_to(root):
            uri = data_uri(path)
    if uri is None:
        return '<div class="thumb placeholder" role="img" aria-label="no frame available">no frame</div>'
    return f'<img class="thumb" src="{uri}" alt="ad frame" title="{esc(thumbnail)}">'


def _moments(ad: Mapping[str, Any], out_dir: Path) -> str:
    moments = rows_of(ad.get("key_moments"))
    if not moments:
        return ""
    cards = "".join(
        f'<figure class="moment">{_thumb(m.get("thumbnail"), out_dir)}<figcaption>'
        f'<span class="swatch" style="background:{color_of(str(m.get("emotion")))}"></span>{moment_text(m)}'
        f"</figcaption></figure>"
        for m in sorted(moments, key=lambda m: finite(m.get("second")) or 0.0))
    return (f'<h3>Key moments</h3><div class="moments">{cards}</div>'
            f'<p class="muted">The seconds where an emotion (or valence) peaked or dipped most, with the ad\'s frame '
            f"at that second.</p>")


def _photos(ad: Mapping[str, Any], labels: Sequence[str]) -> str:
    photos = ad.get("photos")
    if not isinstance(photos, Mapping):
        return ""
    mean, share = mapping_of(photos.get("mean")), mapping_of(photos.get("dominant_share"))
    order = [x for x in labels if x in mean or x in share]
    order += [str(k) for k in (*mean, *share) if str(k) not in order]
    mean_svg = bar_chart([(k, mean.get(k)) for k in order], title="mean probability over photos with a face",
                         fmt=lambda v: f"{v:.2f}")
    share_svg = bar_chart([(k, share.get(k)) for k in order], title="share of photos with this dominant emotion",
                          fmt=lambda v: f"{v * 100:.0f}%")
    return (f'<h3>Photo test</h3><p class="muted">{esc(photos.get("n_photos", "—"))} photos; no face found in '
            f'{fmt_value(photos.get("no_face_rate"), "pct")} of them.</p><div class="photo-charts">'
            f"<figure><figcaption>Mean probability (photos with a face)</figcaption>{mean_svg}</figure>"
            f"<figure><figcaption>Dominant emotion (share of photos)</figcaption>{share_svg}</figure></div>")
