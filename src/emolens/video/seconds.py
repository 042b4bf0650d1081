"""``seconds.csv`` / ``seconds.parquet``: one row per face track and second of video.

Read back from ``frames.csv`` row by row after the video (rows arrive in time order, so each second
is written as soon as the next one starts; memory holds one second of tracks). Columns:
``second`` (``floor(time_s)``), ``track_id``, ``frames`` (rows of that track in that second),
``emotion`` (the label with the highest mean), ``looking_share`` (the share of those rows whose head
was towards the camera, among rows with a head pose; empty when none had one) and one column per label
with the mean probability over those rows. The probabilities are those of frames.csv, so smoothed when the video was.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

COLUMNS = ("second", "track_id", "frames", "emotion", "looking_share")
CHUNK_ROWS = 2048


class _Sink:
    """seconds.csv (and seconds.parquet) written in chunks."""

    def __init__(self, out_dir: Path, labels: Sequence[str], parquet: bool) -> None:
        self.labels = tuple(labels)
        self.csv_path = out_dir / "seconds.csv"
        self._file = self.csv_path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._csv.writerow([*COLUMNS, *self.labels])
        self.parquet_path: Path | None = None
        self._pq: Any = None
        if parquet:
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq

                self._pa = pa
                self._schema = pa.schema([pa.field("second", pa.int64()), pa.field("track_id", pa.int64()),
                                          pa.field("frames", pa.int64()), pa.field("emotion", pa.string()),
                                          pa.field("looking_share", pa.float64()),
                                          *(pa.field(lb, pa.float64()) for lb in self.labels)])
                self.parquet_path = out_dir / "seconds.parquet"
                self._pq = pq.ParquetWriter(str(self.parquet_path), self._schema)
            except ImportError:
                log.warning("pyarrow is not installed: seconds.parquet is not written")
        self._rows: list[list[Any]] = []
        self.rows = 0

    def add(self, row: list[Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        self._csv.writerows([*r[:4], "" if r[4] is None else f"{r[4]:.4f}", *(f"{p:.6f}" for p in r[5:])]
                            for r in self._rows)
        if self._pq is not None:
            cols = list(zip(*self._rows, strict=True))
            arrays = [self._pa.array(c, type=f.type) for c, f in zip(cols, self._schema, strict=True)]
            self._pq.write_table(self._pa.Table.from_arrays(arrays, schema=self._schema))
        self.rows += len(self._rows)
        self._rows = []

    def close(self) -> None:
        self.flush()
        self._file.close()
        if self._pq is not None:
            self._pq.close()


def write_seconds(frames_csv: Path, labels: Sequence[str], out_dir: Path, parquet: bool = True) -> list[Path]:
    """Write the per-second tables from ``frames_csv``; returns the paths written."""
    sink = _Sink(out_dir, labels, parquet)
    current: int | None = None
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    looks: dict[int, list[int]] = {}  # track -> [rows looking, rows with a pose]

    def emit() -> None:
        for track in sorted(sums):
            mean = sums[track] / counts[track]
            seen, posed = looks.get(track, [0, 0])
            share = seen / posed if posed else None
            sink.add([current, track, counts[track], labels[int(np.argmax(mean))], share, *mean.tolist()])
        sums.clear()
        counts.clear()
        looks.clear()

    try:
        with frames_csv.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            head = next(reader)
            t_col, id_col = head.index("time_s"), head.index("track_id")
            look_col = head.index("looking") if "looking" in head else None
            cols = [head.index(lb) for lb in labels]
            for row in reader:
                second = math.floor(float(row[t_col]))
                if second != current:
                    emit()
                    current = second
                track = int(row[id_col])
                probs = np.array([float(row[c]) for c in cols])
                sums[track] = sums.get(track, 0.0) + probs
                counts[track] = counts.get(track, 0) + 1
                if look_col is not None and row[look_col] != "":
                    acc = looks.setdefault(track, [0, 0])
                    acc[0] += int(row[look_col])
                    acc[1] += 1
        emit()
    finally:
        sink.close()
    return [p for p in (sink.csv_path, sink.parquet_path) if p is not None]
