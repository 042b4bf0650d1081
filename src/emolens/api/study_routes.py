"""Ad-test studies over REST: the marketer's routes (API key) and the viewer's routes (link token).

    POST   /v1/studies                        JSON study -> 201 (viewer link inside)
    GET    /v1/studies                        every study, newest first
    GET    /v1/studies/{id}                   ads, sessions (state, analysis progress, QC), report
    DELETE /v1/studies/{id}                   the study, its recordings, analyses and jobs
    POST   /v1/studies/{id}/ads?name=&filename=   raw body: one ad video -> 201
    GET    /v1/studies/{id}/report            the latest report.html; ``/files/{name}`` its tables

    GET    /v1/watch/{token}                  the study as the viewer page needs it (consent, questions)
    POST   /v1/watch/{token}/sessions         answers -> the session secret and the ads in order
    GET    /v1/watch/{token}/ads/{ad}         an ad video (range requests work)
    POST   /v1/watch/{token}/face-check       raw body: one camera picture -> face found? lit enough?
    GET    /v1/watch/{token}/sessions/{sid}   state and bytes received (to resume an upload)
    POST   /v1/watch/{token}/sessions/{sid}/recording?offset=N   raw body: the next chunk
    POST   /v1/watch/{token}/sessions/{sid}/finish    the page's ad timing -> 202, analysis queued
    POST   /v1/watch/{token}/sessions/{sid}/abandon   camera refused, page closed

Pages: ``/studies`` (the marketer's) and ``/watch/{token}`` (the viewer's). Raw bodies are
streamed to disk block by block (never held whole), after the token or key and the session state
are checked, and cut off past their limit (413). See docs/studies.md.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from ..errors import InvalidInput
from ..jobs.models import JobFileNotFound
from ..studies.models import Question, StudyNotFound
from ..studies.service import StudyService
from ..studies.settings import StudySettings
from .campaign_routes import REPORT_HEADERS
from .deps import Engine, get_client, get_engine, require_api_key
from .schemas import ErrorOut
from .study_schemas import (
    AbandonIn,
    AdOut,
    ChunkOut,
    FaceCheckOut,
    FinishIn,
    SessionStartIn,
    SessionStartOut,
    StudyCreateIn,
    StudyListOut,
    StudyOut,
    ViewerAdOut,
    ViewerSessionOut,
    ViewerStudyOut,
)
from .study_views import consent, question_out, study_brief, study_out, viewer_session

STATIC_DIR = Path(__file__).resolve().parent / "static"
REPORT_FILES = ("report.html", "summary.json", "series.csv", "kpis.csv", "qc.csv", "viewer_seconds.csv")
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "Permissions-Policy": "camera=(self), microphone=(), fullscreen=(self)",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}



def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


_MARKETER: dict[int | str, dict[str, Any]] = {
    401: _err("Missing or wrong X-API-Key (only when the server has a key)."),
    404: _err("No study with this id (StudyNotFound), or no such report file yet."),
    422: _err("Invalid field or option (InvalidInput), naming it."),
}
_VIEWER: dict[int | str, dict[str, Any]] = {
    404: _err("The link's token, the session or the ad does not exist (StudyNotFound, SessionNotFound)."),
    410: _err("The study has ended: its viewer link is closed (StudyClosed)."),
    429: _err("As many viewers are watching this study at once as the server allows (TooManyViewers)."),
    422: _err("Invalid field, answer or timing (InvalidInput), naming it."),
}
_UPLOADED: dict[int | str, dict[str, Any]] = {
    409: _err("The session takes no more uploads (SessionStateError), or the chunk does not start where the "
              "server's copy ends (UploadOffsetMismatch: GET the session for `received`)."),
    413: _err("Over the limit of one request or of the whole recording (MediaTooLarge)."),
    415: _err("Not a video or image this server can read (UnsupportedMedia)."),
    503: _err("Too many jobs are waiting; try again later."),
}


def _raw_body(media: str, description: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "description": description,
                            "content": {media: {"schema": {"type": "string", "format": "binary"}}}}}


studies_router = APIRouter(prefix="/v1/studies", tags=["studies"], dependencies=[Depends(require_api_key)],
                           responses=_MARKETER)
viewer_router = APIRouter(prefix="/v1/watch/{token}", tags=["study viewers"], responses=_VIEWER)
pages_router = APIRouter(include_in_schema=False)


def get_studies(request: Request) -> StudyService:
    service: StudyService = request.app.state.studies
    return service


def study_body_limits(limits: StudySettings) -> Callable[[str], int | None]:
    """``limit(path)``: the body limit of a study route with a raw body (None: not one of them)."""

    def limit(path: str) -> int | None:
        parts = path.rstrip("/").split("/")
        if len(parts) == 5 and parts[1:3] == ["v1", "studies"] and parts[4] == "ads":
            return limits.max_ad_bytes
        if len(parts) == 7 and parts[1:3] == ["v1", "watch"] and parts[6] == "recording":
            return limits.max_chunk_bytes
        if len(parts) == 5 and parts[1:3] == ["v1", "watch"] and parts[4] == "face-check":
            return limits.max_face_check_bytes
        return None

    return limit


def _blocks(request: Request) -> Iterator[bytes]:
    """The request body block by block, read from a worker thread (run the consumer in the threadpool)."""
    stream: AsyncIterator[bytes] = request.stream().__aiter__()

    async def following() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    while (block := anyio.from_thread.run(following)) is not None:
        if block:
            yield block


# ------------------------------------------------------------------ the marketer's routes


@studies_router.post("", status_code=201, response_model=StudyOut)
def create_study(request: Request, body: StudyCreateIn, service: StudyService = Depends(get_studies),
                 client: str = Depends(get_client)) -> StudyOut:
    """Create a study (no ads yet: add each with ``POST /v1/studies/{id}/ads``)."""
    questions = [Question.parse(q.model_dump()) for q in body.questions]
    keys = [q.key for q in questions]
    if len(set(keys)) != len(keys):
        raise InvalidInput("two questions have the same key")
    study = service.create_study(body.name, order=body.order, keep_recordings=body.keep_recordings,
                                 retention_days=body.retention_days,
                                 closes_at=None if body.closes_at is None else body.closes_at.timestamp(),
                                 questions=questions, options=body.options.model_dump(), client=client)
    return study_out(request, service, study)


@studies_router.get("", response_model=StudyListOut)
def list_studies(request: Request, service: StudyService = Depends(get_studies),
                 client: str = Depends(get_client)) -> StudyListOut:
    """Every study of this client (API key), newest first, with its counts of viewers."""
    return StudyListOut(studies=[study_brief(request, service, s) for s in service.list_studies(client)])


@studies_router.get("/{study_id}", response_model=StudyOut)
def get_study(request: Request, study_id: str, service: StudyService = Depends(get_studies),
              client: str = Depends(get_client)) -> StudyOut:
    """A study: ads, viewer link, sessions (state, analysis progress, QC) and the latest report."""
    return study_out(request, service, service.get(study_id, client))


@studies_router.delete("/{study_id}", status_code=204)
def delete_study(study_id: str, service: StudyService = Depends(get_studies),
                 client: str = Depends(get_client)) -> Response:
    """Delete the study with everything it holds: ads, recordings, analyses, reports and jobs."""
    service.delete(study_id, client)
    return Response(status_code=204)


@studies_router.post("/{study_id}/ads", status_code=201, response_model=AdOut, responses=_UPLOADED,
                     openapi_extra=_raw_body("application/octet-stream", "The ad video file's bytes."))
async def add_ad(
    request: Request,
    study_id: str,
    name: str = Query(min_length=1, max_length=100, description="The ad's name in the report."),
    filename: str = Query("ad.mp4", max_length=200, description="The file's name (its suffix says the format)."),
    service: StudyService = Depends(get_studies),
    client: str = Depends(get_client),
) -> AdOut:
    """Upload one ad video as the raw request body (``curl --data-binary @spot.mp4``)."""
    await run_in_threadpool(lambda: service.store.get(study_id, client=client))  # 404 before the body is read
    max_pixels = request.app.state.settings.max_pixels
    ad = await run_in_threadpool(
        lambda: service.add_ad(study_id, name, filename, _blocks(request), max_pixels, client=client))
    return AdOut(id=ad.id, name=ad.name, duration_s=ad.duration_s, width=ad.width, height=ad.height,
                 bytes=ad.bytes, media_type=ad.media_type)


def _report_file(service: StudyService, study_id: str, name: str, client: str) -> Path:
    service.store.get(study_id, client=client)
    path = service.report_dir(study_id) / name
    if name not in REPORT_FILES or not path.is_file():
        raise JobFileNotFound(f"study {study_id[:64]} has no report file {name[:100]!r} (yet)")
    return path


@studies_router.get("/{study_id}/report", response_class=FileResponse)
def study_report(study_id: str, service: StudyService = Depends(get_studies),
                 client: str = Depends(get_client)) -> FileResponse:
    """The study's latest campaign report (self-contained HTML)."""
    path = _report_file(service, study_id, "report.html", client)
    return FileResponse(path, media_type="text/html", headers=REPORT_HEADERS)


