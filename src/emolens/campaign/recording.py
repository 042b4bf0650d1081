"""Analyse each recording once: per-frame rows of the viewer's face, cached on disk.

A *frame table* (one per recording; a pandas DataFrame) has one row per analysed frame (video) or
photo: ``t`` (seconds in the recording; the photo's index for photos), ``face_found`` (bool), the
viewer's face box ``x, y, w, h`` (NaN without a face), ``brightness`` (mean gray of the frame,
0-255), ``sharpness`` (of the face, NaN without one), ``source`` (the photo's file name, "" for
video), ``looking`` (1 when the head pose faces the camera, 0 when turned away, NaN without a face
or without a pose) and one column per emotion label (the face's probabilities, NaN without a face).

The viewer's face is the largest face in the frame, except that once chosen its track id is
followed while that track lives (so a passer-by who comes closer does not take over).

:class:`EngineAnalyser` produces frame tables with :class:`emolens.Analyzer` (videos sampled at
``sample_fps`` inside the ad's time window, faces tracked; photos through ``analyze_many``).
Anything with the :class:`RecordingAnalyser` shape can replace it (tests inject known
probabilities). :class:`FrameCache` keeps one Parquet file per recording, keyed by a hash of the
recording's files (resolved path, size, mtime_ns), the ad window and the analyser's identity
(model file hash, labels, detector, options), so re-running a campaign analyses only what changed.
:func:`analyse_all` can hand the recordings the cache does not hold to a ``remote`` reader (Ray actors,
``emolens campaign analyze --ray``), which runs :func:`read_recording` with the same engine elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from ..errors import EmolensError
from ..fsio import file_sha256
from .manifest import Manifest, Recording, photo_files
from .modelcard import model_card
from .qc import face_sharpness, frame_brightness

if TYPE_CHECKING:
    from ..inference.analyzer import Analyzer
    from ..results import FaceResult

log = logging.getLogger(__name__)

CACHE_VERSION = 2
"""Bumped whenever the frame table changes meaning; old cache files are then ignored."""
BASE_COLUMNS = ("t", "face_found", "x", "y", "w", "h", "brightness", "sharpness", "source", "looking")


class RecordingAnalyser(Protocol):
    """What the campaign needs from an analyser. ``identity`` must change whenever results would."""

    labels: tuple[str, ...]
    model_name: str
    identity: str

    def analyse_video(self, path: Path, start_s: float, end_s: float) -> pd.DataFrame:
        """Frame table of the frames with ``start_s <= t < end_s``; raises EmolensError if unreadable."""
        ...

    def analyse_photos(self, paths: Sequence[Path]) -> pd.DataFrame:
        """Frame table with one row per readable photo."""
        ...


def empty_frames(labels: Sequence[str]) -> pd.DataFrame:
    """A frame table with no rows and the right columns."""
    return frame_table([], labels)


def frame_table(rows: Iterable[dict[str, Any]], labels: Sequence[str]) -> pd.DataFrame:
    """Frame table from row dicts (missing keys become NaN); columns in the documented order."""
    df = pd.DataFrame(list(rows), columns=[*BASE_COLUMNS, *labels])
    for col in ("t", "x", "y", "w", "h", "brightness", "sharpness", "looking", *labels):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["face_found"] = df["face_found"].fillna(False).astype(bool)
    df["source"] = df["source"].fillna("").astype(str)
    return df


def face_row(face: FaceResult | None, labels: Sequence[str]) -> dict[str, Any]:
    """The face part of a frame-table row (box, probabilities, ``looking`` 1/0 from the head pose,
    NaN when the engine gave no pose), NaNs when there is no face."""
    if face is None:
        return {"face_found": False}
    x, y, w, h = face.box
    looking = math.nan if face.looking is None else float(bool(face.looking))
    return {"face_found": True, "x": x, "y": y, "w": w, "h": h, "looking": looking,
            **{lb: float(face.probabilities[lb]) for lb in labels}}


def pick_face(faces: Sequence[FaceResult], track: int | None) -> FaceResult | None:
    """The viewer's face: the one of ``track`` when present, else the largest (ties: leftmost)."""
    if not faces:
        return None
    for f in faces:
        if track is not None and f.track_id == track:
            return f
    return max(faces, key=lambda f: (f.box[2] * f.box[3], -f.box[0]))


