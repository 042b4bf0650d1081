"""Study records shaped into the study routes' response models (and the camera check)."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from fastapi import Request

from ..errors import EmolensError
from ..studies.models import Question, Session, Study, iso
from ..studies.service import StudyService
from .study_schemas import (
    AdOut,
    AnalysisOut,
    ConsentOut,
    CountsOut,
    FaceCheckOut,
    QcOut,
    QuestionOut,
    ReportOut,
    SessionOut,
    StudyBriefOut,
    StudyOut,
    ViewerSessionOut,
)

KPI_KEYS = ("face_found_rate", "positive_share", "negative_share", "expressiveness", "valence_index",
            "peak_happiness")


def question_out(q: Question) -> QuestionOut:
    return QuestionOut(key=q.key, label=q.label, choices=list(q.choices), required=q.required)


def consent(study: Study) -> ConsentOut:
    """What the consent screen states, from the study's own settings."""
    kept = (f"The video is kept for at most {study.retention_days} days after the analysis, then deleted."
            if study.keep_recordings else "The video is deleted as soon as it has been analysed.")
    return ConsentOut(
        keep_recordings=study.keep_recordings, retention_days=study.retention_days,
        recorded=("Your webcam records video of your face (no sound) while the ads play, and nothing else. "
                  "It is sent only to this server, which analyses it; no one else receives it. " + kept),
        purpose=("To measure how viewers' facial expressions respond to each ad, second by second. Results are "
                 "reported per ad over all viewers, with your answers as groups; no picture of your face is shown."),
        rights=("Taking part is your choice. You can stop at any time with the Stop button or by closing the page: "
                "what was recorded so far is then deleted."),
    )


def viewer_session(session: Session) -> ViewerSessionOut:
    return ViewerSessionOut(state=session.state.value, received=session.received, reason=session.reason)


def _summary(service: StudyService, study: Study) -> dict[str, Any] | None:
    path = service.report_dir(study.id) / "summary.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return None


def _analysis(service: StudyService, session: Session) -> AnalysisOut | None:
    if session.job_id is None:
        return None
    job = service.job(session.job_id)
    if job is None:
        return None
    return AnalysisOut(job_id=job.id, state=job.state.value, progress=round(job.progress, 4), message=job.message,
                       error=job.error)


def _counts(sessions: list[Session], qc: list[dict[str, Any]]) -> CountsOut:
    states = Counter(s.state.value for s in sessions)
    excluded = sum(1 for q in qc if q.get("status") == "excluded")
    return CountsOut(viewers=len(sessions), excluded=excluded, **{k: v for k, v in states.items()})


def _report(request: Request, study: Study, summary: dict[str, Any] | None) -> ReportOut:
    if summary is None:
        return ReportOut(available=False)
    files = {name: str(request.url_for("study_file", study_id=study.id, name=name).path)
             for name in ("summary.json", "kpis.csv", "qc.csv", "series.csv")}
    ads = [{"name": a.get("name"), "viewers_total": a.get("viewers_total"), "viewers_kept": a.get("viewers_kept"),
            "kpis": {k: (a.get("kpis") or {}).get(k, {}).get("value") for k in KPI_KEYS}}
           for a in summary.get("ads", [])]
    return ReportOut(available=True, url=str(request.url_for("study_report", study_id=study.id).path),
                     viewers=len({q.get("viewer") for q in summary.get("qc", [])}), files=files, ads=ads)


def viewer_url(request: Request, study: Study) -> str:
    return str(request.url_for("watch_page", token=study.token))


def study_out(request: Request, service: StudyService, study: Study) -> StudyOut:
    sessions = service.store.sessions(study.id)
    summary = _summary(service, study)
    qc = list((summary or {}).get("qc", []))
    names = {a.id: a.name for a in study.ads}
    out = []
    for s in sessions:
        rows = [QcOut(ad=q["ad"], status=q["status"], reason=q.get("reason"), face_found_rate=q.get("face_found_rate"))
                for q in qc if q.get("viewer") == s.viewer]
        out.append(SessionOut(viewer=s.viewer, state=s.state.value, reason=s.reason, created_at=iso(s.created_at),
                              updated_at=iso(s.updated_at), answers=dict(s.answers),
                              ads=[names.get(a, "(deleted ad)") for a in s.ad_order], received_bytes=s.received,
                              analysis=_analysis(service, s), qc=rows))
    return StudyOut(
        id=study.id, name=study.name, created_at=iso(study.created_at), order=study.order,
        keep_recordings=study.keep_recordings, retention_days=study.retention_days, closes_at=iso(study.closes_at),
        closed=study.closed(time.time()),
        viewer_url=viewer_url(request, study), questions=[question_out(q) for q in study.questions],
        options=dict(study.options),
        ads=[AdOut(id=a.id, name=a.name, duration_s=a.duration_s, width=a.width, height=a.height, bytes=a.bytes,
                   media_type=a.media_type) for a in study.ads],
        counts=_counts(sessions, qc), sessions=out, report=_report(request, study, summary),
    )


def study_brief(request: Request, service: StudyService, study: Study) -> StudyBriefOut:
    sessions = service.store.sessions(study.id)
    summary = _summary(service, study)
    report = _report(request, study, summary)
    return StudyBriefOut(id=study.id, name=study.name, created_at=iso(study.created_at), ads=len(study.ads),
                         counts=_counts(sessions, list((summary or {}).get("qc", []))),
                         viewer_url=viewer_url(request, study), report_url=report.url)


def face_check_out(analyzer: Any, data: bytes, min_brightness: float) -> FaceCheckOut:
    """Decode one camera picture, measure its brightness, find its faces (nothing is kept)."""
    import cv2
    import numpy as np

    from ..errors import UnsupportedMedia

    gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE) if data else None
    if gray is None or gray.size == 0:
        raise UnsupportedMedia("the camera picture is not a JPEG or PNG image")
    brightness = float(gray.mean())
    try:
        faces = analyzer.analyze(data, source="camera").faces
    except EmolensError:
        faces = ()
    h, w = gray.shape[:2]
    box = None
    if faces:
        x, y, fw, fh = max(faces, key=lambda f: f.box[2] * f.box[3]).box
        box = [round(x / w, 4), round(y / h, 4), round(fw / w, 4), round(fh / h, 4)]
    return FaceCheckOut(face_found=bool(faces), faces=len(faces), brightness=round(brightness, 1),
                        lit=brightness >= min_brightness, box=box)
