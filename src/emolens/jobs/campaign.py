"""The ``campaign`` job: run :func:`emolens.campaign.analyze_campaign` in the background.

A campaign job reads a manifest that lies inside one folder, its *root*: the job's own upload
folder (``POST /v1/campaigns``) or the server's data root (``POST /v1/campaigns/from-path``).
:func:`load_confined` reads it for the API before a job exists and again when the job starts
(files may have changed meanwhile): every path the manifest names must resolve, symlinks followed,
inside the root (checked before anything is opened, so a client cannot even learn whether a file
outside exists), else :class:`OutsideDataRoot` (403) or, for an upload, ``InvalidInput`` (422).

:func:`campaign_kind` builds the job kind. Its run function wraps the recording analyser so that
it reports progress per recording (``"k/n recordings"``), stops between recordings when the server
shuts down, and keeps each recording's frame table in a cache shared by all campaign jobs, keyed
by the files' *content* (a re-uploaded file lands at a new path), the ad window and the analyser's
identity: re-submitting a campaign with one more viewer analyses only that viewer. Server paths
never leave the job: the result, ``summary.json``, ``qc.csv`` and ``report.html`` name files
relative to the manifest, error messages relative to the root (what the client sent: the upload's
file names, or paths under the data root); any server path left is rewritten before it is stored.
The job's work folder (uploads, scratch) is deleted when it ends. A recording that could not be
analysed is excluded (QC) and named in the job's warnings: the job ends ``partial``, not ``succeeded``.

Job params (JSON): ``source`` (``upload`` | ``data_root``), ``manifest`` (the client's name for
it), ``campaign``, ``recordings``, ``ads``, ``options`` (:class:`CampaignSettings` fields), and the
server-private ``_manifest``, ``_root``, ``_work`` (paths; never shown to clients).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import yaml

from ..errors import EmolensError, InvalidInput, UnsupportedMedia
from ..fsio import file_sha256
from .models import JobRecord
from .runner import JobContext, JobKind

if TYPE_CHECKING:
    import pandas as pd

    from ..campaign.manifest import Manifest
    from ..campaign.recording import FrameCache, RecordingAnalyser
    from ..campaign.run import CampaignSettings

log = logging.getLogger(__name__)

CAMPAIGN_KIND = "campaign"
CONTENT_CACHE_VERSION = 1
"""Part of every content-cache key: bump it when the frame table changes meaning."""
Source = Literal["upload", "data_root"]
_RECORDING_KEYS = frozenset({"recording", "path", "file"})  # and the manifest's aliases of it
_AD_KEYS = frozenset({"video"})
_CSV_KEYS = _RECORDING_KEYS | {"ad_video"}
_ABS_PATH = re.compile(r"(?:^|(?<=[\s'\"(=]))/[^\s'\",;)]+")
_END = r"(?=$|[/\s'\",;:)\]])"  # where a path may end
_save_lock = threading.Lock()


class OutsideDataRoot(EmolensError):
    """A manifest, or a file it names, lies outside the folder the server may read (HTTP 403)."""

    exit_code = 2
    http_status = 403


# ------------------------------------------------------------------ confinement


def _merged_pairs(node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
    """A mapping node's (key, value) pairs, including those brought in by YAML merge keys (``<<``)."""
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "<<":
            merged = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for m in merged:
                if isinstance(m, yaml.MappingNode):
                    yield from _merged_pairs(m)
        else:
            yield key, value


def _yaml_refs(text: str) -> list[tuple[int, str]]:
    from ..safeyaml import compose

    try:
        root = compose(text)
    except yaml.YAMLError:
        return []  # load_manifest reports it, with its line
    refs: list[tuple[int, str]] = []
    if not isinstance(root, yaml.MappingNode):
        return refs
    for key, value in _merged_pairs(root):
        keys = {"ads": _AD_KEYS, "recordings": _RECORDING_KEYS}.get(str(key.value))
        if keys is None or not isinstance(value, yaml.SequenceNode):
            continue
        for item in value.value:
            if isinstance(item, yaml.MappingNode):
                refs += [(item.start_mark.line + 1, str(v.value)) for k, v in _merged_pairs(item)
                         if isinstance(k, yaml.ScalarNode) and k.value in keys and isinstance(v, yaml.ScalarNode)]
    return refs


