"""FER2013 in the Kaggle CSV layout: ``emotion,pixels,Usage``, plain or gzip.

Each data row holds a label 0..6 (FER's order, equal to :data:`emolens.labels.FER7`), 2304
space-separated grey values (48x48, row-major) and a Usage: ``Training`` -> ``train``,
``PublicTest`` -> ``val``, ``PrivateTest`` -> ``test``. A file without a Usage column (the Kaggle
challenge's ``train.csv``) is read as all ``train``; ``load_dataset`` then splits val and test off it.

Parsing streams the file line by line and converts pixels 2048 rows at a time with NumPy's C parser,
so the 300 MB file takes a few seconds; the result is cached (:mod:`emolens.data.cache`) and later
loads take about a second. Bad rows raise :class:`~emolens.errors.DatasetError` naming the file, the
line (1-based, header included) and the data row (0-based, header excluded, the index FER+ joins
on); with ``skip_bad`` they are left out and counted by reason in ``skipped``.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..labels import FER7
from .base import SPLIT_ALIASES
from .cache import load_cached, save_cached
from .split import SPLIT_ORDER, RawData, RawSplit

SIDE = 48
PIXELS = SIDE * SIDE
CACHE_KIND = "fer2013-v1"
_CHUNK = 2048
USAGE_NAMES = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}

# Reasons a row is skipped (keys of ``skipped``).
BAD_FIELDS = "wrong field count"
BAD_LABEL = "label not an integer"
LABEL_RANGE = "label out of range"
BAD_USAGE = "unknown Usage"
PIXEL_COUNT = "wrong pixel count"
PIXEL_TEXT = "non-numeric pixel"
PIXEL_RANGE = "pixel value out of range"


@dataclass(frozen=True)
class FerTable:
    """The parsed rows of a FER2013 CSV that were good.

    ``images`` uint8 ``(M, 48, 48)``; ``labels`` int64 (FER 0..6); ``split_codes`` int8 index into
    ``("train", "val", "test")``; ``rows`` int64 data-row positions; ``n_rows`` counts every data row
    of the file, good or bad; ``has_usage`` is False when the file had no Usage column.
    """

    path: Path
    images: np.ndarray
    labels: np.ndarray
    split_codes: np.ndarray
    rows: np.ndarray
    n_rows: int
    has_usage: bool
    skipped: dict[str, int]


class _Rows:
    """Collects good rows and counts (or raises on) bad ones."""

    def __init__(self, path: Path, skip_bad: bool) -> None:
        self.path, self.skip_bad = path, skip_bad
        self.skipped: dict[str, int] = {}
        self.images: list[np.ndarray] = []
        self.labels: list[int] = []
        self.codes: list[int] = []
        self.rows: list[int] = []
        self.pending: list[tuple[int, int, int, int, bytes]] = []  # line, row, label, code, pixels

    def bad(self, reason: str, line: int, row: int, detail: str) -> None:
        if not self.skip_bad:
            raise DatasetError(f"{self.path}: line {line} (data row {row}): {detail}")
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def add(self, line: int, row: int, label: int, code: int, pixels: bytes) -> None:
        self.pending.append((line, row, label, code, pixels))
        if len(self.pending) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        values, bad = parse_pixels([p[4] for p in self.pending])
        keep = np.ones(len(self.pending), dtype=bool)
        for i, reason, detail in bad:
            line, row = self.pending[i][:2]
            self.bad(reason, line, row, detail)
            keep[i] = False
        self.images.append(values[keep])
        for (_, row, label, code, _), ok in zip(self.pending, keep, strict=True):
            if ok:
                self.rows.append(row)
                self.labels.append(label)
                self.codes.append(code)
        self.pending = []


def parse_pixels(fields: list[bytes]) -> tuple[np.ndarray, list[tuple[int, str, str]]]:
    """Parse pixel fields (2304 space-separated 0..255 values each) into uint8 ``(n, 48, 48)``.

    Returns the array (zeros where a row is bad) and ``(index, reason, detail)`` for each bad row.
    A well-formed chunk is parsed in one call to NumPy's C parser; any doubt sends each row of the
    chunk through a careful per-row check that says what is wrong.
    """
    n = len(fields)
    blob = b" ".join(fields)
    # Exactly 2303 single spaces per row, and no space at a row's ends (which would show up as a
    # double space in the joined blob), means exactly 2304 non-empty tokens per row.
    canonical = (
        {f.count(b" ") for f in fields} == {PIXELS - 1}
        and b"  " not in blob
        and blob[:1] != b" "
        and blob[-1:] != b" "
    )
    if canonical:
        try:
            values = np.fromstring(blob, dtype=np.int64, sep=" ")
        except ValueError:
            values = None
        if values is not None and values.size == n * PIXELS and values.min() >= 0 and values.max() <= 255:
            return values.astype(np.uint8).reshape(n, SIDE, SIDE), []
    out = np.zeros((n, SIDE, SIDE), dtype=np.uint8)
    bad: list[tuple[int, str, str]] = []
    for i, field in enumerate(fields):
        problem = _row_problem(field)
        if problem is None:
            out[i] = np.array(field.split(), dtype=np.int64).reshape(SIDE, SIDE)
        else:
            bad.append((i, *problem))
    return out, bad


def _row_problem(field: bytes) -> tuple[str, str] | None:
    """What is wrong with one pixel field, or None when it is good."""
    tokens = field.split()
    for pos, tok in enumerate(tokens):
        if not tok.isdigit():
            return (
                PIXEL_TEXT,
                f"non-numeric pixel value {tok[:20].decode('ascii', 'replace')!r} at pixel {pos}",
            )
    if len(tokens) != PIXELS:
        return PIXEL_COUNT, f"expected {PIXELS} pixel values (48x48), got {len(tokens)}"
    for pos, tok in enumerate(tokens):
        if int(tok) > 255:
            return PIXEL_RANGE, f"pixel value {int(tok)} at pixel {pos} is above 255"
    return None


@contextmanager
def _open_binary(path: Path) -> Iterator[io.BufferedIOBase]:
    """Open plain or gzip (detected by its magic bytes, whatever the file is called)."""
    if not path.is_file():
        what = "is a directory, not a CSV file" if path.is_dir() else "not found"
        raise DatasetError(f"FER2013 CSV {what}: {path}")
    with path.open("rb") as probe:
        magic = probe.read(2)
    try:
        with gzip.GzipFile(path, "rb") if magic == b"\x1f\x8b" else path.open("rb") as f:
            yield f
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{path}: cannot read the file ({e})") from e


def _columns(header: bytes, path: Path) -> tuple[int, int, int | None, int]:
    """Positions of emotion, pixels and Usage (None when absent) and the number of fields."""
    names = [c.strip().strip('"').strip().lower() for c in header.decode("utf-8-sig", "replace").split(",")]
    if "image name" in names:
        raise DatasetError(
            f"{path} is a FER+ votes file; give the FER2013 CSV as the path and this file as "
            "the labels (--labels / data.labels_path)"
        )
    missing = [c for c in ("emotion", "pixels") if c not in names]
    if missing:
        what = "no header row" if names[0].isdigit() else f"missing column(s) {', '.join(missing)}"
        raise DatasetError(f"{path}: line 1: {what}; expected the header emotion,pixels,Usage")
    usage = names.index("usage") if "usage" in names else None
    return names.index("emotion"), names.index("pixels"), usage, len(names)


def _parse_line(
    rows: _Rows, fields: list[bytes], line: int, row: int, cols: tuple[int, int, int | None, int]
) -> None:
    ie, ip, iu, nf = cols
    if len(fields) != nf:
        rows.bad(BAD_FIELDS, line, row, f"expected {nf} comma-separated fields, got {len(fields)}")
        return
    raw_label = fields[ie].strip(b' "')
    try:
        label = int(raw_label)
    except ValueError:
        rows.bad(
            BAD_LABEL, line, row, f"emotion {raw_label[:20].decode('ascii', 'replace')!r} is not an integer"
        )
        return
    if not 0 <= label < len(FER7):
        rows.bad(LABEL_RANGE, line, row, f"emotion {label} is out of range 0..{len(FER7) - 1}")
        return
    code = 0
    if iu is not None:
        usage = fields[iu].strip(b' "').decode("utf-8", "replace")
        split = SPLIT_ALIASES.get(usage.lower())
        if split is None:
            rows.bad(
                BAD_USAGE,
                line,
                row,
                f"unknown Usage {usage[:30]!r} (expected Training, PublicTest or PrivateTest)",
            )
            return
        code = SPLIT_ORDER.index(split)
    rows.add(line, row, label, code, fields[ip].strip(b' "'))


def _parse(path: Path, skip_bad: bool) -> FerTable:
    rows = _Rows(path, skip_bad)
    with _open_binary(path) as f:
        header = f.readline()
        if not header.strip():
            raise DatasetError(f"{path}: the file is empty; expected the header emotion,pixels,Usage")
        cols = _columns(header.rstrip(b"\r\n"), path)
        row = 0
        for line_no, line in enumerate(f, start=2):
            text = line.rstrip(b"\r\n")
            if not text.strip():
                continue
            _parse_line(rows, text.split(b","), line_no, row, cols)
            row += 1
        rows.flush()
    images = np.concatenate(rows.images) if rows.images else np.zeros((0, SIDE, SIDE), np.uint8)
    return FerTable(
        path,
        images,
        np.array(rows.labels, dtype=np.int64),
        np.array(rows.codes, dtype=np.int8),
        np.array(rows.rows, dtype=np.int64),
        row,
        cols[2] is not None,
        rows.skipped,
    )


def _to_arrays(t: FerTable) -> dict[str, np.ndarray]:
    return {
        "images": t.images,
        "labels": t.labels,
        "split_codes": t.split_codes,
        "rows": t.rows,
        "n_rows": np.array(t.n_rows),
        "has_usage": np.array(t.has_usage),
        "skipped_keys": np.array(list(t.skipped), dtype=str),
        "skipped_counts": np.array(list(t.skipped.values())),
    }


def _from_arrays(path: Path, a: dict[str, np.ndarray]) -> FerTable:
    skipped = {str(k): int(v) for k, v in zip(a["skipped_keys"], a["skipped_counts"], strict=True)}
    return FerTable(
        path,
        a["images"],
        a["labels"],
        a["split_codes"],
        a["rows"],
        int(a["n_rows"]),
        bool(a["has_usage"]),
        skipped,
    )


def read_fer2013_table(path: str | Path, skip_bad: bool = False, cache: bool = True) -> FerTable:
    """Parse (or fetch from the cache) a FER2013 CSV; see the module docstring for errors."""
    p = Path(path)
    if cache and p.is_file():
        arrays = load_cached(p, CACHE_KIND)
        if arrays is not None:
            try:
                table = _from_arrays(p, arrays)
            except (KeyError, ValueError, TypeError):
                table = None
            # With bad rows on record and skip_bad off, parse again so the error names the row.
            if table is not None and (skip_bad or not table.skipped):
                return table
    table = _parse(p, skip_bad)
    if table.n_rows == 0:
        raise DatasetError(f"{p}: no data rows after the header")
    if cache:
        save_cached(p, CACHE_KIND, _to_arrays(table))
    return table


def table_to_raw(table: FerTable, name: str = "fer2013") -> RawData:
    """Group a table's rows into canonical splits (all three must be non-empty when Usage exists)."""
    fname = table.path.name
    splits: dict[str, RawSplit] = {}
    for code, split in enumerate(SPLIT_ORDER):
        idx = np.flatnonzero(table.split_codes == code)
        if len(idx) == 0:
            if table.has_usage:
                raise DatasetError(
                    f"{table.path}: no {USAGE_NAMES[split]} rows, so the {split} split is empty"
                )
            continue
        sources = tuple(f"{fname}:row {r}" for r in table.rows[idx].tolist())
        splits[split] = RawSplit(table.images[idx], table.labels[idx], sources)
    return RawData(name=name, labels=FER7, splits=splits, skipped=dict(table.skipped))


def read_fer2013(path: str | Path, skip_bad: bool = False, cache: bool = True) -> RawData:
    """A FER2013 CSV as :class:`~emolens.data.split.RawData` (48x48 gray, FER7 labels)."""
    return table_to_raw(read_fer2013_table(path, skip_bad=skip_bad, cache=cache))
