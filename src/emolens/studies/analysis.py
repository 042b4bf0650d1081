"""The ``study`` job: analyse one finished viewer session, then rebuild the study's campaign report.

Submitted when a viewer's page finishes (``POST .../finish``); runs on the server's job runner like
video and campaign jobs, so it has progress, survives restarts the same way and is listed in
``/v1/jobs``. It

1. walks the session's WebM (a ``MediaRecorder`` file says no duration: the last frame's time is
   measured, so an upload cut short is named as such), then, for each ad the viewer watched, runs
   the campaign's recording analyser (:class:`~emolens.campaign.recording.EngineAnalyser` on the
   server's model) on the ad's stretch of the recording and stores the frame table in *ad time*
   (:func:`emolens.studies.timing.to_ad_time`: stalls and pauses left out) under
   ``frames/<viewer>/<ad id>.parquet``, or the reason it could not under ``<ad id>.error.txt``;
2. deletes the raw recording unless the study keeps recordings;
3. runs :func:`emolens.campaign.analyze_campaign` over every analysed session of the study (each
   (viewer, ad) a recording at offset 0 whose frames are the stored table; the viewers' answers
   are their attributes) and writes its outputs (``report.html``, ``summary.json``, ``qc.csv``,
   ``kpis.csv``, ``series.csv`` ...) as the job's files. The study's report is the latest job's.

An ad the viewer did not watch to its end is left out of the report for that viewer (its reason
is in the QC table), so no partial viewing enters the curves as if it were complete.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import EmolensError, UnsupportedMedia
from ..jobs.models import JobRecord, JobState
from ..jobs.runner import JobContext, JobKind
from .media import last_frame_time
from .models import Session, SessionState, Study
from .store import StudyStore
from .timing import AdTiming, parse_timing, to_ad_time

if TYPE_CHECKING:
    from ..campaign.recording import RecordingAnalyser
    from ..campaign.run import CampaignSettings

log = logging.getLogger(__name__)

STUDY_KIND = "study"
END_SLACK_S = 0.5
"""How far an ad may end after the recording's last frame before the upload counts as cut short."""


class StoredFrames:
    """A :class:`RecordingAnalyser` over stored frame tables: the "recording" of a (viewer, ad) is
    its ``.parquet`` table (already in ad time), or its ``.error.txt`` whose text is the reason."""

    def __init__(self, labels: Sequence[str], model_name: str, identity: str) -> None:
        self.labels, self.model_name, self.identity = tuple(labels), model_name, f"stored:{identity}"

    def analyse_video(self, path: Path, start_s: float, end_s: float) -> pd.DataFrame:
        if path.suffix == ".txt":
            raise UnsupportedMedia(path.read_text(encoding="utf-8").strip() or "the recording could not be analysed")
        frames = pd.read_parquet(path)
        return frames[(frames["t"] >= start_s) & (frames["t"] < end_s)].reset_index(drop=True)

    def analyse_photos(self, paths: Sequence[Path]) -> pd.DataFrame:
        raise UnsupportedMedia("a study has no photo tests")


def _ad_result(store: StudyStore, study: Study, session: Session, timing: AdTiming, recording: Path,
               recording_end: float, analyser: RecordingAnalyser) -> None:
    """Analyse one ad of the session; writes ``<ad>.parquet`` or ``<ad>.error.txt``."""
    folder = store.frames_dir(study.id, session.viewer)
    folder.mkdir(parents=True, exist_ok=True)
    ad = study.ad(timing.ad_id)
    name = ad.name if ad is not None else timing.ad_id
    error: str | None = None
    if not timing.completed:
        error = f"ad {name!r} did not play to its end (the browser stopped it or could not play it)"
    elif recording_end < 0:
        error = "the recording has no frame that can be decoded (damaged or empty upload)"
    elif timing.rec_end > recording_end + END_SLACK_S:
        error = (f"the recording stops at {recording_end:.1f} s but ad {name!r} played until "
                 f"{timing.rec_end:.1f} s: the upload is incomplete or damaged")
    if error is None:
        try:
            frames = analyser.analyse_video(recording, timing.rec_start, timing.rec_end)
            to_ad_time(frames, timing).to_parquet(folder / f"{timing.ad_id}.parquet", index=False)
            return
        except EmolensError as err:
            error = str(err).replace(str(recording), "the recording")
    (folder / f"{timing.ad_id}.error.txt").write_text(error, encoding="utf-8")


