"""What the study routes call: create studies and ads, run viewer sessions, submit their analysis.

:class:`StudyService` owns the :class:`~emolens.studies.store.StudyStore` (opened on first use)
and submits ``study`` jobs to the server's job runner (given as a callable, so the API's job
service may start later or be swapped in tests). Housekeeping runs whenever a study is read:
sessions silent for ``stale_after_s`` become ``abandoned`` (their partial recording deleted) and
kept recordings older than the study's ``retention_days`` are deleted.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import EllipsisType
from typing import Any

from ..errors import EmolensError, InvalidInput, MediaTooLarge, UnsupportedMedia
from ..jobs.models import JobRecord, JobStoreError
from ..jobs.runner import JobContext, JobKind, JobRunner
from .analysis import STUDY_KIND, study_kind
from .media import AD_SUFFIXES, video_facts
from .models import (
    Question,
    Session,
    SessionState,
    SessionStateError,
    Study,
    StudyAd,
    StudyClosed,
    TooManyViewers,
)
from .settings import StudySettings
from .store import StudyStore
from .timing import parse_timing
from .uploads import check_open, forget_lock, write_chunk

log = logging.getLogger(__name__)

REPORT_DIR = "report"
_report_lock = threading.Lock()


class StudyService:
    """Studies of one server under ``root``; ``runner_for()`` gives the job runner."""

    def __init__(self, root: Path, limits: StudySettings, runner_for: Callable[[], JobRunner]) -> None:
        self.root = Path(root).expanduser()
        self.limits = limits
        self._runner_for = runner_for
        self._store: StudyStore | None = None
        self._lock = threading.Lock()

    @property
    def store(self) -> StudyStore:
        """The study store, opened on first use; a :class:`JobStoreError` naming no server path if it cannot be."""
        with self._lock:
            if self._store is None:
                try:
                    self._store = StudyStore(self.root)
                except JobStoreError as err:
                    log.error("studies are unavailable: %s", err)
                    raise JobStoreError("the study store of this server is unavailable (see the server log)") from None
            return self._store

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    def job_kind(self, analyser_for: Callable[[Any], Any]) -> JobKind:
        """The ``study`` job kind on this service's store (register it with the job runner);
        ``analyser_for(campaign_settings)`` gives the recording analyser."""
        kind = study_kind(lambda: self.store, analyser_for)
        run = kind.run

        def run_and_publish(ctx: JobContext) -> Mapping[str, Any] | None:
            result = run(ctx)
            if result is not None and result.get("summary") is not None:
                self._publish(str(result["study"]), ctx.job_id, ctx.out_dir)
            return result

        return JobKind(kind.name, run_and_publish, kind.cleanup)

    def _publish(self, study_id: str, job_id: str, out_dir: Path) -> None:
        """Copy the report of ``job_id`` into the study's folder if it is (still) the study's latest."""
        with _report_lock:
            try:
                study = self.store.get(study_id)
            except Exception:  # deleted meanwhile
                return
            if study.report_job != job_id:
                return
            final = self.store.study_dir(study_id) / REPORT_DIR
            tmp = final.with_name(f".{REPORT_DIR}-{job_id}")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(out_dir, tmp)
            old = final.with_name(f".{REPORT_DIR}-old-{job_id}")
            if final.exists():
                final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)

    def job(self, job_id: str) -> JobRecord | None:
        """The analysis job ``job_id`` (None when it is gone, e.g. deleted by the job retention)."""
        try:
            return self._runner_for().store.get(job_id)
        except EmolensError:
            return None

    def report_dir(self, study_id: str) -> Path:
        return self.store.study_dir(study_id) / REPORT_DIR

    # -- studies ------------------------------------------------------------------------------

    def create_study(self, name: str, *, order: str = "fixed", keep_recordings: bool = False,
                     retention_days: int = 30, closes_at: float | None = None,
                     questions: Iterable[Question] = (), options: Mapping[str, Any] | None = None,
                     client: str | None = None) -> Study:
        from ..jobs.campaign import campaign_settings

        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("a study needs a name of 1 to 200 characters")
        if order not in ("fixed", "random"):
            raise InvalidInput(f"order must be 'fixed' or 'random', got {order[:20]!r}")
        if not 1 <= retention_days <= self.limits.max_retention_days:
            raise InvalidInput(f"retention_days must be 1 to {self.limits.max_retention_days}")
        if closes_at is not None and closes_at <= time.time():
            raise InvalidInput("closes_at is in the past: the viewer link would be closed at once")
        settings = campaign_settings(dict(options or {}))  # InvalidInput naming each bad value
        return self.store.create_study(name, order=order, keep_recordings=keep_recordings,
                                       retention_days=retention_days, closes_at=closes_at,
                                       questions=tuple(questions), options=settings.to_dict(), client=client)

    def get(self, study_id: str, client: str | EllipsisType | None = ...) -> Study:
        """The study (:class:`StudyNotFound` if it is not ``client``'s, when given), after housekeeping."""
        study = self.store.get(study_id, client=client)
        self.housekeeping(study)
        return study

    def list_studies(self, client: str | EllipsisType | None = ...) -> list[Study]:
        """Every study (of ``client`` when given), newest first (housekeeping done on each)."""
        studies = self.store.list_studies(client=client)
        for study in studies:
            self.housekeeping(study)
        return studies

    def delete(self, study_id: str, client: str | EllipsisType | None = ...) -> None:
        """Delete the study, its files and its analysis jobs (with their outputs)."""
        self.store.get(study_id, client=client)
        jobs = self.store.delete_study(study_id)
        runner = self._runner_for()
        delete = getattr(runner, "delete", None)
        for job_id in jobs:
            try:
                if delete is not None:
                    delete(job_id)
                else:
                    shutil.rmtree(runner.store.job_dir(job_id), ignore_errors=True)
            except Exception as err:  # already gone
                log.info("job %s of a deleted study: %s", job_id, err)

    def add_ad(self, study_id: str, name: str, filename: str, chunks: Iterable[bytes],
               max_pixels: int | None = None, client: str | EllipsisType | None = ...) -> StudyAd:
        """Store an uploaded ad (streamed in ``chunks``) after checking it is a video a browser can play.

        :class:`UnsupportedMedia` (not a video, unknown suffix), :class:`MediaTooLarge` (bytes,
        duration), :class:`InvalidInput` (bad or taken name); the study is unchanged on any error."""
        study = self.store.get(study_id, client=client)
        name = name.strip()
        if not name or len(name) > 100 or any(ord(c) < 32 for c in name):
            raise InvalidInput("an ad needs a name of 1 to 100 printable characters")
        if any(a.name == name for a in study.ads):
            raise InvalidInput(f"the study already has an ad named {name!r}")
        if len(study.ads) >= self.limits.max_ads:
            raise InvalidInput(f"the study has {len(study.ads)} ads; the limit is {self.limits.max_ads}")
        suffix = Path(filename).suffix.lower()
        if suffix not in AD_SUFFIXES:
            raise UnsupportedMedia(f"{filename[:100]}: an ad must be a video file ({', '.join(sorted(AD_SUFFIXES))})")
        ad_id = uuid.uuid4().hex[:16]
        rel = f"ads/{ad_id}{suffix}"
        path = self.store.study_dir(study_id) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            size = _save(path, chunks, self.limits.max_ad_bytes, filename)
            facts = video_facts(path, filename[:100], max_pixels)
            if facts.duration_s > self.limits.max_ad_seconds:
                raise MediaTooLarge(f"{filename[:100]}: the ad lasts {facts.duration_s:.0f} s; the limit is "
                                    f"{self.limits.max_ad_seconds:g} s")
            return self.store.add_ad(study_id, ad_id, name, rel, AD_SUFFIXES[suffix], round(facts.duration_s, 3),
                                     facts.width, facts.height, size)
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    # -- viewer sessions ----------------------------------------------------------------------

    def viewer_study(self, token: str) -> Study:
        """The open study behind a viewer link; :class:`StudyNotFound` / :class:`StudyClosed`."""
        study = self.store.by_token(token)
        if study.closed(time.time()):
            raise StudyClosed("this study has ended: its viewer link is closed")
        return study

    def open_session(self, token: str, answers: Mapping[str, Any]) -> tuple[Study, Session]:
        """A new viewer session (after consent): answers checked, the ad order drawn."""
        study = self.viewer_study(token)
        if not study.ads:
            raise SessionStateError("this study has no ads yet: come back later")
        unknown = sorted(set(answers) - {q.key for q in study.questions})
        if unknown:
            raise InvalidInput(f"unknown question(s): {', '.join(k[:40] for k in unknown)}")
        checked = {q.key: q.answer(answers.get(q.key)) for q in study.questions}
        self.housekeeping(study)  # silent sessions no longer count as open
        watching = sum(1 for s in self.store.sessions(study.id) if s.state.open)
        if watching >= self.limits.max_open_sessions:
            raise TooManyViewers(f"{watching} viewers are watching this study right now; please try again later")
        order = [a.id for a in study.ads]
        if study.order == "random":
            secrets.SystemRandom().shuffle(order)
        return study, self.store.create_session(study.id, checked, order)

    def session(self, token: str, session_id: str) -> tuple[Study, Session]:
        study = self.store.by_token(token)
        return study, self.store.session(study.id, session_id)

    def upload(self, token: str, session_id: str, offset: int, data: Iterable[bytes]) -> int:
        """Write one chunk of the recording (see :mod:`emolens.studies.uploads`); the new ``received``."""
        _, session = self.session(token, session_id)
        return write_chunk(self.store, session, offset, data, self.limits.max_session_bytes)

    def finish(self, token: str, session_id: str, timing: Any, mime: str | None) -> Session:
        """The page is done: check its timing, mark the session ``analysing`` and queue its job."""
        study, session = self.session(token, session_id)
        check_open(session)
        if session.received == 0:
            raise SessionStateError("no recording was received for this session")
        ads = {a.id: (a.name, a.duration_s) for a in study.ads if a.id in session.ad_order}
        timings = parse_timing(timing, ads, session.ad_order)
        if not timings:
            raise InvalidInput("timing: the viewer watched no ad")
        runner = self._runner_for()
        ok = self.store.update_session(study.id, session.id, state=SessionState.ANALYSING,
                                       timing=[t.to_dict() for t in timings], mime=(mime or "")[:100] or None,
                                       expect=(SessionState.CONSENTED, SessionState.RECORDING))
        if not ok:
            check_open(self.store.session(study.id, session.id))
        forget_lock(session.id)
        try:
            job = runner.submit(STUDY_KIND, {"study": study.id, "session": session.id, "viewer": session.viewer},
                                client=study.client)
        except Exception as err:
            self.store.update_session(study.id, session.id, state=SessionState.FAILED,
                                      reason=f"the analysis could not be queued: {err}")
            raise
        self.store.update_session(study.id, session.id, job_id=job.id)
        return self.store.session(study.id, session.id)

    def abandon(self, token: str, session_id: str, reason: str) -> Session:
        """End a session that will not finish (camera refused, page closed): its recording and the
        viewer's answers are deleted (they will never be analysed)."""
        study, session = self.session(token, session_id)
        text = " ".join(str(reason).split())[:200] or "the viewer left"
        if self.store.update_session(study.id, session.id, state=SessionState.ABANDONED, reason=text, answers={},
                                     expect=(SessionState.CONSENTED, SessionState.RECORDING)):
            self.store.recording_path(study.id, session.id).unlink(missing_ok=True)
            forget_lock(session.id)
        return self.store.session(study.id, session.id)

    # -- housekeeping -------------------------------------------------------------------------

    def housekeeping(self, study: Study, now: float | None = None) -> None:
        """Abandon silent sessions; delete kept recordings past the study's retention."""
        now = time.time() if now is None else now
        for s in self.store.sessions(study.id):
            path = self.store.recording_path(study.id, s.id)
            if s.state.open and now - s.updated_at > self.limits.stale_after_s:
                minutes = self.limits.stale_after_s / 60
                if self.store.update_session(study.id, s.id, state=SessionState.ABANDONED, answers={},
                                             reason=f"the page sent nothing for {minutes:.0f} min",
                                             expect=(SessionState.CONSENTED, SessionState.RECORDING)):
                    path.unlink(missing_ok=True)
                    forget_lock(s.id)
            elif (not s.state.open and s.state is not SessionState.ANALYSING and path.exists()
                  and now - s.created_at > study.retention_days * 86400):
                path.unlink(missing_ok=True)


def _save(path: Path, chunks: Iterable[bytes], limit: int, name: str) -> int:
    total = 0
    with path.open("wb") as out:
        for chunk in chunks:
            total += len(chunk)
            if total > limit:
                raise MediaTooLarge(f"{name[:100]}: the ad passes the limit of {limit // (1 << 20)} MB")
            out.write(chunk)
    if total == 0:
        raise UnsupportedMedia(f"{name[:100]}: the file is empty (0 bytes)")
    return total
