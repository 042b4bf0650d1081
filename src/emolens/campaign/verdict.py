"""The campaign's verdict: one function, read by the CLI, ``summary.json`` and ``report.html`` alike.

:func:`decide` turns the ranking and the pairwise tests into a plain-language answer to "which ad
worked better?" with these rules:

* every KPI has a *role* and a *direction* (:data:`KPI_ROLES`): ``outcome`` KPIs (valence, shares,
  expressiveness, peak happiness) can make an ad better; ``quality`` KPIs (face found) and
  ``attention`` KPIs (looking at the screen, engagement) are reported but never count as wins;
  ``descriptive`` ones (neutral share) have no better direction at all;
* an ad is *better* than another on a KPI only when the permutation test says so at the stated
  level (p < 1 - confidence, 0.05 by default) and the difference points in the KPI's direction;
  a KPI without a test (peak happiness, a group under 2 viewers) is never a win;
* equal values are ties (they share a rank); no significant difference is a tie too;
* the *winner* is the ad better than every other ad on the primary KPI (:data:`PRIMARY_KPI`);
* ads with fewer than :data:`MIN_VIEWERS` viewers are flagged in the text and in ``small_groups``
  (their KPIs carry no confidence interval, see :mod:`.kpis`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

PRIMARY_KPI = "valence_index"
MIN_VIEWERS = 5
"""Groups (ads, segments) with fewer viewers are flagged and get no confidence interval."""

# kpi -> (role, direction). direction: "higher" / "lower" is better, "none": neither.
KPI_ROLES: dict[str, tuple[str, str]] = {
    "valence_index": ("outcome", "higher"),
    "positive_share": ("outcome", "higher"),
    "negative_share": ("outcome", "lower"),
    "expressiveness": ("outcome", "higher"),
    "peak_happiness": ("outcome", "higher"),
    "neutral_share": ("descriptive", "none"),
    "face_found_rate": ("quality", "higher"),
    "attention": ("attention", "higher"),
    "attention_first3s": ("attention", "higher"),
    "engagement": ("attention", "higher"),
}
DIRECTION_TEXT = {"higher": "higher is better", "lower": "lower is better", "none": "no better direction"}
ROLE_TEXT = {
    "outcome": "outcome: can count as a win",
    "quality": "data quality: reported, never a win",
    "attention": "attention: reported, never a win",
    "descriptive": "descriptive: neither higher nor lower is better",
}
_PCT = {"positive_share", "negative_share", "neutral_share", "face_found_rate", "attention", "attention_first3s"}


def role_of(kpi: str) -> tuple[str, str]:
    """(role, direction) of a KPI; an unknown KPI is descriptive with no direction."""
    return KPI_ROLES.get(kpi, ("descriptive", "none"))


def fmt(kpi: str, value: float | None, diff: bool = False) -> str:
    """A KPI value as the verdict text writes it (percentages for shares, 3 decimals otherwise)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if kpi in _PCT:
        return f"{value * 100:+.1f} pp" if diff else f"{value * 100:.1f}%"
    return f"{value:+.3f}" if diff or kpi == "valence_index" else f"{value:.3f}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _num(v: object) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _test(comparisons: Sequence[Mapping[str, Any]], kpi: str, a: str, b: str) -> tuple[float | None, float | None]:
    """(p-value, difference a - b) of the pair's test on ``kpi`` (None when not tested)."""
    for c in comparisons:
        if c.get("kpi") != kpi:
            continue
        if (str(c.get("a")), str(c.get("b"))) == (a, b):
            return _num(c.get("p_value")), _num(c.get("difference"))
        if (str(c.get("a")), str(c.get("b"))) == (b, a):
            d = _num(c.get("difference"))
            return _num(c.get("p_value")), None if d is None else -d
    return None, None


def beats(comparisons: Sequence[Mapping[str, Any]], kpi: str, a: str, b: str, alpha: float) -> bool:
    """Whether ``a`` is significantly better than ``b`` on an outcome ``kpi`` at level ``alpha``."""
    role, direction = role_of(kpi)
    if role != "outcome" or direction == "none":
        return False
    p, d = _test(comparisons, kpi, a, b)
    if p is None or d is None or p >= alpha or d == 0:
        return False
    return d > 0 if direction == "higher" else d < 0


def _kpi_entry(kpi: str, rows: list[Mapping[str, Any]], ads: list[str],
               comparisons: Sequence[Mapping[str, Any]], alpha: float) -> dict[str, Any]:
    role, direction = role_of(kpi)
    values = {str(r.get("ad")): _num(r.get("value")) for r in rows}
    better = {a: [b for b in ads if b != a and beats(comparisons, kpi, a, b, alpha)] for a in ads}
    leaders = [a for a in ads if len(ads) > 1 and len(better[a]) == len(ads) - 1]
    tested = any(_test(comparisons, kpi, a, b)[0] is not None for a in ads for b in ads if a < b)
    if role != "outcome":
        result = "not a win" if role != "descriptive" else "descriptive"
    elif leaders:
        result = "better"
    elif not tested:
        result = "untested"
    else:
        result = "tie"
    return {"kpi": kpi, "role": role, "direction": direction, "values": values,
            "better_than": {a: b for a, b in better.items() if b}, "winner": leaders[0] if leaders else None,
            "result": result}