def analyse_session(store: StudyStore, study: Study, session: Session, analyser: RecordingAnalyser,
                    ctx: JobContext | None = None) -> int:
    """Step 1 and 2 of the module doc; returns how many ads were analysed (not errors)."""
    recording = store.recording_path(study.id, session.id)
    ads = {a.id: (a.name, a.duration_s) for a in study.ads}
    timings = parse_timing(session.timing or [], ads, session.ad_order)
    try:
        if recording.exists():
            with recording.open("r+b") as f:  # bytes past the last acknowledged chunk are not the viewer's
                f.truncate(session.received)
            recording_end = last_frame_time(recording)[0]
        else:
            recording_end = -1.0
        for i, timing in enumerate(timings):
            if ctx is not None:
                ctx.report(0.8 * i / max(1, len(timings)), f"viewer {session.viewer}: ad {i + 1}/{len(timings)}",
                           force=True)
            _ad_result(store, study, session, timing, recording, recording_end, analyser)
    finally:
        if not study.keep_recordings:
            recording.unlink(missing_ok=True)
    folder = store.frames_dir(study.id, session.viewer)
    return sum(1 for t in timings if (folder / f"{t.ad_id}.parquet").exists())


def study_manifest(store: StudyStore, study: Study) -> Any:
    """The study as a campaign :class:`~emolens.campaign.manifest.Manifest` over the stored
    analyses of its analysed sessions (None when no viewer has any yet). Ads nobody watched
    are left out."""
    from ..campaign.manifest import Ad, Manifest, Recording

    recordings = []
    for s in store.sessions(study.id):
        if s.state is not SessionState.ANALYSED:
            continue
        folder = store.frames_dir(study.id, s.viewer)
        for ad in study.ads:
            for suffix in (".parquet", ".error.txt"):
                path = folder / f"{ad.id}{suffix}"
                if path.exists():
                    recordings.append(Recording(viewer=s.viewer, ad=ad.name, path=path, kind="video", offset_s=0.0,
                                                attributes=dict(s.answers)))
                    break
    if not recordings:
        return None
    watched = {r.ad for r in recordings}
    base = store.study_dir(study.id)
    ads = tuple(Ad(name=a.name, duration_s=a.duration_s, video=base / a.file) for a in study.ads if a.name in watched)
    return Manifest(path=base / "study.yaml", name=study.name, ads=ads, recordings=tuple(recordings))


def build_report(store: StudyStore, study: Study, out_dir: Path, stored: StoredFrames,
                 settings: CampaignSettings) -> dict[str, Any] | None:
    """Step 3: the campaign outputs of the whole study in ``out_dir``; the summary (None: no viewer yet)."""
    from ..campaign.run import analyze_campaign

    manifest = study_manifest(store, study)
    if manifest is None:
        return None
    with tempfile.TemporaryDirectory(prefix="emolens-study-") as cache:
        result = analyze_campaign(manifest, out_dir, stored, settings, cache_dir=cache, progress=False)
    return result.summary


def study_kind(store_for: Callable[[], StudyStore],
               analyser_for: Callable[[CampaignSettings], RecordingAnalyser]) -> JobKind:
    """The ``study`` job kind. ``store_for()`` gives the study store; ``analyser_for(settings)``
    the recording analyser (the server's: an EngineAnalyser on its shared model)."""

    def run(ctx: JobContext) -> dict[str, Any]:
        from ..jobs.campaign import campaign_settings

        store = store_for()
        p = ctx.params
        study = store.get(p["study"])
        session = store.session(study.id, p["session"])
        settings = campaign_settings(study.options)
        analyser = analyser_for(settings)
        ctx.report(0.0, f"viewer {session.viewer}: reading the recording", force=True)
        analysed = 0
        if session.state is SessionState.ANALYSING:
            analysed = analyse_session(store, study, session, analyser, ctx)
            store.update_session(study.id, session.id, state=SessionState.ANALYSED, expect=(SessionState.ANALYSING,))
        ctx.report(0.85, "building the study report", force=True)
        stored = StoredFrames(analyser.labels, analyser.model_name, analyser.identity)
        summary = build_report(store, study, ctx.out_dir, stored, settings)
        viewers = len({q["viewer"] for q in (summary or {}).get("qc", [])})
        if summary is not None:
            store.set_report(study.id, ctx.job_id, viewers)
        return {"study": study.id, "viewer": session.viewer, "ads_analysed": analysed, "viewers_in_report": viewers,
                "summary": summary}

    def cleanup(record: JobRecord) -> None:
        if record.state is not JobState.FAILED:
            return
        try:
            store = store_for()
            study = store.get(record.params["study"])
            session = store.session(study.id, record.params["session"])
        except EmolensError:
            return  # the study was deleted meanwhile
        store.update_session(study.id, session.id, state=SessionState.FAILED,
                             reason=f"the analysis failed: {record.error}", expect=(SessionState.ANALYSING,))
        if not study.keep_recordings:
            store.recording_path(study.id, session.id).unlink(missing_ok=True)

    return JobKind(STUDY_KIND, run, cleanup)
