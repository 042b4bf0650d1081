"""Background jobs over REST: upload a video, poll its job, fetch the result and the files.

    POST /v1/videos                       multipart ``file`` (+ every, smoothing, annotate, blur) -> 202
    GET  /v1/jobs?limit=&offset=&kind=&state=   recent jobs, newest first
    GET  /v1/jobs/{id}                    state, progress, frames done, error when failed
    GET  /v1/jobs/{id}/result             200 once succeeded; 409 ``JobNotFinished`` before,
                                          409 ``JobFailed`` (with the job's reason) after a failure
    GET  /v1/jobs/{id}/files/{name}       one file the job produced (only names from its own listing)
    DELETE /v1/jobs/{id}                  delete a finished job (record and files), cancel an unfinished one

Every job belongs to the client that made it (:func:`~emolens.api.deps.get_client`: one per API
key): another client's job answers 404 exactly like a job that does not exist, and listings show
only the caller's jobs. A job whose result misses something (frames that could not be decoded)
ends ``partial``, not ``succeeded``: its result is served with its ``warnings``. Finished jobs are
deleted ``job_retention_s`` after they ended.

An upload is streamed to ``jobs_dir/uploads`` in chunks (never held in memory) and probed before a
job exists: not a readable video -> 415, over ``max_video_bytes`` or ``max_video_seconds`` -> 413.
Jobs run on the app's :class:`JobService` (store + runner, opened in the lifespan); their records
survive restarts (see :mod:`emolens.jobs.runner` for what a restart does to unfinished jobs).
Other long tasks add their :class:`~emolens.jobs.runner.JobKind` to :meth:`JobService.kinds` and
reuse the ``/v1/jobs`` routes unchanged, as campaigns do (:mod:`emolens.api.campaign_routes`).
"""

from __future__ import annotations

import logging
import mimetypes
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse

from ..errors import UnsupportedMedia
from ..jobs.campaign import campaign_kind
from ..jobs.models import JobFailed, JobFileNotFound, JobNotFinished, JobRecord, JobState, JobStoreError
from ..jobs.runner import JobKind, JobQueueFull, JobRunner
from ..jobs.store import JobStore
from ..jobs.video import VIDEO_KIND, RecorderFactory, VideoAnalyzer, check_duration, probe_video, video_kind
from .bodylimit import human_bytes
from .deps import Engine, get_client, get_settings, require_api_key
from .routes import clean_filename, upload_chunks
from .schemas import ErrorOut, JobCreatedOut, JobFileOut, JobLinksOut, JobListOut, JobOut, JobResultOut
from .settings import Settings

log = logging.getLogger(__name__)

_VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts"}
MEDIA_TYPES = {
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json",
    ".png": "image/png",
    ".mp4": "video/mp4",
    ".html": "text/html",
    ".jpg": "image/jpeg",
}


class JobService:
    """The job system of one app: a :class:`JobStore` under ``settings.jobs_dir`` and a
    :class:`JobRunner` with the ``video`` and ``campaign`` kinds, opened by :meth:`start` (the
    lifespan) or on first use.

    ``recorder_factory``/``options_factory`` replace :mod:`emolens.video`'s (tests);
    ``campaign_analyser(settings)`` replaces the campaign jobs' recording analyser (default: an
    :class:`~emolens.campaign.recording.EngineAnalyser` on the app's shared analyzer; tests);
    ``extra_kinds`` adds kinds of job (registered before start, so their queued jobs resume)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        recorder_factory: RecorderFactory | None = None,
        options_factory: Any = None,
        extra_kinds: Sequence[JobKind] = (),
        campaign_analyser: Callable[[Any], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.recorder_factory = recorder_factory
        self.options_factory = options_factory
        self.extra_kinds = tuple(extra_kinds)
        self.campaign_analyser = campaign_analyser or self._engine_analyser
        self._runner: JobRunner | None = None
        self._lock = threading.Lock()

    @property
    def uploads_dir(self) -> Path:
        return Path(self.settings.jobs_dir).expanduser() / "uploads"

    @property
    def campaign_cache_dir(self) -> Path:
        """Frame tables of analysed recordings, shared by every campaign job (safe to delete)."""
        return Path(self.settings.jobs_dir).expanduser() / "campaign-cache"

    def _engine_analyser(self, campaign_settings: Any) -> Any:
        from ..campaign.recording import EngineAnalyser

        return EngineAnalyser(cast(Any, self.engine.get()), campaign_settings.sample_fps)

    def kinds(self) -> list[JobKind]:
        """The kinds of job this server runs."""
        video = video_kind(
            lambda: cast(VideoAnalyzer, self.engine.get()),
            recorder_factory=self.recorder_factory,
            options_factory=self.options_factory,
            keep_dir=self.settings.uploads_dir if self.settings.keep_uploads else None,
        )
        campaign = campaign_kind(self.campaign_analyser, self.campaign_cache_dir)
        return [video, campaign, *self.extra_kinds]

    def start(self) -> JobRunner:
        """Open the store, take over what a stopped server left, start the workers (once)."""
        with self._lock:
            if self._runner is None:
                store = JobStore(self.settings.jobs_dir)
                runner = JobRunner(
                    store,
                    self.kinds(),
                    max_workers=self.settings.job_workers,
                    max_queued=self.settings.max_queued_jobs,
                    retention_s=self.settings.job_retention_s or None,
                    housekeeping=self._prune_cache,
                )
                runner.start()
                self._runner = runner
                log.info("jobs in %s (%d workers)", store.root, runner.max_workers)
            return self._runner

    def _prune_cache(self) -> None:
        """Delete campaign-cache entries not used for ``job_retention_s`` (they are rebuilt on demand)."""
        retention = self.settings.job_retention_s
        cache = self.campaign_cache_dir
        if not retention or not cache.is_dir():
            return
        cutoff = time.time() - retention
        for path in cache.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)

    def try_start(self) -> None:
        """:meth:`start`, logging instead of raising (images can still be served without jobs)."""
        try:
            self.start()
        except JobStoreError as e:
            log.error("video jobs are unavailable: %s", e)

    @property
    def runner(self) -> JobRunner:
        """The running runner (started now if needed); a JobStoreError without server paths if it cannot."""
        try:
            return self.start()
        except JobStoreError as e:
            log.error("video jobs are unavailable: %s", e)
            raise JobStoreError("the job store of this server is unavailable (see the server log)") from None

    def close(self) -> None:
        """Stop the workers (queued jobs stay for the next start) and close the store."""
        with self._lock:
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()
            runner.store.close()


def get_job_service(request: Request) -> JobService:
    """The app's job service (``app.state.jobs``)."""
    service: JobService = request.app.state.jobs
    return service


