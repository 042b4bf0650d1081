"""FER+ (Microsoft, Barsoum et al. 2016): ten crowd votes per FER2013 image, 8 emotions.

The votes file ``fer2013new.csv`` (``Usage,Image name,neutral,happiness,surprise,sadness,anger,
disgust,fear,contempt,unknown,NF``) carries no pixels: data row *i* of it belongs to data row *i* of
the FER2013 CSV. It is joined **by row position only**; the ``Image name`` column is ignored because
its numbers are not row indices. The two files must have the same number of rows and the same Usage
on every row, or :class:`~emolens.errors.DatasetError` names the first row that differs.

Labels are :data:`emolens.labels.FERPLUS8` (anger, disgust, fear, happiness, sadness, surprise,
neutral, contempt). The protocol, per image:

1. Outlier votes: an emotion (or unknown / NF) with exactly one vote is set to zero, but only when
   some column of the row has more than one vote.
2. The row is excluded when unknown or NF has at least as many votes as the top emotion (this also
   covers rows whose only votes are unknown / NF), or when two or more emotions tie for the top.
3. Otherwise the hard label is the emotion with the most votes (the majority label), and the soft
   target is the row's emotion votes after step 1, with unknown and NF dropped, divided by their sum.

4. Validation and test rows (PublicTest, PrivateTest) are scored as in Microsoft's FERPlus code, which
   evaluates in its ``majority`` mode whatever the training mode (``eval_rows="majority"``, the
   default): every single vote is dropped, and the row is kept only when its top column holds more
   than half of the votes left and is an emotion (3,199 PublicTest and 3,153 PrivateTest rows of the
   real file). ``eval_rows="plurality"`` keeps every row that steps 1-2 keep (3,396 and 3,376: ambiguous
   faces included, a harder set). Training rows always follow steps 1-3: the soft targets of
   ambiguous faces are still worth learning from.

Excluded rows are counted in ``FaceDataset.skipped`` by reason. ``label_mode`` (``majority`` or
``soft``) does not change the rows or the arrays: every split carries both ``labels`` and
``targets``; the trainer picks which to learn from.
"""

from __future__ import annotations

import csv
import difflib
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DatasetError
from ..labels import FERPLUS8
from .base import SPLIT_ALIASES
from .fer2013 import USAGE_NAMES, FerTable, read_fer2013_table
from .split import SPLIT_ORDER, RawData, RawSplit

VOTES_NAME = "fer2013new.csv"
LABEL_MODES = ("majority", "soft")
VOTE_COLUMNS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "nf",
)

BAD_VOTES = "bad FER+ votes row"
NO_VOTES = "FER+ no votes"
UNKNOWN_MAJORITY = "FER+ unknown/not-a-face majority"
TIE = "FER+ tie between emotions"
NO_MAJORITY = "FER+ val/test row without a majority (Microsoft's rule)"
EVAL_ROWS = ("majority", "plurality")


def find_votes(csv_path: str | Path, labels_path: str | Path = "") -> Path:
    """The votes file: ``labels_path`` when given, else beside the CSV or in ``../ferplus/``."""
    if str(labels_path):
        p = Path(labels_path)
        if not p.is_file():
            raise DatasetError(f"FER+ votes file not found: {p}")
        return p
    base = Path(csv_path).parent
    candidates = [base / VOTES_NAME, base.parent / "ferplus" / VOTES_NAME]
    for c in candidates:
        if c.is_file():
            return c
    raise DatasetError(
        f"no FER+ votes file given and none found at {' or '.join(map(str, candidates))}; "
        "set data.labels_path (--labels)"
    )


def read_votes(path: Path, skip_bad: bool = False) -> tuple[np.ndarray, list[str | None], dict[str, int]]:
    """Parse a votes file: int64 ``(n, 10)`` votes in :data:`VOTE_COLUMNS` order (-1 on bad rows),
    each row's canonical split (None on bad rows) and the skipped counts."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            lines = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{path}: cannot read the FER+ votes file ({e})") from e
    if not lines:
        raise DatasetError(f"{path}: the file is empty; expected the header Usage,Image name,neutral,...,NF")
    names = [c.strip().lower() for c in lines[0]]
    missing = [c for c in ("usage", *VOTE_COLUMNS) if c not in names]
    if missing:
        raise DatasetError(
            f"{path}: line 1: missing column(s) {', '.join(missing)}; expected the header "
            "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
        )
    iu, iv = names.index("usage"), [names.index(c) for c in VOTE_COLUMNS]
    body = [(n, r) for n, r in enumerate(lines[1:], start=2) if any(c.strip() for c in r)]
    votes = np.full((len(body), len(VOTE_COLUMNS)), -1, dtype=np.int64)
    usage: list[str | None] = [None] * len(body)
    skipped: dict[str, int] = {}
    for i, (line, r) in enumerate(body):
        try:
            if len(r) != len(names):
                raise ValueError(f"expected {len(names)} fields, got {len(r)}")
            split = SPLIT_ALIASES.get(r[iu].strip().lower())
            if split is None:
                raise ValueError(f"unknown Usage {r[iu][:30]!r}")
            row = [int(r[j]) for j in iv]
            if min(row) < 0:
                raise ValueError(f"negative vote count in {row}")
        except ValueError as e:
            if not skip_bad:
                raise DatasetError(f"{path}: line {line} (data row {i}): {e}") from None
            skipped[BAD_VOTES] = skipped.get(BAD_VOTES, 0) + 1
            continue
        votes[i], usage[i] = row, split
    return votes, usage, skipped


def majority_protocol(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Apply the module's protocol to ``(n, 10)`` votes in :data:`VOTE_COLUMNS` order.

    Returns ``(labels, targets, excluded)``: int64 labels into FERPLUS8, float32 ``(n, 8)`` targets
    (rows sum to 1 where kept), and reason -> boolean mask of the rows excluded for that reason.
    A row is kept when no mask is set.
    """
    order = [VOTE_COLUMNS.index(e) for e in FERPLUS8]  # FER+ column names are our canonical names
    v = votes.astype(np.float64)
    several = v.max(axis=1, keepdims=True) > 1
    v = np.where((v == 1) & several, 0.0, v)
    emo = v[:, order]
    other = v[:, 8:].max(axis=1)
    top = emo.max(axis=1)
    none = v.sum(axis=1) == 0
    unknown = ~none & (other >= top)
    tie = ~none & ~unknown & ((emo == top[:, None]).sum(axis=1) > 1)
    total = emo.sum(axis=1, keepdims=True)
    targets = np.divide(emo, total, out=np.zeros_like(emo), where=total > 0).astype(np.float32)
    return emo.argmax(axis=1).astype(np.int64), targets, {NO_VOTES: none, UNKNOWN_MAJORITY: unknown, TIE: tie}


