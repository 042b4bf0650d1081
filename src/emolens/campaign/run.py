"""``analyze_campaign``: manifest -> analysed recordings -> QC -> series, KPIs, comparisons -> files.

    from emolens.campaign import analyze_campaign, CampaignSettings
    result = analyze_campaign("campaign.yaml", "out/", settings=CampaignSettings(sample_fps=2))
    result.summary["ranking"], result.series, result.report

Every recording is analysed once (cached in ``out/cache`` or ``cache_dir``; see
:mod:`emolens.campaign.recording`); a recording that cannot be read is excluded with its reason in
the QC table, never a crash. With ``ray=RayOptions(...)`` the recordings are read on Ray actors
(``emolens campaign analyze --ray``), with the same outputs. Definitions: ``docs/campaigns.md``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import EmolensError, InvalidInput
from ..fsio import output_error
from . import compare
from .attention import TIMELINE_COLUMNS, ad_timeline
from .kpis import DEFINITIONS, VIEWER_KPIS, KpiValue, ad_kpis, key_moments, viewer_kpis
from .manifest import Ad, Manifest, Recording, check_budget, load_manifest
from .norms import NormsStore
from .outputs import FILES, jsonable, write_filmstrip, write_summary, write_table, write_thumbnail
from .qc import QCRow, assess_photos, assess_video
from .recording import EngineAnalyser, FrameCache, RecordingAnalyser, RecordingFrames, RemoteReader, analyse_all
from .series import SERIES_COLUMNS, ad_series, frames_in_window, matrix, viewer_seconds
from .verdict import MIN_VIEWERS, decide

if TYPE_CHECKING:
    from ..cluster.ray_batch import RayOptions
    from ..inference.analyzer import Analyzer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignSettings:
    """Thresholds and statistics of a campaign analysis (saved in ``summary.json``).

    ``expressing_threshold``: probability from which a viewer counts as expressing an emotion.
    ``min_face_rate`` / ``min_brightness`` / ``min_sharpness``: QC limits (:mod:`.qc`).
    ``bootstrap``: resamples (and permutations) per CI / test; ``seed``: their seed;
    ``confidence``: level of every interval and test; ``sample_fps``: video frames analysed per second;
    ``min_viewers_ci``: groups (ads, segments) with fewer viewers are flagged and get no CI."""

    expressing_threshold: float = 0.5
    min_face_rate: float = 0.5
    min_brightness: float = 40.0
    min_sharpness: float = 15.0
    bootstrap: int = 2000
    seed: int = 0
    confidence: float = 0.95
    sample_fps: float = 5.0
    min_viewers_ci: int = MIN_VIEWERS

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 < self.expressing_threshold <= 1.0:
            problems.append(f"expressing_threshold must be in (0, 1], got {self.expressing_threshold}")
        if not 0.0 <= self.min_face_rate <= 1.0:
            problems.append(f"min_face_rate must be in [0, 1], got {self.min_face_rate}")
        if self.min_brightness < 0 or self.min_sharpness < 0:
            problems.append("min_brightness and min_sharpness must be >= 0")
        if self.bootstrap < 10:
            problems.append(f"bootstrap must be >= 10 resamples, got {self.bootstrap}")
        if not 0.5 <= self.confidence < 1.0:
            problems.append(f"confidence must be in [0.5, 1), got {self.confidence}")
        if self.min_viewers_ci < 1:
            problems.append(f"min_viewers_ci must be >= 1, got {self.min_viewers_ci}")
        if not 0.0 < self.sample_fps <= 120.0:
            problems.append(f"sample_fps must be in (0, 120], got {self.sample_fps}")
        if problems:
            raise InvalidInput("bad campaign settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CampaignResult:
    """What :func:`analyze_campaign` produced: ``summary`` (the content of summary.json), the
    tables it wrote, the report path and how many
    recordings were analysed now versus taken from the cache."""

    out_dir: Path
    summary: dict[str, Any]
    series: pd.DataFrame
    viewer_seconds: pd.DataFrame
    kpis: pd.DataFrame
    qc: pd.DataFrame
    report: Path
    analysed: int
    from_cache: int


@dataclass
class _Viewer:
    rec: Recording
    qc: QCRow
    frames: pd.DataFrame
    seconds: pd.DataFrame | None = None
    kpis: dict[str, float] = field(default_factory=dict)


def _shown(path: Path, base: Path) -> str:
    """``path`` as the manifest names it: relative to the manifest's folder (POSIX), so outputs carry no
    absolute paths."""
    return Path(os.path.relpath(path, base)).as_posix()


def _assess(rf: RecordingFrames, ad: Ad, labels: Sequence[str], s: CampaignSettings, base: Path) -> _Viewer:
    rec = rf.recording
    if rec.kind == "photos":
        reason, rate, bright, sharp, n = assess_photos(rf.frames)
        seconds = None
    else:
        seconds = viewer_seconds(rf.frames, rec.offset_s, ad.duration_s, labels)
        window = frames_in_window(rf.frames, rec.offset_s, ad.duration_s)
        reason, rate, bright, sharp, n = assess_video(
            window, seconds, min_face_rate=s.min_face_rate, min_brightness=s.min_brightness,
            min_sharpness=s.min_sharpness)
    if rf.error is not None:
        reason, rate = f"could not be analysed: {rf.error}", 0.0
    status = "kept" if reason is None else "excluded"
    qc = QCRow(rec.viewer, rec.ad, _shown(rec.path, base), rec.kind, status, reason, rate, bright, sharp, n)
    v = _Viewer(rec, qc, rf.frames, seconds)
    if seconds is not None and qc.kept:
        v.kpis = viewer_kpis(seconds, labels)
    return v


def _photos_block(viewers: Sequence[_Viewer], labels: Sequence[str]) -> dict[str, Any] | None:
    frames = [v.frames for v in viewers if v.rec.kind == "photos" and v.qc.kept]
    if not frames:
        return None
    df = pd.concat(frames, ignore_index=True)
    face = df.loc[df["face_found"], list(labels)].to_numpy(dtype=float)
    dominant = np.argmax(face, axis=1) if len(face) else np.array([], dtype=int)
    return {
        "n_photos": len(df),
        "no_face_rate": float(1.0 - df["face_found"].mean()) if len(df) else math.nan,
        "mean": {lb: float(face[:, i].mean()) if len(face) else math.nan for i, lb in enumerate(labels)},
        "dominant_share": {lb: float(np.mean(dominant == i)) if len(face) else math.nan
                           for i, lb in enumerate(labels)},
    }


_AdBlock = tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, np.ndarray, dict[str, KpiValue], pd.DataFrame]


def _ad_block(ad: Ad, viewers: Sequence[_Viewer], labels: Sequence[str], attributes: Sequence[str],
              s: CampaignSettings, out_dir: Path, base: Path) -> _AdBlock:
    """(summary entry, long series, per-viewer KPI rows, happiness matrix, KPI values, timeline) of one ad."""
    kept = [v for v in viewers if v.qc.kept and v.seconds is not None]
    seconds = [v.seconds for v in kept if v.seconds is not None]
    series = ad_series(ad.name, seconds, labels, ad.seconds, s.expressing_threshold, s.confidence)
    per_viewer = pd.DataFrame([{"ad": ad.name, "viewer": v.rec.viewer, **v.kpis, **v.rec.attributes} for v in kept],
                              columns=["ad", "viewer", *VIEWER_KPIS, *attributes])
    happy = matrix(seconds, "happiness", ad.seconds) if "happiness" in labels else np.full((len(kept), ad.seconds),
                                                                                          np.nan)
    values = ad_kpis(per_viewer, happy, s.bootstrap, s.seed, s.confidence, s.min_viewers_ci)
    moments = key_moments(seconds, labels, ad.seconds)
    timeline = ad_timeline(ad.name, seconds, labels, ad.seconds, s.confidence)
    for m in moments:
        m["thumbnail"] = write_thumbnail(ad.video, m["second"], out_dir, ad.name) if ad.video else None
    kinds = {v.rec.kind for v in viewers}
    entry = {
        "name": ad.name, "duration_s": ad.duration_s, "video": None if ad.video is None else _shown(ad.video, base),
        "kind": kinds.pop() if len(kinds) == 1 else "mixed", "viewers_total": len(viewers),
        "viewers_kept": sum(v.qc.kept for v in viewers), "kpi_viewers": len(kept),
        "photo_sets": sum(v.rec.kind == "photos" and v.qc.kept for v in viewers),
        "small_group": len(kept) < s.min_viewers_ci, "kpis": {k: kv.to_dict() for k, kv in values.items()},
        "key_moments": moments, "photos": _photos_block(viewers, labels),
    }
    entry["attention_available"] = bool(timeline["n_attention"].sum() > 0)
    entry["filmstrip"] = write_filmstrip(ad.video, ad.duration_s, out_dir, ad.name) if ad.video else []
    return entry, series, per_viewer, happy, values, timeline


def _viewer_seconds_table(viewers: Sequence[_Viewer], labels: Sequence[str], attributes: Sequence[str]) -> pd.DataFrame:
    parts = []
    for v in viewers:
        if v.qc.kept and v.seconds is not None:
            df = v.seconds.drop(columns=["covered"]).assign(ad=v.rec.ad, viewer=v.rec.viewer)
            parts.append(df.assign(**{a: v.rec.attributes.get(a, "") for a in attributes}))
    cols = ["ad", "viewer", "second", "face_found", "looking", *labels, *attributes]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def _analyser(analyzer: Analyzer | RecordingAnalyser | None, s: CampaignSettings) -> RecordingAnalyser:
    if analyzer is None:
        analyzer = _default_analyzer()
    from ..inference.analyzer import Analyzer

    if isinstance(analyzer, Analyzer):
        return EngineAnalyser(analyzer, s.sample_fps)
    return analyzer


def _ray_engine(analyzer: Analyzer | RecordingAnalyser | None, ray: RayOptions) -> Any:
    """The driver's engine of a run on Ray, built from the actors' recipe (``ray.spec``) so that the cache
    identity and the labels are those of the engine the actors run."""
    from ..cluster.ray_batch import require_ray
    from ..cluster.worker import build_analyzer

    if analyzer is not None:
        raise InvalidInput("on Ray the engine is built from ray.spec on every actor: give no analyzer")
    require_ray()  # a missing cluster extra is named before the engine loads
    return (ray.factory or build_analyzer)(ray.spec)


def _ray_reader(ray: RayOptions, sample_fps: float, progress: bool) -> RemoteReader:
    """Reads recordings on Ray actors (:func:`emolens.cluster.ray_batch.analyze_recordings`)."""
    from ..cluster.ray_batch import analyze_recordings

    def read(jobs: Sequence[tuple[Recording, tuple[float, float]]]) -> Iterator[pd.DataFrame | EmolensError]:
        outcomes = analyze_recordings([(rec.kind, rec.path, window) for rec, window in jobs], sample_fps, ray.spec,
                                      actors=ray.actors, max_retries=ray.max_retries, progress=progress,
                                      address=ray.address, factory=ray.factory)
        for o in outcomes:
            yield o.value if o.error is None else o.error

    return read


def _default_analyzer() -> Analyzer:
    from ..inference.analyzer import Analyzer

    return Analyzer()


def _write_report(summary: dict[str, Any], series: pd.DataFrame, out_dir: Path, timeline: pd.DataFrame,
                  viewer_seconds: pd.DataFrame, viewer_kpis: pd.DataFrame) -> Path:
    from . import report

    return Path(report.write_report(summary, series, out_dir, timeline=timeline, viewer_seconds=viewer_seconds,
                                    viewer_kpis=viewer_kpis))


def _summary(m: Manifest, an: RecordingAnalyser, s: CampaignSettings, blocks: dict[str, _AdBlock],
             per_viewer: pd.DataFrame, viewers: Sequence[_Viewer]) -> dict[str, Any]:
    """The content of summary.json (JSON-ready: NaN -> null)."""
    names = [ad.name for ad in m.ads]
    counts = {n: len(blocks[n][2]) for n in names}
    ranking = compare.ranking(names, {n: blocks[n][4] for n in names}, counts)
    tests = compare.comparisons(names, per_viewer, s.bootstrap, s.seed, s.confidence, s.min_viewers_ci)
    summary: dict[str, Any] = {
        "campaign": m.name, "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "emolens_version": __version__, "model": {"name": an.model_name, "labels": list(an.labels),
                                                    "id": getattr(an, "model_id", None) or an.model_name,
                                                    "card": getattr(an, "model_card", None)},
        "settings": s.to_dict(), "definitions": DEFINITIONS,
        "verdict": decide(ranking, tests, counts, s.confidence),
        "ads": [blocks[n][0] for n in names], "ranking": ranking, "comparisons": tests,
        "segments": compare.segments(names, per_viewer, {n: blocks[n][3] for n in names}, m.attributes,
                                     s.bootstrap, s.seed, s.confidence, s.min_viewers_ci),
        "qc": [v.qc.to_dict() for v in viewers], "files": dict(FILES),
    }
    return jsonable(summary)


def _annotate(viewers: Sequence[_Viewer], m: Manifest, labels: Sequence[str], s: CampaignSettings, out: Path,
              blur: bool, blocks: dict[str, _AdBlock]) -> None:
    """Annotated videos of the kept video viewers, named in their ad's ``viewer_videos``."""
    from .annotated import write_viewer_video

    for v in viewers:
        if v.qc.kept and v.rec.kind == "video":
            ad = m.ad(v.rec.ad)
            window = frames_in_window(v.frames, v.rec.offset_s, ad.duration_s)
            rel = write_viewer_video(v.rec.path, window, labels, s.sample_fps, out, ad.name, v.rec.viewer, blur)
            if rel is not None:
                blocks[ad.name][0].setdefault("viewer_videos", {})[v.rec.viewer] = rel