def get_runner(service: JobService = Depends(get_job_service)) -> JobRunner:
    return service.runner


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


_AUTH: dict[int | str, dict[str, Any]] = {401: _err("Missing or wrong X-API-Key (only when the server has a key).")}
_UNKNOWN: dict[int | str, dict[str, Any]] = {**_AUTH, 404: _err("No job with this id.")}

jobs_router = APIRouter(prefix="/v1", tags=["jobs"], dependencies=[Depends(require_api_key)])


def _video_suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return suffix if suffix in _VIDEO_SUFFIXES else ".video"


def save_upload(upload: UploadFile, folder: Path, limit: int, name: str) -> Path:
    """Stream ``upload`` to a new file in ``folder`` in chunks; :class:`MediaTooLarge` past ``limit``
    bytes, :class:`UnsupportedMedia` when empty (the partial file is removed)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}{_video_suffix(name)}"
    total = 0
    try:
        with path.open("wb") as out:
            for chunk in upload_chunks(upload, limit, f"{name}: file is larger than the limit of {human_bytes(limit)}"):
                total += len(chunk)
                out.write(chunk)
        if total == 0:
            raise UnsupportedMedia(f"{name}: file is empty (0 bytes)")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _links(request: Request, job_id: str) -> JobLinksOut:
    return JobLinksOut(
        self=request.url_for("get_job", job_id=job_id).path,
        result=request.url_for("get_job_result", job_id=job_id).path,
    )


@jobs_router.post(
    "/videos",
    status_code=202,
    response_model=JobCreatedOut,
    responses={
        **_AUTH,
        413: _err("File over `max_video_bytes`, video over `max_video_seconds`, or frames too large."),
        415: _err("Not a video this server can decode (or empty)."),
        422: _err("Missing or invalid form field."),
        503: _err("Too many jobs are waiting; try again later."),
    },
    form_limits={"max_files": 1, "max_fields": 16},  # one file: never hundreds of small parts held in memory
)
def upload_video(
    request: Request,
    response: Response,
    file: UploadFile = File(description="A video: MP4, MOV, AVI, MKV, WebM ... (whatever FFmpeg reads)."),
    every: int = Form(1, ge=1, le=1000, description="Classify every Nth frame; track faces in between."),
    smoothing: float = Form(0.0, ge=0.0, lt=1.0, description="Temporal smoothing of probabilities per track (0: off)."),
    annotate: bool = Form(False, description="Also write an annotated MP4 (boxes, ids, labels)."),
    blur: bool = Form(False, description="Blur the faces in the annotated MP4."),
    service: JobService = Depends(get_job_service),
    settings: Settings = Depends(get_settings),
    client: str = Depends(get_client),
) -> JobCreatedOut:
    """Upload a video for analysis in the background; answers at once with the job to poll."""
    runner = service.runner
    if runner.max_queued is not None and runner.waiting() >= runner.max_queued:
        raise JobQueueFull(f"{runner.waiting()} jobs are already waiting (the limit is {runner.max_queued})")
    name = clean_filename(file.filename, "video")
    path = save_upload(file, service.uploads_dir, settings.max_video_bytes, name)
    try:
        probe = probe_video(path, name, settings.max_pixels)
        check_duration(probe, settings.max_video_seconds, name)
        params = {
            "source": name,
            "options": {"every": every, "smoothing": smoothing, "annotate": annotate, "blur": blur},
            "video": probe.to_dict(),
            "max_seconds": settings.max_video_seconds,
            "_upload": str(path),
        }
        job = runner.submit(VIDEO_KIND, params, client=client)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    links = _links(request, job.id)
    response.headers["Location"] = links.self_
    return JobCreatedOut(job_id=job.id, state=job.state.value, links=links)


@jobs_router.get("/jobs", response_model=JobListOut, responses={**_AUTH, 422: _err("Invalid paging or filter.")})
def list_jobs(
    request: Request,
    limit: int = Query(20, ge=1, le=100, description="Jobs per page."),
    offset: int = Query(0, ge=0, le=1_000_000_000, description="Jobs to skip (newest first)."),
    kind: str | None = Query(None, max_length=64, description="Only jobs of this kind, e.g. `video`."),
    state: JobState | None = Query(None, description="Only jobs in this state."),
    runner: JobRunner = Depends(get_runner),
    client: str = Depends(get_client),
) -> JobListOut:
    """The caller's recent jobs, newest first, a page at a time."""
    jobs = runner.store.list_jobs(limit=limit, offset=offset, kind=kind, state=state, client=client)
    total = runner.store.count(kind=kind, state=state, client=client)
    following = None
    if offset + len(jobs) < total:
        page = request.url.include_query_params(offset=offset + limit)
        following = f"{page.path}?{page.query}"
    return JobListOut(
        jobs=[JobOut.from_record(j, _links(request, j.id)) for j in jobs],
        total=total,
        limit=limit,
        offset=offset,
        next=following,
    )


