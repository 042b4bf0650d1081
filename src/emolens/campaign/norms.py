"""Norms: every analysed ad's KPIs in a local SQLite file, and each new ad's percentile among them.

    store = NormsStore.open("norms.sqlite")             # created when missing
    base = store.percentiles("spring", ads, model_id)  # before recording, so an ad never meets itself
    store.record("spring", ads, model="fer7", model_id="fer7:1a2b...", analysed_at="2026-...")

One row per (campaign, ad, model identity) in ``ads`` (re-analysing a campaign replaces its rows),
its KPI values in ``kpis``. The *norm base* of an ad is every ad of the store from *another*
campaign analysed with the *same model identity* (model name + SHA-256 of the model file), so a
changed model starts a separate norm base. The percentile of a value ``x`` among the base values
``v`` is ``100 · (#{v < x} + #{v = x} / 2) / n`` (mid-rank: equal values meet in the middle); it is
None when the base is empty. Direction is not applied: for ``negative_share`` a high percentile
means more negative than most earlier ads.

A file that is not an SQLite database, or an SQLite database that is not a norms store, raises
:class:`NormsStoreError` naming the file; nothing is overwritten.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import DatasetError

SCHEMA = "emolens-norms-1"
COLUMNS = ("campaign", "ad", "analysed_at", "model", "model_id", "viewers")
_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ads (
    id INTEGER PRIMARY KEY, campaign TEXT NOT NULL, ad TEXT NOT NULL, analysed_at TEXT NOT NULL,
    model TEXT NOT NULL, model_id TEXT NOT NULL, viewers INTEGER NOT NULL,
    UNIQUE (campaign, ad, model_id));
CREATE TABLE IF NOT EXISTS kpis (
    ad_id INTEGER NOT NULL REFERENCES ads(id) ON DELETE CASCADE, kpi TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (ad_id, kpi));
"""


class NormsStoreError(DatasetError):
    """The norms file cannot be used (not SQLite, not a norms store, unreadable, bad import file)."""