@studies_router.get("/{study_id}/files/{name}", response_class=FileResponse)
def study_file(study_id: str, name: str, service: StudyService = Depends(get_studies),
               client: str = Depends(get_client)) -> FileResponse:
    """One table of the latest report: summary.json, series.csv, kpis.csv, qc.csv, viewer_seconds.csv."""
    path = _report_file(service, study_id, name, client)
    media = "application/json" if name.endswith(".json") else "text/csv"
    return FileResponse(path, media_type=media, filename=name)


# ------------------------------------------------------------------ the viewer's routes


@viewer_router.get("", response_model=ViewerStudyOut)
def viewer_study(token: str, service: StudyService = Depends(get_studies)) -> ViewerStudyOut:
    """What the viewer reads before agreeing: what is recorded, why, for how long; the questions."""
    study = service.viewer_study(token)
    return ViewerStudyOut(name=study.name, ads=len(study.ads),
                          total_duration_s=round(sum(a.duration_s for a in study.ads), 1),
                          questions=[question_out(q) for q in study.questions], consent=consent(study),
                          closes_at=None if study.closes_at is None else time.strftime(
                              "%Y-%m-%dT%H:%M:%SZ", time.gmtime(study.closes_at)))


@viewer_router.post("/sessions", status_code=201, response_model=SessionStartOut, responses=_UPLOADED)
def start_session(request: Request, token: str, body: SessionStartIn,
                  service: StudyService = Depends(get_studies)) -> SessionStartOut:
    """The viewer agreed: a session (its secret id) and the ads in the order to show them."""
    study, session = service.open_session(token, body.answers)
    ads = []
    for ad_id in session.ad_order:
        ad = study.ad(ad_id)
        if ad is not None:
            url = request.url_for("viewer_ad", token=token, ad_id=ad.id).path
            ads.append(ViewerAdOut(id=ad.id, name=ad.name, duration_s=ad.duration_s, url=url))
    return SessionStartOut(session_id=session.id, ads=ads, max_bytes=service.limits.max_session_bytes,
                           chunk_bytes=min(service.limits.max_chunk_bytes, 4 << 20))


