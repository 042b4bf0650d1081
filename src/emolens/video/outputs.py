"""Record a video analysis to a folder, streaming: rows are written as frames arrive.

:class:`VideoRecorder` takes each :class:`~emolens.results.FrameResult` (and, for the annotated
video, its RGB frame) and writes into ``out_dir``:

``frames.csv`` / ``frames.parquet``
    one row per face per frame: ``time_s, frame, track_id, x, y, w, h, detection_score,
    classified, emotion`` and one column per label with its probability. Written in chunks of
    :data:`CHUNK_ROWS` rows (Parquet: one row group per chunk), so memory stays flat and an
    interrupted run leaves every chunk written so far readable. Parquet needs ``pyarrow``; without
    it only the CSV is written (a warning says so).
``seconds.csv`` / ``seconds.parquet``
    one row per track and second of video: mean probabilities and top emotion (:mod:`.seconds`).
``tracks.csv`` / ``summary.json``
    the per-track summaries (:mod:`.tracksummary`); ``summary.json`` holds the whole
    :class:`VideoSummary`.
``timelines/track_<id>.png``
    every track's emotion probabilities over time (:mod:`.timeline`), one PNG per track.
``annotated.mp4`` (``annotate_mp4=True``)
    the frames with boxes, track ids, labels and bars, faces blurred with ``blur_faces=True``;
    H.264, playable in a browser (:mod:`.writer`).

:meth:`VideoRecorder.close` finishes every file and returns the :class:`VideoSummary`; it is safe
to call after an interruption (Ctrl-C): what was recorded so far is summarised.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import fsio
from ..errors import InvalidInput
from ..fsio import atomic_open, output_error, temp_beside
from ..results import FrameResult, keypoints_json
from .tracksummary import TrackSummary, TrackSummaryBuilder

log = logging.getLogger(__name__)

CHUNK_ROWS = 2048
"""Rows buffered before they are written (CSV flushed, one Parquet row group)."""
BASE_COLUMNS = ("time_s", "frame", "track_id", "x", "y", "w", "h", "detection_score", "classified", "emotion",
                "roll", "yaw", "pitch", "looking", "keypoints")
"""The columns of ``frames.csv`` before the probability columns (one per label). ``roll``: head roll in
degrees and ``keypoints``: JSON ``{name: [x, y]}`` in frame pixels, both empty without a keypoint model;
``yaw``/``pitch``: head pose in degrees and ``looking``: head towards the camera (the analyser's
attention limits), empty when no pose was found."""



@dataclass(frozen=True)
class VideoSummary:
    """Everything a recorded video adds up to (JSON-ready with :meth:`to_dict`).

    ``frames``: frames recorded; ``classified_frames``: those whose faces were classified (not
    carried forward); ``face_rows``: rows of ``frames.csv``; ``duration_s``: video time covered;
    ``emotion_shares``: share of all on-screen face time per top emotion; ``tracks``: per-track
    summaries; ``files``: name -> path of every file written; ``stream``: the final progress
    figures of the stream when the caller passed them (broken frames and the like)."""

    labels: tuple[str, ...]
    frames: int
    classified_frames: int
    face_rows: int
    duration_s: float
    emotion_shares: dict[str, float]
    tracks: tuple[TrackSummary, ...]
    files: dict[str, str]
    stream: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "frames": self.frames,
            "classified_frames": self.classified_frames,
            "face_rows": self.face_rows,
            "duration_s": round(self.duration_s, 4),
            "tracks_count": len(self.tracks),
            "emotion_shares": {k: round(v, 6) for k, v in self.emotion_shares.items()},
            "tracks": [t.to_dict() for t in self.tracks],
            "files": dict(self.files),
            "stream": dict(self.stream),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def frame_rows(frame: FrameResult, labels: Sequence[str]) -> list[list[Any]]:
    """The ``frames.csv`` rows of one frame (plain Python values, in :data:`BASE_COLUMNS` + labels order)."""
    rows = []
    for face in frame.faces:
        x, y, w, h = (int(v) for v in face.box)
        probs = [float(face.probabilities.get(lb, 0.0)) for lb in labels]
        rows.append([
            float(frame.time_s), int(frame.index), -1 if face.track_id is None else int(face.track_id),
            x, y, w, h, float(face.detection_score), bool(frame.classified), face.emotion,
            *(None if v is None else round(float(v), 2) for v in (face.roll, face.yaw, face.pitch)),
            None if face.looking is None else bool(face.looking), keypoints_json(face), *probs,
        ])
    return rows


class _ParquetSink:
    """Row groups appended to one Parquet file (pyarrow imported here only)."""

    def __init__(self, path: Path, labels: Sequence[str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        fields = [
            pa.field("time_s", pa.float64()), pa.field("frame", pa.int64()), pa.field("track_id", pa.int64()),
            *(pa.field(c, pa.int32()) for c in ("x", "y", "w", "h")),
            pa.field("detection_score", pa.float64()), pa.field("classified", pa.bool_()),
            pa.field("emotion", pa.string()),
            *(pa.field(c, pa.float64()) for c in ("roll", "yaw", "pitch")), pa.field("looking", pa.bool_()),
            pa.field("keypoints", pa.string()),
            *(pa.field(lb, pa.float64()) for lb in labels),
        ]
        self.schema = pa.schema(fields)
        self._writer = pq.ParquetWriter(str(path), self.schema)

    def write(self, rows: list[list[Any]]) -> None:
        columns = list(zip(*rows, strict=True))
        arrays = [self._pa.array(col, type=f.type) for col, f in zip(columns, self.schema, strict=True)]
        self._writer.write_table(self._pa.Table.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        self._writer.close()


class FrameTable:
    """``frames.csv`` (and ``frames.parquet`` when ``parquet``) written in chunks of ``chunk_rows``."""

    def __init__(self, out_dir: Path, labels: Sequence[str], *, parquet: bool = True,
                 chunk_rows: int = CHUNK_ROWS) -> None:
        self.labels, self.chunk_rows = tuple(labels), chunk_rows
        self.csv_path = out_dir / "frames.csv"
        # written under temporary names, renamed into place by close(): never a half file (fsio)
        self._tmp = {self.csv_path: temp_beside(self.csv_path)}
        try:
            self._csv_file = self._tmp[self.csv_path].open("w", newline="", encoding="utf-8")
        except OSError as err:
            raise output_error(self.csv_path, err) from err
        self._csv = csv.writer(self._csv_file, lineterminator="\n")
        self._csv.writerow([*BASE_COLUMNS, *self.labels])
        self.parquet_path: Path | None = None
        self._parquet: _ParquetSink | None = None
        if parquet:
            try:
                parquet_tmp = temp_beside(out_dir / "frames.parquet")
                self._parquet = _ParquetSink(parquet_tmp, self.labels)
                self.parquet_path = out_dir / "frames.parquet"
                self._tmp[self.parquet_path] = parquet_tmp
            except ImportError:
                log.warning("pyarrow is not installed: frames.parquet is not written (pip install pyarrow)")
        self._rows: list[list[Any]] = []
        self._failed = False
        self.rows_written = 0

    def add(self, frame: FrameResult) -> None:
        self._rows.extend(frame_rows(frame, self.labels))
        if len(self._rows) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        try:
            self._csv.writerows(_csv_format(r) for r in self._rows)
            self._csv_file.flush()
            if self._parquet is not None:
                self._parquet.write(self._rows)
        except OSError as err:  # disk full, ...: a named error; close() then publishes nothing
            self._failed = True
            raise output_error(self.csv_path, err) from err
        self.rows_written += len(self._rows)
        self._rows = []

    def close(self) -> None:
        """Write what is left and move the files into place (after a failed write: delete them)."""
        try:
            if not self._failed:
                self.flush()
        finally:
            try:
                self._csv_file.close()
                if self._parquet is not None:
                    self._parquet.close()
                    self._parquet = None
            except OSError as err:
                self._failed = True
                raise output_error(self.csv_path, err) from err
            finally:
                self._publish()

    def _publish(self) -> None:
        for final, tmp in self._tmp.items():
            try:
                if self._failed:
                    tmp.unlink(missing_ok=True)
                elif tmp.exists():
                    os.replace(tmp, final)
            except OSError as err:
                raise output_error(final, err) from err
        self._tmp = {}


def _csv_format(row: list[Any]) -> list[Any]:
    """Round floats for the CSV (times to 0.1 ms, scores and probabilities to 6 decimals)."""
    out: list[Any] = [f"{row[0]:.4f}", *row[1:7], f"{row[7]:.6f}", int(row[8]), row[9],
                      *("" if v is None else f"{v:.2f}" for v in row[10:13]),  # roll, yaw, pitch
                      "" if row[13] is None else int(row[13]), row[14]]  # looking (1/0), keypoints
    out.extend(f"{p:.6f}" for p in row[15:])
    return out


def write_tracks_csv(path: Path, tracks: Sequence[TrackSummary], labels: Sequence[str]) -> Path:
    """One row per track: times, frames, top emotion, ``looking_share`` (empty without head poses), then
    ``share_<label>``, ``mean_<label>``,
    ``peak_<label>_s`` and ``peak_<label>`` (the peak probability) for every label."""
    head = ["track_id", "first_seen_s", "last_seen_s", "on_screen_s", "frames", "classified_frames", "top_emotion",
            "looking_share"]
    for prefix in ("share_", "mean_"):
        head += [prefix + lb for lb in labels]
    for lb in labels:
        head += [f"peak_{lb}_s", f"peak_{lb}"]
    with atomic_open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(head)
        for t in tracks:
            row: list[Any] = [t.track_id, f"{t.first_seen_s:.4f}", f"{t.last_seen_s:.4f}", f"{t.on_screen_s:.4f}",
                              t.frames, t.classified_frames, t.top_emotion,
                              "" if t.looking_share is None else f"{t.looking_share:.4f}"]
            row += [f"{t.emotion_shares.get(lb, 0.0):.6f}" for lb in labels]
            row += [f"{t.mean_probabilities.get(lb, 0.0):.6f}" for lb in labels]
            for lb in labels:
                p = t.peaks.get(lb)
                row += ["", ""] if p is None else [f"{p.time_s:.4f}", f"{p.probability:.6f}"]
            w.writerow(row)
    return path


class VideoRecorder:
    """Collects frame results as they stream and writes the outputs (see the module docstring).

    ``labels``: the model's labels (column order). ``annotate_mp4`` / ``blur_faces``: write
    ``annotated.mp4``, with faces blurred; it needs the RGB frame passed to :meth:`add`.
    ``fps``: the annotated video's frame rate (default: estimated from the first timestamps).
    ``timelines``: draw the per-track PNGs at :meth:`close`; ``parquet``: also write Parquet.
    """

    def __init__(
        self,
        out_dir: Path,
        labels: Sequence[str],
        *,
        annotate_mp4: bool = False,
        blur_faces: bool = False,
        fps: float | None = None,
        timelines: bool = True,
        parquet: bool = True,
    ) -> None:
        if not labels:
            raise InvalidInput("a VideoRecorder needs the model's labels")
        if fps is not None and not 0 < fps < 1000:
            raise InvalidInput(f"fps must be in (0, 1000), got {fps}")
        self.out_dir = Path(out_dir)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InvalidInput(f"cannot create the output folder {self.out_dir}: {e.strerror or e}") from e
        self.labels = tuple(labels)
        self.table = FrameTable(self.out_dir, self.labels, parquet=parquet)
        self.tracks = TrackSummaryBuilder(self.labels, default_interval_s=1.0 / fps if fps else None)
        self.timelines = timelines
        self.blur_faces = blur_faces
        self._video: Any = None
        if annotate_mp4:
            from .writer import AnnotatedVideoWriter

            self._video = AnnotatedVideoWriter(self.out_dir / "annotated.mp4", fps=fps, blur=blur_faces)
        self._missing_rgb_warned = False
        self._summary: VideoSummary | None = None

    def add(self, frame: FrameResult, rgb: np.ndarray | None = None) -> None:
        """Record one frame result (``rgb``: its upright RGB frame, needed for the annotated video)."""
        if self._summary is not None:
            raise InvalidInput("this VideoRecorder is closed")
        self.table.add(frame)
        self.tracks.add(frame)
        if self._video is not None:
            if rgb is None:
                if not self._missing_rgb_warned:
                    log.warning("no RGB frame given to VideoRecorder.add: annotated.mp4 skips such frames")
                    self._missing_rgb_warned = True
            else:
                self._video.write(rgb, frame)

    def close(self, stream: dict[str, Any] | Any = None) -> VideoSummary:
        """Finish every file and return the summary (a second call returns the same summary).

        ``stream``: the stream's final :class:`~emolens.video.stream.VideoProgress` (or its dict),
        kept in the summary."""
        if self._summary is not None:
            return self._summary
        self.table.close()
        files = {"frames_csv": str(self.table.csv_path)}
        if self.table.parquet_path is not None:
            files["frames_parquet"] = str(self.table.parquet_path)
        if self._video is not None:
            written = self._video.close()
            if written is not None:
                files["annotated_mp4"] = str(written)
        tracks = self.tracks.build()
        files["tracks_csv"] = str(write_tracks_csv(self.out_dir / "tracks.csv", tracks, self.labels))
        from .seconds import write_seconds

        for path in write_seconds(self.table.csv_path, self.labels, self.out_dir, self.table.parquet_path is not None):
            files[path.name.replace(".", "_")] = str(path)
        if self.timelines and tracks:
            from .timeline import plot_timelines

            pngs = plot_timelines(self.table.csv_path, tracks, self.labels, self.out_dir / "timelines",
                                  min_on_screen_s=0.0, max_plots=len(tracks))
            if pngs:
                files["timelines"] = str(self.out_dir / "timelines")
        total = sum(self.tracks.label_time.values())
        shares = {lb: (self.tracks.label_time.get(lb, 0.0) / total if total else 0.0) for lb in self.labels}
        stream_figures = stream.to_dict() if hasattr(stream, "to_dict") else dict(stream or {})
        files["summary_json"] = str(self.out_dir / "summary.json")
        summary = VideoSummary(
            self.labels, self.tracks.frames, self.tracks.classified_frames, self.tracks.face_rows,
            self.tracks.duration_s, shares, tuple(tracks), files, stream_figures,
        )
        fsio.write_text(self.out_dir / "summary.json", summary.to_json())
        self._summary = summary
        return summary