def microsoft_majority(votes: np.ndarray) -> np.ndarray:
    """Boolean mask of the ``(n, 10)`` vote rows (:data:`VOTE_COLUMNS` order) that Microsoft's FERPlus
    code keeps in its ``majority`` mode: single votes set to zero (in every row), then the top column
    must hold more than half of the votes left and be an emotion, not unknown or NF."""
    v = np.where(votes <= 1, 0.0, votes.astype(np.float64))
    top = v.max(axis=1)
    return (top > 0.5 * v.sum(axis=1)) & (v.argmax(axis=1) < 8)


def check_eval_rows(rows: str) -> None:
    if rows not in EVAL_ROWS:
        raise ConfigError(f"unknown FER+ val/test rows {rows!r} (data.ferplus_eval_rows, --ferplus-rows); "
                          "use majority or plurality")


def _check_join(table: FerTable, votes_path: Path, n_votes: int, usage: list[str | None]) -> None:
    if n_votes != table.n_rows:
        raise DatasetError(
            f"{votes_path} has {n_votes} data rows but {table.path} has {table.n_rows}; the files "
            "join by row position, so they must have the same number of rows"
        )
    if not table.has_usage:
        return
    for row, code in zip(table.rows.tolist(), table.split_codes.tolist(), strict=True):
        mine = SPLIT_ORDER[code]
        theirs = usage[row]
        if theirs is not None and theirs != mine:
            raise DatasetError(
                f"data row {row}: Usage differs: {table.path.name} says {USAGE_NAMES[mine]}, "
                f"{votes_path.name} says {USAGE_NAMES[theirs]}; the files do not belong together"
            )


def check_label_mode(mode: str) -> None:
    """Refuse a label mode other than majority / soft, with a suggestion."""
    if mode not in LABEL_MODES:
        close = difflib.get_close_matches(mode, LABEL_MODES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown label_mode {mode!r}; use majority or soft{hint}")


def read_ferplus(
    csv_path: str | Path,
    labels_path: str | Path = "",
    skip_bad: bool = False,
    label_mode: str = "majority",
    cache: bool = True,
    eval_rows: str = "majority",
) -> RawData:
    """FER2013 pixels with FER+ labels and soft targets as :class:`~emolens.data.split.RawData`."""
    check_label_mode(label_mode)
    check_eval_rows(eval_rows)
    votes_path = find_votes(csv_path, labels_path)
    table = read_fer2013_table(csv_path, skip_bad=skip_bad, cache=cache)
    votes, usage, skipped = read_votes(votes_path, skip_bad=skip_bad)
    _check_join(table, votes_path, len(votes), usage)
    skipped = {**table.skipped, **skipped}
    valid = np.array([u is not None for u in usage], dtype=bool)[table.rows]
    row_votes = votes[table.rows]
    labels, targets, excluded = majority_protocol(row_votes)
    keep = valid.copy()
    for reason, mask in excluded.items():
        mask = mask & valid
        if mask.any():
            skipped[reason] = int(mask.sum())
        keep &= ~mask
    codes = np.array(
        [SPLIT_ORDER.index(usage[r]) if usage[r] else -1 for r in table.rows.tolist()], dtype=np.int8
    )
    if eval_rows == "majority":
        scored = (codes == SPLIT_ORDER.index("val")) | (codes == SPLIT_ORDER.index("test"))
        no_majority = keep & scored & ~microsoft_majority(row_votes)
        if no_majority.any():
            skipped[NO_MAJORITY] = int(no_majority.sum())
        keep &= ~no_majority
    name = table.path.name
    splits: dict[str, RawSplit] = {}
    for code, split in enumerate(SPLIT_ORDER):
        idx = np.flatnonzero(keep & (codes == code))
        if len(idx) == 0:
            raise DatasetError(f"{votes_path}: no {USAGE_NAMES[split]} rows left with a FER+ label")
        sources = tuple(f"{name}:row {r}" for r in table.rows[idx].tolist())
        splits[split] = RawSplit(table.images[idx], labels[idx], sources, targets[idx])
    return RawData(name="ferplus", labels=FERPLUS8, splits=splits, skipped=skipped)