def decide(ranking: Sequence[Mapping[str, Any]], comparisons: Sequence[Mapping[str, Any]],
           counts: Mapping[str, int], confidence: float = 0.95) -> dict[str, Any]:
    """The verdict (JSON-ready) from summary.json's ``ranking`` and ``comparisons`` and the number
    of viewers behind each ad's KPIs (``counts``).

    Returns ``{"level", "confidence", "primary_kpi", "outcome", "winner", "text", "kpis",
    "small_groups", "min_viewers"}``: ``outcome`` is ``winner`` (one ad better than every other on
    the primary KPI), ``tie`` (no significant difference on it), ``partial`` (some differences,
    no single winner), ``no_comparison`` (fewer than two ads with viewers) or ``single_ad``;
    ``text`` is the sentence every output shows; ``kpis`` holds one entry per KPI with its role,
    direction, values, which ads are significantly better than which, and its ``result``."""
    alpha = 1.0 - confidence
    ads = [str(a) for a in counts]
    with_values = [a for a in ads if counts.get(a, 0) > 0]
    by_kpi = {str(e.get("kpi")): [r for r in e.get("rows", []) if isinstance(r, Mapping)] for e in ranking}
    kpis = [_kpi_entry(k, rows, with_values, comparisons, alpha) for k, rows in by_kpi.items()]
    small = [{"ad": a, "viewers": int(counts[a])} for a in ads if counts.get(a, 0) < MIN_VIEWERS]
    out: dict[str, Any] = {"level": round(alpha, 6), "confidence": confidence, "primary_kpi": PRIMARY_KPI,
                           "min_viewers": MIN_VIEWERS, "small_groups": small, "kpis": kpis, "winner": None}
    if len(ads) < 2:
        out["outcome"] = "single_ad"
        out["text"] = f"Only one ad ({ads[0] if ads else 'none'}) in this campaign: there is nothing to compare."
        return out
    if len(with_values) < 2:
        out["outcome"] = "no_comparison"
        out["text"] = ("No verdict: fewer than two ads have viewers whose faces could be measured "
                       "(see the quality control table).")
        return out
    primary = next((k for k in kpis if k["kpi"] == PRIMARY_KPI), None)
    out["text"] = _text(primary, kpis, with_values, comparisons, alpha, confidence) + _small_text(small)
    if primary is not None and primary["winner"] is not None:
        out["outcome"], out["winner"] = "winner", primary["winner"]
    elif primary is not None and primary["better_than"]:
        out["outcome"] = "partial"
    else:
        out["outcome"] = "tie"
    return out


def _text(primary: Mapping[str, Any] | None, kpis: Sequence[Mapping[str, Any]], ads: list[str],
          comparisons: Sequence[Mapping[str, Any]], alpha: float, confidence: float) -> str:
    level = f"{confidence * 100:g}%"
    if primary is None:
        return f"No verdict: the campaign has no {PRIMARY_KPI}."
    kpi = PRIMARY_KPI
    values = primary["values"]
    shown = ", ".join(f"{a} {fmt(kpi, values.get(a))}" for a in ads)
    if primary["winner"] is not None:
        w = primary["winner"]
        tests = "; ".join(f"vs {b}: difference {fmt(kpi, _test(comparisons, kpi, w, b)[1], True)}, "
                          f"p = {fmt_p(_test(comparisons, kpi, w, b)[0])}" for b in ads if b != w)
        text = (f"{w} worked better: its valence index is significantly higher at the {level} level "
                f"({shown}; {tests}).")
    elif primary["better_than"]:
        pairs = "; ".join(f"{a} > {', '.join(bs)}" for a, bs in primary["better_than"].items())
        text = (f"No single winner on valence index at the {level} level ({shown}); significant "
                f"differences: {pairs}.")
    else:
        ps = [p for a in ads for b in ads if a < b and (p := _test(comparisons, kpi, a, b)[0]) is not None]
        why = (f"smallest p = {fmt_p(min(ps))} >= {alpha:g}" if ps else "no test was possible")
        same = len({values.get(a) for a in ads}) == 1
        text = (f"Tie: {'the ads have the same valence index' if same else 'no ad is significantly better'} "
                f"at the {level} level ({shown}; {why}).")
    others = [k for k in kpis if k["kpi"] != PRIMARY_KPI and k["result"] == "better"]
    if others:
        text += " Also significant: " + "; ".join(f"{k['winner']} on {k['kpi'].replace('_', ' ')} "
                                                   f"({DIRECTION_TEXT[k['direction']]})"
                                                   for k in others) + "."
    return text


def _small_text(small: Sequence[Mapping[str, Any]]) -> str:
    if not small:
        return ""
    groups = ", ".join(f"{g['ad']} ({g['viewers']})" for g in small)
    return (f" Caution: fewer than {MIN_VIEWERS} viewers for {groups}: too few for a firm conclusion, "
            f"so no confidence interval is given.")