def _csv_refs(text: str) -> list[tuple[int, str]]:
    import csv

    rows = csv.reader(text.splitlines())
    try:
        header = [h.strip() for h in next(rows, [])]
        cols = [i for i, h in enumerate(header) if h in _CSV_KEYS]
        return [(n + 2, row[i]) for n, row in enumerate(rows) for i in cols if i < len(row)]
    except csv.Error:
        return []  # load_manifest reports it


def referenced_paths(manifest: Path) -> list[tuple[int, str]]:
    """``(line, value)`` of every recording and ad-video path a manifest names (unchecked; empty
    when the manifest cannot be parsed: :func:`load_manifest` then says why)."""
    from ..campaign.manifest import MAX_MANIFEST_BYTES

    try:
        with manifest.open("rb") as fh:
            text = fh.read(MAX_MANIFEST_BYTES + 1).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return []
    if len(text) > MAX_MANIFEST_BYTES:
        return []  # load_manifest refuses it
    refs = _csv_refs(text) if manifest.suffix.lower() == ".csv" else _yaml_refs(text)
    return [(line, value.strip()) for line, value in refs if value.strip()]


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves (symlinks followed) inside ``root``; False for paths that cannot be
    resolved (a symlink loop, a NUL byte, a name too long)."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte, a name too long
        return False


def _escape_error(source: Source, shown: str, lines: Sequence[str]) -> EmolensError:
    if source == "upload":
        return InvalidInput(f"{shown}: the manifest names files outside the upload (every path must be "
                            "relative to the manifest, without '..'): " + "; ".join(lines))
    return OutsideDataRoot(f"{shown}: the manifest names files outside the server's data root: " + "; ".join(lines))


def _check_paths(manifest: Path, root: Path, source: Source, shown: str) -> None:
    """Refuse a manifest naming any path that resolves outside ``root`` (before anything is opened)."""
    bad = []
    from ..campaign.manifest import path_problem

    for line, value in referenced_paths(manifest):
        if path_problem(value) is not None:
            continue  # load_manifest names the problem (and opens nothing)
        p = Path(value).expanduser()
        if not inside(p if p.is_absolute() else manifest.parent / p, root):
            bad.append(f"line {line}: {value!r} is outside")  # what the client wrote, never where it leads
    if bad:
        raise _escape_error(source, shown, bad)


def _check_loaded(m: Manifest, root: Path, source: Source, shown: str) -> None:
    """Every file the loaded manifest will read (photos in folders too) resolves inside ``root``."""
    from ..campaign.manifest import photo_files

    bad = []
    for rec in m.recordings:
        files = [rec.path, *(photo_files(rec.path) if rec.path.is_dir() else [])]
        if not all(inside(f, root) for f in files):
            bad.append(f"line {rec.line}: the recording of viewer {rec.viewer!r} is outside")
    bad += [f"line {ad.line}: the video of ad {ad.name!r} is outside" for ad in m.ads
            if ad.video is not None and not inside(ad.video, root)]
    if bad:
        raise _escape_error(source, shown, bad)


def load_confined(manifest: Path, root: Path, source: Source, shown: str) -> Manifest:
    """Load ``manifest`` (which lies in ``root``) for a job, every file it names confined to ``root``.

    ``shown`` is the client's name for the manifest, used in messages, which name files relative
    to ``root`` and never a server path. Raises :class:`OutsideDataRoot` (data root) or
    :class:`InvalidInput` (upload) for a path escaping ``root``, a ``ManifestError`` (422) naming
    the line of each problem otherwise."""
    from ..campaign.manifest import ManifestError, load_manifest

    root = root.resolve()
    if not inside(manifest, root):
        raise _escape_error(source, shown, ["the manifest itself is outside"])
    _check_paths(manifest, root, source, shown)
    try:
        m = load_manifest(manifest)
    except ManifestError as err:
        clean = Scrubber(root)
        raise ManifestError(shown, [_ABS_PATH.sub("<server path>", clean.text(p)) for p in err.problems]) from None
    _check_loaded(m, root, source, shown)
    return m