def _norms(store: NormsStore, summary: dict[str, Any], an: RecordingAnalyser) -> dict[str, Any]:
    """Percentiles among the norm base (read first, so an ad never meets itself), then the record."""
    model_id = summary["model"]["id"]
    ads = [{"name": a["name"], "viewers": a["kpi_viewers"], "kpis": {k: v["value"] for k, v in a["kpis"].items()}}
           for a in summary["ads"]]
    found = store.percentiles(summary["campaign"], ads, model_id)
    store.record(summary["campaign"], ads, model=an.model_name, model_id=model_id,
                 analysed_at=summary["generated_at"])
    return {"store": store.path.name, "model_id": model_id, "ads": found,
            "rule": "percentile among the ads of other campaigns already in the store, analysed with the same "
                    "model file: 100 x (below + equal / 2) / base"}


def analyze_campaign(
    manifest: str | Path | Manifest,
    out_dir: str | Path,
    analyzer: Analyzer | RecordingAnalyser | None = None,
    settings: CampaignSettings | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    norms: NormsStore | None = None,
    annotate: bool = False,
    blur: bool = False,
    ray: RayOptions | None = None,
) -> CampaignResult:
    """Analyse a campaign and write its outputs into ``out_dir`` (see ``docs/campaigns.md``).

    ``manifest``: a manifest path or a loaded :class:`Manifest`. ``analyzer``: an
    :class:`emolens.Analyzer` (default: the packaged model) or any :class:`RecordingAnalyser`.
    ``cache_dir``: where per-recording analyses are kept (default ``out_dir/cache``).
    ``annotate``: write an annotated H.264 video of each kept video viewer (``videos/``, faces
    pixelated with ``blur``) for the report's drill-down (:mod:`.annotated`).
    ``norms``: a norms store (:mod:`.norms`): each ad's KPI percentiles among the earlier ads of
    the same model go into ``summary["norms"]``, then the ads are recorded in it.
    ``ray``: read the recordings on Ray actors (:class:`~emolens.cluster.ray_batch.RayOptions`: the engine
    recipe, a cluster address); the outputs are those of a run without it, and a recording that fails
    on Ray (after retries) is excluded with its reason as an unreadable one is. ``analyzer`` must then be None.
    Raises :class:`~emolens.campaign.manifest.ManifestError` for a bad manifest and
    :class:`~emolens.errors.InvalidInput` for bad settings; unreadable recordings are excluded."""
    s = settings or CampaignSettings()
    m = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
    check_budget(m, s.bootstrap)  # resample matrices grow with bootstrap x ad seconds
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"--out {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # read-only or unwritable: a named error before any work
        raise output_error(out, err) from err
    an = _analyser(analyzer if ray is None else _ray_engine(analyzer, ray), s)
    labels = tuple(an.labels)
    remote = None if ray is None else _ray_reader(ray, s.sample_fps, progress)
    analysed = analyse_all(m, an, FrameCache(Path(cache_dir) if cache_dir else out / "cache"), progress, remote)
    base = Path(m.path).parent
    viewers = [_assess(rf, m.ad(rf.recording.ad), labels, s, base) for rf in analysed]
    blocks = {ad.name: _ad_block(ad, [v for v in viewers if v.rec.ad == ad.name], labels, m.attributes, s, out, base)
              for ad in m.ads}
    if annotate:
        _annotate(viewers, m, labels, s, out, blur, blocks)
    per_viewer = pd.concat([b[2] for b in blocks.values()], ignore_index=True)
    series = pd.concat([b[1] for b in blocks.values()], ignore_index=True)[list(SERIES_COLUMNS)]
    timeline = pd.concat([b[5] for b in blocks.values()], ignore_index=True)[list(TIMELINE_COLUMNS)]
    vs_table = _viewer_seconds_table(viewers, labels, m.attributes)
    qc = pd.DataFrame([v.qc.to_dict() for v in viewers])
    summary = _summary(m, an, s, blocks, per_viewer, viewers)
    if norms is not None:
        summary["norms"] = jsonable(_norms(norms, summary, an))
    write_table(series, out, "series")
    write_table(vs_table, out, "viewer_seconds")
    write_table(timeline, out, "timeline")
    write_table(per_viewer, out, "kpis", parquet=False)
    write_table(qc, out, "qc", parquet=False)
    write_summary(summary, out)
    report = _write_report(summary, series, out, timeline, vs_table, per_viewer)
    n_cached = sum(rf.cached for rf in analysed)
    return CampaignResult(out, summary, series, vs_table, per_viewer, qc, report, len(analysed) - n_cached,
                          n_cached)