@jobs_router.get("/jobs/{job_id}", response_model=JobOut, responses=_UNKNOWN)
def get_job(
    request: Request, job_id: str, runner: JobRunner = Depends(get_runner), client: str = Depends(get_client)
) -> JobOut:
    """A job's state, progress, warnings (a ``partial`` job) and, once it failed, the reason."""
    return JobOut.from_record(runner.store.get(job_id, client=client), _links(request, job_id))


@jobs_router.delete("/jobs/{job_id}", status_code=204, responses=_UNKNOWN)
def delete_job(job_id: str, runner: JobRunner = Depends(get_runner), client: str = Depends(get_client)) -> Response:
    """Delete a job and its files; an unfinished job is cancelled first (it is gone once it stopped)."""
    runner.store.get(job_id, client=client)  # 404 unless it is the caller's
    runner.delete(job_id)
    return Response(status_code=204)


def finished_job(runner: JobRunner, job_id: str, client: str) -> JobRecord:
    """The client's job if it ended with a result (succeeded or partial); 409 JobNotFinished / JobFailed otherwise."""
    job = runner.store.get(job_id, client=client)
    if job.state is JobState.FAILED:
        raise JobFailed(f"job {job_id} failed ({job.error_type}): {job.error}")
    if not job.state.has_result:
        raise JobNotFinished(f"job {job_id} is {job.state.value} ({job.progress:.0%} done); poll it until it ends")
    return job


@jobs_router.get(
    "/jobs/{job_id}/result",
    response_model=JobResultOut,
    responses={**_UNKNOWN, 409: _err("The job has not finished (JobNotFinished) or it failed (JobFailed).")},
)
def get_job_result(
    request: Request, job_id: str, runner: JobRunner = Depends(get_runner), client: str = Depends(get_client)
) -> JobResultOut:
    """A finished job's JSON result (``partial``: with its ``warnings``), with links to the files it wrote."""
    job = finished_job(runner, job_id, client)
    folder = runner.store.job_dir(job_id)
    files = []
    for name in job.files:
        path = folder / name
        if path.is_file():
            url = request.url_for("get_job_file", job_id=job_id, name=name).path
            files.append(JobFileOut(name=name, url=url, bytes=path.stat().st_size, media_type=_media_type(name)))
    return JobResultOut(job_id=job.id, kind=job.kind, state=job.state.value, result=dict(job.result or {}),
                        files=files, warnings=list(job.warnings))


def _media_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


_FILE_CONTENT: dict[str, Any] = {t: {} for t in (*MEDIA_TYPES.values(), "application/octet-stream")}


@jobs_router.get(
    "/jobs/{job_id}/files/{name:path}",
    response_class=FileResponse,
    responses={200: {"content": _FILE_CONTENT, "description": "The file."}, **_UNKNOWN},
)
def get_job_file(
    job_id: str, name: str, runner: JobRunner = Depends(get_runner), client: str = Depends(get_client)
) -> FileResponse:
    """Download one file of a finished job (a name from its result's `files`)."""
    job = runner.store.get(job_id, client=client)
    folder = runner.store.job_dir(job_id).resolve()
    path = (folder / name).resolve() if name in job.files else None
    if path is None or not path.is_relative_to(folder) or not path.is_file():
        raise JobFileNotFound(f"job {job_id} has no file named {name!r}")
    return FileResponse(path, media_type=_media_type(name), filename=Path(name).name)