# ------------------------------------------------------------------ no server paths out


class Scrubber:
    """Rewrites server paths in texts, JSON values and tables: ``root/x`` -> ``x``, other given
    folders -> ``<server>``."""

    def __init__(self, root: Path, *others: Path) -> None:
        pairs: dict[str, str] = {}
        for folder in {root, root.resolve()}:
            pairs[f"{folder}/"], pairs[str(folder)] = "", "."
        for folder in others:
            for f in {folder, folder.resolve()}:
                pairs.setdefault(str(f), "<server>")
        self._new = pairs
        olds = sorted(pairs, key=len, reverse=True)  # the longest match wins
        self._re = re.compile("|".join(re.escape(o) + ("" if o.endswith("/") else _END) for o in olds))

    def text(self, text: str) -> str:
        return self._re.sub(lambda m: self._new[m.group(0)], text)

    def json(self, obj: Any) -> Any:
        if isinstance(obj, Mapping):
            return {k: self.json(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.json(v) for v in obj]
        return self.text(obj) if isinstance(obj, str) else obj

    def table(self, df: pd.DataFrame) -> pd.DataFrame:
        from pandas.api.types import is_numeric_dtype

        df = df.copy()
        for col in df.columns:
            if not is_numeric_dtype(df[col]):  # object or string columns
                df[col] = df[col].map(lambda v: self.text(v) if isinstance(v, str) else v)
        return df


# ------------------------------------------------------------------ the analyser wrapper


def _digest(path: Path) -> str:
    """SHA-256 of a file's bytes, remembered per (resolved path, size, mtime) in this process, so a
    campaign re-run from the data root does not read every video again just to find it cached."""
    st = path.stat()
    return _digest_of(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=65536)
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)  # cached per (path, size, mtime): the same file is hashed once


class Progress(Protocol):
    """What :class:`JobAnalyser` uses of a :class:`JobContext`."""

    def check(self) -> None: ...

    def report(self, progress: float | None = None, message: str | None = None, **details: Any) -> None: ...