@viewer_router.get("/ads/{ad_id}", response_class=FileResponse, name="viewer_ad")
def viewer_ad(token: str, ad_id: str, service: StudyService = Depends(get_studies)) -> FileResponse:
    """One ad of the study (the viewer page plays it)."""
    study = service.viewer_study(token)
    ad = study.ad(ad_id)
    if ad is None:
        raise StudyNotFound("this study has no such ad")
    return FileResponse(service.store.study_dir(study.id) / ad.file, media_type=ad.media_type)


@viewer_router.post("/face-check", response_model=FaceCheckOut, responses=_UPLOADED,
                    openapi_extra=_raw_body("image/jpeg", "One camera picture (JPEG or PNG)."))
async def face_check(request: Request, token: str, service: StudyService = Depends(get_studies),
                     engine: Engine = Depends(get_engine)) -> FaceCheckOut:
    """One camera picture (JPEG or PNG body): is a face found, is it lit well enough. Nothing is kept."""
    study = await run_in_threadpool(service.viewer_study, token)
    limit = service.limits.max_face_check_bytes

    def check() -> FaceCheckOut:
        from .study_views import face_check_out

        data = b""
        for block in _blocks(request):
            data += block
            if len(data) > limit:
                from ..errors import MediaTooLarge

                raise MediaTooLarge(f"the camera picture passes the limit of {limit // 1024} KB")
        with engine.slot():
            return face_check_out(engine.get(), data, float(study.options.get("min_brightness", 40.0)))

    return await run_in_threadpool(check)