class EngineAnalyser:
    """Frame tables from an :class:`emolens.Analyzer`: videos sampled at ``sample_fps`` frames per
    second of video (faces tracked across the sampled frames), photos analysed one by one."""

    def __init__(self, analyzer: Analyzer, sample_fps: float = 5.0) -> None:
        self.analyzer, self.sample_fps = analyzer, float(sample_fps)
        self.labels = tuple(analyzer.labels)
        self.model_name = analyzer.model_name
        path = getattr(analyzer.model, "path", None)
        digest = file_sha256(path) if path is not None and Path(path).is_file() else analyzer.model_name
        self.model_id = f"{self.model_name}:{digest[:16]}"
        self.model_card = model_card(analyzer.meta)
        self.identity = json.dumps({
            "model": digest, "labels": self.labels, "detector": str(getattr(analyzer.detector, "name", "?")),
            "align": analyzer.align, "tta": analyzer.tta, "min_face": analyzer.min_face,
            "margin": analyzer.margin, "keypoints": None if analyzer.landmarks is None else analyzer.landmarks.name,
            "sample_fps": self.sample_fps,
        }, sort_keys=True)

    def analyse_video(self, path: Path, start_s: float, end_s: float) -> pd.DataFrame:
        from ..video.stream import VideoOptions, iter_video

        # Detection and tracking run on the sampled frames of the window only (decoding reads them all).
        options = VideoOptions(start_s=start_s, sample_fps=self.sample_fps, prefetch=2)
        stream = iter_video(self.analyzer, path, options)
        rows, track = [], None
        with stream:
            for frame, rgb in stream.with_frames():
                if frame.time_s >= end_s:
                    break
                face = pick_face(frame.faces, track)
                track = face.track_id if face is not None else track
                row = {"t": frame.time_s, "brightness": frame_brightness(rgb), "source": "",
                       **face_row(face, self.labels)}
                if face is not None:
                    row["sharpness"] = face_sharpness(rgb, face.box)
                rows.append(row)
        return frame_table(rows, self.labels)

    def analyse_photos(self, paths: Sequence[Path]) -> pd.DataFrame:
        from ..inference.imageio import load_image

        an = self.analyzer
        images: dict[str, np.ndarray] = {}

        def items() -> Iterator[tuple[str, np.ndarray]]:
            for p in paths:
                try:
                    rgb = load_image(p, max_bytes=an.max_bytes, max_pixels=an.max_pixels).rgb
                except EmolensError as err:
                    log.warning("%s: photo skipped: %s", p, err)
                    continue
                images[p.name] = rgb
                yield p.name, rgb

        rows = []
        for i, res in enumerate(an.analyze_many(items(), on_error=lambda s, e: log.warning("%s: %s", s, e))):
            rgb = images.pop(res.source)
            face = pick_face(res.faces, None)
            row = {"t": float(i), "brightness": frame_brightness(rgb), "source": res.source,
                   **face_row(face, self.labels)}
            if face is not None:
                row["sharpness"] = face_sharpness(rgb, face.box)
            rows.append(row)
        return frame_table(rows, self.labels)



@dataclass(frozen=True)
class RecordingFrames:
    """The analysis of one recording: its frame table, the error that stopped it (then the table
    is empty) and whether it came from the cache."""

    recording: Recording
    frames: pd.DataFrame
    error: str | None = None
    cached: bool = False


class FrameCache:
    """One Parquet frame table per recording in ``folder`` (None: no cache)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def key(self, rec: Recording, window: tuple[float, float], identity: str) -> str:
        files = photo_files(rec.path) if rec.path.is_dir() else [rec.path]
        stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        blob = json.dumps({"v": CACHE_VERSION, "files": stats, "kind": rec.kind, "window": list(window),
                           "analyser": identity}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def load(self, key: str, labels: Sequence[str]) -> pd.DataFrame | None:
        if self.folder is None:
            return None
        path = self.folder / f"{key}.parquet"
        if not path.is_file():
            return None
        try:
            df = pd.read_parquet(path)
        except Exception as err:  # a damaged cache file is re-analysed, never fatal
            log.warning("%s: unreadable cache file, analysing again (%s)", path, err)
            return None
        return df if list(df.columns) == [*BASE_COLUMNS, *labels] else None

    def save(self, key: str, frames: pd.DataFrame) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{key}.{os.getpid()}.tmp"
        frames.to_parquet(tmp, index=False)
        os.replace(tmp, self.folder / f"{key}.parquet")


def recording_window(rec: Recording, duration_s: float) -> tuple[float, float]:
    """The ad's time window in a video recording (``(0, 0)`` for photos)."""
    return (rec.offset_s, rec.offset_s + duration_s) if rec.kind == "video" else (0.0, 0.0)