class JobAnalyser:
    """A :class:`RecordingAnalyser` around another: content-keyed cache, progress per recording,
    a stop between recordings. ``analysed``/``from_cache`` count recordings as they pass."""

    def __init__(self, inner: RecordingAnalyser, cache: FrameCache, ctx: Progress | None, total: int) -> None:
        self.inner, self.cache, self.ctx, self.total = inner, cache, ctx, max(1, total)
        self.labels: tuple[str, ...] = tuple(inner.labels)
        self.model_name: str = inner.model_name
        self.identity: str = inner.identity
        self.model_id = getattr(inner, "model_id", None)  # the report's model identity and card
        self.model_card = getattr(inner, "model_card", None)
        self.done = self.analysed = self.from_cache = 0

    def key(self, kind: str, files: Sequence[Path], window: tuple[float, float]) -> str:
        """Cache key: file contents (and photo names, which the frame table keeps), window, analyser."""
        blob = json.dumps({"v": CONTENT_CACHE_VERSION, "kind": kind, "window": list(window),
                           "files": [[f.name if kind == "photos" else "", _digest(f)] for f in files],
                           "analyser": self.identity}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def analyse_video(self, path: Path, start_s: float, end_s: float) -> pd.DataFrame:
        return self._one("video", [path], (start_s, end_s), lambda: self.inner.analyse_video(path, start_s, end_s))

    def analyse_photos(self, paths: Sequence[Path]) -> pd.DataFrame:
        return self._one("photos", list(paths), (0.0, 0.0), lambda: self.inner.analyse_photos(paths))

    def _one(self, kind: str, files: Sequence[Path], window: tuple[float, float],
             analyse: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        if self.ctx is not None:
            self.ctx.check()
        try:
            try:
                key = self.key(kind, files, window)
            except OSError as err:
                raise UnsupportedMedia(f"{files[0]}: cannot be read ({err.strerror or err})") from None
            frames = self.cache.load(key, self.labels)
            if frames is not None:
                self.from_cache += 1
                return frames
            frames = analyse()
            with _save_lock:  # two jobs may finish the same recording at once
                self.cache.save(key, frames)
            self.analysed += 1
            return frames
        finally:
            self.done += 1
            self._report()

    def _report(self) -> None:
        if self.ctx is not None:
            message = f"{self.done}/{self.total} recordings"
            if self.done >= self.total:
                message += "; computing KPIs, comparisons and the report"
            self.ctx.report(0.95 * min(1.0, self.done / self.total), message,
                            recordings_done=self.done, recordings_total=self.total, analysed=self.analysed,
                            from_cache=self.from_cache)


# ------------------------------------------------------------------ the job kind


def campaign_settings(options: Mapping[str, Any]) -> CampaignSettings:
    """:class:`CampaignSettings` from job options (``InvalidInput`` naming each bad value)."""
    from ..campaign.run import CampaignSettings

    return CampaignSettings(**dict(options))


def _rewrite_outputs(result: Any, out: Path, clean: Scrubber) -> dict[str, Any]:
    """Server paths out of summary.json, qc.csv and report.html; returns the public summary."""
    from ..campaign.outputs import write_summary, write_table

    summary: dict[str, Any] = clean.json(result.summary)
    write_summary(summary, out)
    write_table(clean.table(result.qc), out, "qc", parquet=False)
    if result.report is not None:
        from ..campaign.report import write_report

        write_report(summary, result.series, out)
    return summary


def campaign_kind(analyser_for: Callable[[CampaignSettings], RecordingAnalyser], cache_dir: Path) -> JobKind:
    """The ``campaign`` job kind. ``analyser_for(settings)`` gives the recording analyser (the
    server's: an :class:`~emolens.campaign.recording.EngineAnalyser` on its shared analyzer);
    ``cache_dir`` holds the content-keyed frame tables shared by every campaign job."""

    def run(ctx: JobContext) -> dict[str, Any]:
        from ..campaign.recording import FrameCache
        from ..campaign.run import analyze_campaign

        p = ctx.params
        root, work, shown = Path(p["_root"]), Path(p["_work"]), str(p.get("manifest") or "manifest")
        clean = Scrubber(root, work, ctx.out_dir, cache_dir)
        ctx.report(0.0, "checking the manifest", force=True)
        try:
            settings = campaign_settings(p.get("options") or {})
            manifest = load_confined(Path(p["_manifest"]), root, p.get("source", "upload"), shown)
            analyser = JobAnalyser(analyser_for(settings), FrameCache(cache_dir), ctx, len(manifest.recordings))
            result = analyze_campaign(manifest, ctx.out_dir, analyser, settings, cache_dir=work / "frames",
                                      progress=False)
            ctx.report(0.98, "writing the outputs", force=True)
            summary = _rewrite_outputs(result, ctx.out_dir, clean)
        except EmolensError as err:
            raise _scrubbed(err, clean) from None
        for row in summary.get("qc") or []:  # a recording that could not be read: the job is partial
            if str(row.get("reason") or "").startswith("could not be analysed"):
                ctx.warn(f"recording of viewer {row.get('viewer')!r} for ad {row.get('ad')!r}: {row['reason']}")
        return {"manifest": shown, "campaign": summary.get("campaign"), "recordings": len(manifest.recordings),
                "analysed": analyser.analysed, "from_cache": analyser.from_cache, "summary": summary}

    def cleanup(record: JobRecord) -> None:
        work = record.params.get("_work")
        if work and Path(work).name.startswith("campaign-"):
            shutil.rmtree(work, ignore_errors=True)

    return JobKind(CAMPAIGN_KIND, run, cleanup)


def _scrubbed(err: EmolensError, clean: Scrubber) -> EmolensError:
    """``err`` with server paths rewritten (same class when it can be rebuilt from a message)."""
    message = clean.text(str(err))
    if message == str(err):
        return err
    try:
        return type(err)(message)
    except TypeError:
        return InvalidInput(message) if isinstance(err, InvalidInput) else EmolensError(message)