@viewer_router.get("/sessions/{session_id}", response_model=ViewerSessionOut, responses=_UPLOADED)
def get_session(token: str, session_id: str, service: StudyService = Depends(get_studies)) -> ViewerSessionOut:
    """The session's state and how many recording bytes the server holds (resume from there)."""
    return viewer_session(service.session(token, session_id)[1])


@viewer_router.post("/sessions/{session_id}/recording", response_model=ChunkOut, responses=_UPLOADED,
                    openapi_extra=_raw_body("application/octet-stream", "The next bytes of the WebM recording."))
async def upload_chunk(
    request: Request,
    token: str,
    session_id: str,
    offset: int = Query(ge=0, le=2**40, description="Byte offset of this chunk in the recording."),
    service: StudyService = Depends(get_studies),
) -> ChunkOut:
    """The next chunk of the recording (raw body) at ``offset``; 409 with the bytes held if it does not fit."""
    await run_in_threadpool(service.session, token, session_id)  # 404 before the body is read
    received = await run_in_threadpool(lambda: service.upload(token, session_id, offset, _blocks(request)))
    return ChunkOut(received=received)


@viewer_router.post("/sessions/{session_id}/finish", status_code=202, response_model=ViewerSessionOut,
                    responses=_UPLOADED)
def finish_session(token: str, session_id: str, body: FinishIn,
                   service: StudyService = Depends(get_studies)) -> ViewerSessionOut:
    """The page is done: its ad timing is checked and the session's analysis is queued."""
    timing = [t.model_dump() for t in body.timing]
    return viewer_session(service.finish(token, session_id, timing, body.mime))


@viewer_router.post("/sessions/{session_id}/abandon", response_model=ViewerSessionOut, responses=_UPLOADED)
def abandon_session(token: str, session_id: str, body: AbandonIn,
                    service: StudyService = Depends(get_studies)) -> ViewerSessionOut:
    """The session will not finish (camera refused, page closed): its partial recording is deleted."""
    return viewer_session(service.abandon(token, session_id, body.reason))


# ------------------------------------------------------------------ pages and wiring


@pages_router.get("/studies")
def studies_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "studies.html", media_type="text/html", headers=PAGE_HEADERS)


@pages_router.get("/watch/{token}")
def watch_page(token: str) -> FileResponse:
    return FileResponse(STATIC_DIR / "watch.html", media_type="text/html", headers=PAGE_HEADERS)


def add_studies(app: FastAPI, limits: StudySettings | None = None) -> None:
    """Wire studies into ``app``: the service (``app.state.studies``, under ``jobs_dir/studies``
    unless ``EMOLENS_STUDY_DIR``), its job kind on the app's job service, the routes and pages."""
    limits = limits or StudySettings()
    settings = app.state.settings
    root = limits.dir or Path(settings.jobs_dir).expanduser() / "studies"
    service = StudyService(root, limits, lambda: app.state.jobs.runner)
    app.state.studies = service
    jobs: Any = app.state.jobs
    jobs.extra_kinds = (*jobs.extra_kinds, service.job_kind(lambda s: app.state.jobs.campaign_analyser(s)))
    app.include_router(studies_router)
    app.include_router(viewer_router)
    app.include_router(pages_router)