def read_recording(kind: str, path: Path, window: tuple[float, float], analyser: RecordingAnalyser) -> pd.DataFrame:
    """The frame table of one recording, analysed now (no cache): a video's frames inside ``window``, or
    a photo folder's (or single photo's) rows. Raises EmolensError when it cannot be read."""
    if kind == "video":
        return analyser.analyse_video(path, *window)
    return analyser.analyse_photos(photo_files(path) if path.is_dir() else [path])


RemoteReader = Callable[[Sequence[tuple[Recording, tuple[float, float]]]], Iterable["pd.DataFrame | EmolensError"]]
"""Reads many recordings elsewhere (on Ray: :func:`emolens.cluster.ray_batch.analyze_recordings`): given
``(recording, window)`` pairs, yields for each, in order, its frame table or the EmolensError that stopped it."""


def _from_cache(rec: Recording, window: tuple[float, float], analyser: RecordingAnalyser,
                cache: FrameCache) -> tuple[RecordingFrames | None, str]:
    """(the recording's result when the cache settles it: found there, or its files unreadable; its cache key)."""
    try:
        key = cache.key(rec, window, analyser.identity)
    except OSError as err:
        return RecordingFrames(rec, empty_frames(analyser.labels), f"cannot read {rec.path}: {err}"), ""
    found = cache.load(key, analyser.labels)
    return (None if found is None else RecordingFrames(rec, found, None, cached=True)), key


def _settle(rec: Recording, key: str, got: pd.DataFrame | EmolensError, analyser: RecordingAnalyser,
            cache: FrameCache) -> RecordingFrames:
    """A freshly analysed recording: its frame table saved in the cache, or its error (an empty table)."""
    if isinstance(got, EmolensError):
        log.warning("%s: excluded: %s", rec.path, got)
        return RecordingFrames(rec, empty_frames(analyser.labels), str(got))
    cache.save(key, got)
    return RecordingFrames(rec, got, None, cached=False)


def analyse_recording(
    rec: Recording, duration_s: float, analyser: RecordingAnalyser, cache: FrameCache
) -> RecordingFrames:
    """The frame table of one recording (from the cache when it is there). An EmolensError while
    reading it (unreadable video, ...) gives an empty table and the error's message."""
    window = recording_window(rec, duration_s)
    settled, key = _from_cache(rec, window, analyser, cache)
    if settled is not None:
        return settled
    try:
        got: pd.DataFrame | EmolensError = read_recording(rec.kind, rec.path, window, analyser)
    except EmolensError as err:
        got = err
    return _settle(rec, key, got, analyser, cache)


def analyse_all(manifest: Manifest, analyser: RecordingAnalyser, cache: FrameCache,
                progress: bool = True, remote: RemoteReader | None = None) -> list[RecordingFrames]:
    """Every recording of the manifest analysed once (cache first), in manifest order, with a
    progress bar over recordings on stderr when ``progress``. ``remote``: read the recordings the cache
    does not hold there instead (all at once, e.g. on Ray; ``analyser`` then gives the labels and the
    cache identity, and must describe the engine ``remote`` runs); the results are the same."""
    if remote is not None:
        return _analyse_remote(manifest, analyser, cache, remote)
    from tqdm import tqdm

    out = []
    with tqdm(total=len(manifest.recordings), disable=not progress, unit="rec", file=sys.stderr,
              leave=False, dynamic_ncols=True, desc="recordings") as bar:
        for rec in manifest.recordings:
            out.append(analyse_recording(rec, manifest.ad(rec.ad).duration_s, analyser, cache))
            bar.update(1)
    return out


def _analyse_remote(manifest: Manifest, analyser: RecordingAnalyser, cache: FrameCache,
                    remote: RemoteReader) -> list[RecordingFrames]:
    out: list[RecordingFrames | None] = []
    todo: list[tuple[int, Recording, tuple[float, float], str]] = []
    for rec in manifest.recordings:
        window = recording_window(rec, manifest.ad(rec.ad).duration_s)
        settled, key = _from_cache(rec, window, analyser, cache)
        if settled is None:
            todo.append((len(out), rec, window, key))
        out.append(settled)
    results = remote([(rec, window) for _, rec, window, _ in todo]) if todo else ()
    for (i, rec, _, key), got in zip(todo, results, strict=True):
        out[i] = _settle(rec, key, got, analyser, cache)
    return [r for r in out if r is not None]