def default_path() -> Path:
    """``$EMOLENS_NORMS``, else ``$XDG_DATA_HOME/emolens/norms.sqlite`` (``~/.local/share`` by default)."""
    if os.environ.get("EMOLENS_NORMS"):
        return Path(os.environ["EMOLENS_NORMS"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "emolens" / "norms.sqlite"


def percentile(x: float, base: Sequence[float]) -> float | None:
    """Mid-rank percentile of ``x`` among ``base`` (None when ``base`` is empty or ``x`` undefined)."""
    if not base or not math.isfinite(x):
        return None
    below = sum(v < x for v in base)
    equal = sum(v == x for v in base)
    return 100.0 * (below + 0.5 * equal) / len(base)


class NormsStore:
    """An open norms file (see the module docstring). Use :meth:`open`; close with :meth:`close`
    or a ``with`` block."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path, self._conn = path, conn

    @classmethod
    def open(cls, path: str | Path) -> NormsStore:
        """Open (or create) the store at ``path``; raises :class:`NormsStoreError` when the file is
        not a norms store."""
        p = Path(path)
        if p.exists() and not p.is_file():
            raise NormsStoreError(f"{p}: the norms store is not a file")
        existed = p.is_file() and p.stat().st_size > 0
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(p), timeout=10)
        except (OSError, sqlite3.Error) as err:
            raise NormsStoreError(f"{p}: cannot open the norms store: {err}") from err
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if existed and "meta" not in tables:
                raise NormsStoreError(f"{p}: an SQLite database, but not an emolens norms store")
            with conn:
                conn.executescript(_DDL)
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA,))
            found = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if found is None or found[0] != SCHEMA:
                raise NormsStoreError(f"{p}: norms schema {found[0] if found else None!r}, expected {SCHEMA!r}")
            conn.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as err:
            conn.close()
            raise NormsStoreError(f"{p}: not a readable norms database ({err})") from err
        except NormsStoreError:
            conn.close()
            raise
        return cls(p, conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> NormsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._conn
        except sqlite3.DatabaseError as err:
            raise NormsStoreError(f"{self.path}: norms database error ({err})") from err

    def record(self, campaign: str, ads: Iterable[Mapping[str, Any]], *, model: str, model_id: str,
               analysed_at: str) -> int:
        """Store (or replace) one row per ad with viewers: ``ads`` items hold ``name``, ``viewers``
        and ``kpis`` (``{kpi: value}``, undefined values skipped). Returns the rows written."""
        n = 0
        with self._guard() as conn, conn:
            for ad in ads:
                viewers = int(ad.get("viewers") or 0)
                if viewers <= 0:
                    continue
                conn.execute("DELETE FROM ads WHERE campaign = ? AND ad = ? AND model_id = ?",
                             (campaign, str(ad["name"]), model_id))
                cur = conn.execute(
                    "INSERT INTO ads (campaign, ad, analysed_at, model, model_id, viewers) VALUES (?, ?, ?, ?, ?, ?)",
                    (campaign, str(ad["name"]), analysed_at, model, model_id, viewers))
                values = [(cur.lastrowid, str(k), float(v)) for k, v in (ad.get("kpis") or {}).items()
                          if v is not None and math.isfinite(float(v))]
                conn.executemany("INSERT INTO kpis (ad_id, kpi, value) VALUES (?, ?, ?)", values)
                n += 1
        return n

    def base(self, model_id: str, exclude_campaign: str | None = None) -> dict[str, list[float]]:
        """``{kpi: [values]}`` of the norm base: ads of the store with ``model_id``, other campaigns only."""
        sql = ("SELECT k.kpi, k.value FROM kpis k JOIN ads a ON a.id = k.ad_id WHERE a.model_id = ?"
               + (" AND a.campaign != ?" if exclude_campaign is not None else ""))
        args: tuple[str, ...] = (model_id,) if exclude_campaign is None else (model_id, exclude_campaign)
        out: dict[str, list[float]] = {}
        with self._guard() as conn:
            for kpi, value in conn.execute(sql, args):
                out.setdefault(kpi, []).append(float(value))
        return out

    def percentiles(self, campaign: str, ads: Iterable[Mapping[str, Any]], model_id: str) -> dict[str, Any]:
        """``{ad: {kpi: {"percentile", "base"}}}``: each KPI's percentile among the norm base
        (``base``: how many earlier ads it holds for that KPI)."""
        base = self.base(model_id, exclude_campaign=campaign)
        out: dict[str, Any] = {}
        for ad in ads:
            kpis = ad.get("kpis") or {}
            out[str(ad["name"])] = {
                k: {"percentile": percentile(float(v), base.get(k, [])) if v is not None else None,
                    "base": len(base.get(k, []))}
                for k, v in kpis.items()}
        return out

    def rows(self, model: str | None = None) -> list[dict[str, Any]]:
        """Every stored ad (oldest first) with its KPIs under ``kpis``; ``model`` filters by model
        name or model identity."""
        sql = f"SELECT id, {', '.join(COLUMNS)} FROM ads"
        args: tuple[str, ...] = ()
        if model is not None:
            sql, args = sql + " WHERE model = ? OR model_id = ?", (model, model)
        with self._guard() as conn:
            ads = conn.execute(sql + " ORDER BY analysed_at, id", args).fetchall()
            values: dict[int, dict[str, float]] = {}
            for ad_id, kpi, value in conn.execute("SELECT ad_id, kpi, value FROM kpis"):
                values.setdefault(ad_id, {})[kpi] = value
        return [{**dict(zip(COLUMNS, r[1:], strict=True)), "kpis": values.get(r[0], {})} for r in ads]

    def remove(self, campaign: str, ad: str | None = None, model: str | None = None) -> int:
        """Delete the rows of ``campaign`` (only ``ad``, only ``model`` name or identity, when given);
        returns how many ads were removed."""
        sql, args = "DELETE FROM ads WHERE campaign = ?", [campaign]
        if ad is not None:
            sql, args = sql + " AND ad = ?", [*args, ad]
        if model is not None:
            sql, args = sql + " AND (model = ? OR model_id = ?)", [*args, model, model]
        with self._guard() as conn, conn:
            return conn.execute(sql, args).rowcount

    def export(self, path: Path) -> int:
        """Write every row to ``path``: JSON (``.json``) or CSV (one column per KPI); returns the count."""
        rows = self.rows()
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps({"schema": SCHEMA, "ads": rows}, indent=2) + "\n", encoding="utf-8")
            return len(rows)
        kpis = sorted({k for r in rows for k in r["kpis"]})
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow([*COLUMNS, *kpis])
            for r in rows:
                w.writerow([*(r[c] for c in COLUMNS), *(r["kpis"].get(k, "") for k in kpis)])
        return len(rows)

    def import_file(self, path: Path) -> int:
        """Add the rows of an :meth:`export` file (JSON or CSV); a row for the same (campaign, ad,
        model identity) replaces the stored one. Returns the rows imported."""
        rows = _read_export(path)
        for r in rows:
            self.record(r["campaign"], [{"name": r["ad"], "viewers": r["viewers"], "kpis": r["kpis"]}],
                        model=r["model"], model_id=r["model_id"], analysed_at=r["analysed_at"])
        return len(rows)


def _read_export(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise NormsStoreError(f"{path}: cannot read the norms file: {err}") from err
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            raw = data["ads"] if isinstance(data, dict) else None
            if not isinstance(raw, list):
                raise ValueError("no 'ads' list")
            rows = [{**{c: r[c] for c in COLUMNS}, "kpis": dict(r.get("kpis") or {})} for r in raw]
        else:
            reader = csv.DictReader(text.splitlines())
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"missing column(s) {', '.join(missing)}")
            rows = [{**{c: r[c] for c in COLUMNS},
                     "kpis": {k: float(v) for k, v in r.items() if k not in COLUMNS and v not in ("", None)}}
                    for r in reader]
        for i, r in enumerate(rows, start=1):
            r["viewers"] = int(r["viewers"])
            r["kpis"] = {str(k): float(v) for k, v in r["kpis"].items()}
            if not all(isinstance(r[c], str) and r[c] for c in COLUMNS if c != "viewers"):
                raise ValueError(f"row {i}: campaign, ad, analysed_at, model and model_id must be non-empty text")
    except (ValueError, KeyError, TypeError) as err:
        raise NormsStoreError(f"{path}: not a norms export file ({err})") from err
    return rows
