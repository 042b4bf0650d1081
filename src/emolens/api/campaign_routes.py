"""Campaign jobs over REST: a manifest and its recordings in, per-second curves, KPIs and a report out.

    POST /v1/campaigns              multipart: ``manifest`` (.yaml/.yml/.csv) + ``files`` (each one's
                                    file name = its path relative to the manifest, e.g.
                                    ``recordings/v01.mp4``) + options -> 202 with the job
    POST /v1/campaigns/from-path    JSON ``{"manifest_path": "rel/to/data_root.yaml", "options": {...}}``
                                    -> 202; only when the server has a data root (403 otherwise)
    GET  /v1/campaigns/{id}/report  the job's report.html (409 until it has succeeded)

The job is followed like every job (``GET /v1/jobs/{id}``: progress ``k/n recordings``;
``/result``: the summary with KPIs, rankings, comparisons, QC; ``/files/{name}``: ``series.csv``,
``kpis.csv``, ``qc.csv``, ``summary.json``, ...). The manifest is checked before a job exists:
a bad manifest is a 422 naming each line, a file it names that was not uploaded a 422 naming it,
a path escaping the upload 422, or the data root 403 (symlinks followed); uploads over
``max_campaign_files`` files or ``max_campaign_bytes`` bytes are 413. Two routes rather than one
with two content types: each is documented and validated by FastAPI like the rest of the API.
Responses never show a server path: files are named relative to the manifest or the data root.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import FileResponse

from ..errors import InvalidInput, MediaTooLarge
from ..jobs.campaign import CAMPAIGN_KIND, OutsideDataRoot, Source, load_confined
from ..jobs.models import JobFileNotFound
from ..jobs.runner import JobQueueFull, JobRunner
from .bodylimit import human_bytes
from .deps import get_settings, require_api_key
from .errors import ApiError
from .jobs_routes import JobService, finished_job, get_job_service, get_runner
from .routes import clean_filename, upload_chunks
from .schemas import CampaignCreatedOut, CampaignFromPathIn, CampaignLinksOut, CampaignOptionsIn, ErrorOut
from .settings import Settings

log = logging.getLogger(__name__)

MAX_MANIFEST_BYTES = 1 << 20
MANIFEST_SUFFIXES = (".yaml", ".yml", ".csv")
MAX_FORM_FILES = 100_001  # the parser's hard cap; ``max_campaign_files`` is checked after it (413)
REPORT_HEADERS = {  # the report runs its own inline script, sandboxed away from this origin
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; sandbox allow-scripts",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


_AUTH: dict[int | str, dict[str, Any]] = {401: _err("Missing or wrong X-API-Key (only when the server has a key).")}
_CREATE: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    422: _err("Invalid option, a manifest problem (each named with its line), or a file the manifest names missing."),
    503: _err("Too many jobs are waiting; try again later."),
}

campaigns_router = APIRouter(prefix="/v1", tags=["campaigns"], dependencies=[Depends(require_api_key)])


def upload_path(name: str | None) -> str:
    """A client's file name as a safe POSIX path relative to the manifest (``./`` parts dropped).

    :class:`InvalidInput` naming it when it is empty, absolute, holds ``..``, a backslash, an empty
    part or a control character, or is too long."""
    text = name or ""
    shown = repr(text[:200])
    if not text.strip():
        raise InvalidInput("a file of `files` has no file name: give each one its path relative to the manifest")
    if "\\" in text or any(ord(c) < 32 for c in text):
        raise InvalidInput(f"file name {shown}: use '/' between folders (no backslash or control character)")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise InvalidInput(f"file name {shown}: must be relative to the manifest, not an absolute path")
    parts = [p for p in text.split("/") if p != "."]
    if any(p == ".." for p in parts):
        raise InvalidInput(f"file name {shown}: '..' is not allowed; every file lies in the manifest's folder")
    if not parts or any(p == "" for p in parts):
        raise InvalidInput(f"file name {shown}: has an empty folder name")
    if len(text) > 1024 or any(len(p.encode()) > 255 for p in parts):
        raise InvalidInput(f"file name {shown}: too long")
    return "/".join(parts)


def _check_names(names: list[str], manifest_name: str) -> None:
    """No duplicate names, no name that is also the folder of another, none equal to the manifest."""
    seen: set[str] = {manifest_name}
    for name in names:
        if name in seen:
            raise InvalidInput(f"file name {name!r} is given twice (or is the manifest's own name)")
        seen.add(name)
    folders = {str(p) for n in names for p in PurePosixPath(n).parents if str(p) != "."}
    clash = sorted(folders & seen)
    if clash:
        raise InvalidInput(f"file name {clash[0]!r} is both a file and a folder of other files")


def _store(upload: UploadFile, dest: Path, budget: int, shown: str, what: str) -> int:
    """Stream ``upload`` to ``dest``; returns its size. :class:`MediaTooLarge` past ``budget`` bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    total = 0
    with dest.open("wb") as out:
        for chunk in upload_chunks(upload, budget, f"{shown}: {what} passes the limit of {human_bytes(budget)}"):
            total += len(chunk)
            out.write(chunk)
    return total


def _work_dir(service: JobService) -> Path:
    work = service.uploads_dir / f"campaign-{uuid.uuid4().hex}"
    work.mkdir(parents=True)
    return work


def _check_queue(runner: JobRunner) -> None:
    if runner.max_queued is not None and runner.waiting() >= runner.max_queued:
        raise JobQueueFull(f"{runner.waiting()} jobs are already waiting (the limit is {runner.max_queued})")


def _submit(request: Request, response: Response, runner: JobRunner, source: Source, shown: str,
            manifest: Path, root: Path, work: Path, options: CampaignOptionsIn) -> CampaignCreatedOut:
    """Check the manifest (confined to ``root``) and queue its job."""
    m = load_confined(manifest, root, source, shown)
    params = {
        "source": source, "manifest": shown, "campaign": m.name, "recordings": len(m.recordings),
        "ads": [ad.name for ad in m.ads], "options": options.model_dump(),
        "_manifest": str(manifest), "_root": str(root), "_work": str(work),
    }
    job = runner.submit(CAMPAIGN_KIND, params)
    links = CampaignLinksOut(
        self=request.url_for("get_job", job_id=job.id).path,
        result=request.url_for("get_job_result", job_id=job.id).path,
        report=request.url_for("get_campaign_report", job_id=job.id).path,
    )
    response.headers["Location"] = links.self_
    return CampaignCreatedOut(job_id=job.id, state=job.state.value, links=links, campaign=m.name,
                              recordings=len(m.recordings), ads=[ad.name for ad in m.ads])


def _with_upload_hint(err: InvalidInput) -> InvalidInput:
    from ..campaign.manifest import ManifestError

    if not isinstance(err, ManifestError):
        return err
    hint = " (not uploaded: send it in `files` with this path as its file name)"
    return ManifestError(str(err.path), [p + hint if "not found:" in p else p for p in err.problems])


@campaigns_router.post(
    "/campaigns",
    status_code=202,
    response_model=CampaignCreatedOut,
    responses={**_CREATE, 413: _err("Over `max_campaign_files` files or `max_campaign_bytes`, or manifest over 1 MB.")},
    form_limits={"max_files": MAX_FORM_FILES},
)
def upload_campaign(
    request: Request,
    response: Response,
    manifest: UploadFile = File(description="The campaign manifest: YAML (.yaml, .yml) or CSV (docs/campaigns.md)."),
    files: list[UploadFile] | None = File(
        None, description="Every recording and ad video the manifest names; each file name is its path relative "
        "to the manifest (e.g. `recordings/v01.mp4`, `photos/v03/1.jpg`)."
    ),
    sample_fps: float = Form(5.0, gt=0.0, le=120.0, description="Video frames analysed per second."),
    expressing_threshold: float = Form(0.5, gt=0.0, le=1.0, description="Probability counted as expressing."),
    min_face_rate: float = Form(0.5, ge=0.0, le=1.0, description="QC: least fraction of ad seconds with a face."),
    min_brightness: float = Form(40.0, ge=0.0, le=255.0, description="QC: least median brightness (0-255)."),
    min_sharpness: float = Form(15.0, ge=0.0, le=1e6, description="QC: least median face sharpness."),
    bootstrap: int = Form(2000, ge=10, le=20_000, description="Bootstrap resamples per CI and test."),
    seed: int = Form(0, ge=0, le=2**32 - 1, description="Seed of the resampling."),
    service: JobService = Depends(get_job_service),
    settings: Settings = Depends(get_settings),
) -> CampaignCreatedOut:
    """Upload a manifest and its recordings; the campaign is analysed in the background."""
    options = CampaignOptionsIn(sample_fps=sample_fps, expressing_threshold=expressing_threshold,
                                min_face_rate=min_face_rate, min_brightness=min_brightness,
                                min_sharpness=min_sharpness, bootstrap=bootstrap, seed=seed)
    runner = service.runner
    _check_queue(runner)
    uploads = files or []
    if len(uploads) > settings.max_campaign_files:
        raise MediaTooLarge(f"{len(uploads)} files uploaded; the limit is {settings.max_campaign_files}")
    shown = clean_filename(manifest.filename, "manifest.yaml")
    if not shown.lower().endswith(MANIFEST_SUFFIXES):
        raise InvalidInput(f"manifest {shown!r}: its name must end with .yaml, .yml or .csv")
    names = [upload_path(f.filename) for f in uploads]
    _check_names(names, shown)
    work = _work_dir(service)
    try:
        folder = work / "files"
        budget = settings.max_campaign_bytes
        budget -= _store(manifest, folder / shown, min(budget, MAX_MANIFEST_BYTES), shown, "the manifest")
        for upload, name in zip(uploads, names, strict=True):
            budget -= _store(upload, folder / name, budget, name, "the upload")
        try:
            return _submit(request, response, runner, "upload", shown, folder / shown, folder, work, options)
        except InvalidInput as err:
            raise _with_upload_hint(err) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _data_root(settings: Settings) -> Path:
    if settings.data_root is None:
        raise ApiError(403, "Forbidden", "this server reads no campaign from its own disk (it has no data root: "
                       "EMOLENS_DATA_ROOT or `emolens serve --data-root`); upload it to POST /v1/campaigns")
    root = Path(settings.data_root).expanduser().resolve()
    if not root.is_dir():
        log.error("the data root %s is not a folder", root)
        raise ApiError(403, "Forbidden", "the server's data root is not available (see the server log)")
    return root


@campaigns_router.post(
    "/campaigns/from-path",
    status_code=202,
    response_model=CampaignCreatedOut,
    responses={**_CREATE, 403: _err("The server has no data root, or a path leads outside it.")},
)
def campaign_from_path(
    request: Request,
    response: Response,
    body: CampaignFromPathIn,
    service: JobService = Depends(get_job_service),
    settings: Settings = Depends(get_settings),
) -> CampaignCreatedOut:
    """Analyse a campaign whose manifest and recordings already lie in the server's data root."""
    root = _data_root(settings)
    rel = body.manifest_path
    if "\x00" in rel or "\\" in rel or PurePosixPath(rel).is_absolute():
        raise InvalidInput(f"manifest_path {rel[:200]!r} must be a path relative to the data root, with '/'")
    manifest = root / rel
    if not manifest.resolve().is_relative_to(root):
        raise OutsideDataRoot(f"manifest_path {rel[:200]!r} leads outside the server's data root")
    if not manifest.is_file():
        raise InvalidInput(f"manifest_path {rel[:200]!r}: no such file in the data root")
    runner = service.runner
    _check_queue(runner)
    work = _work_dir(service)
    try:
        return _submit(request, response, runner, "data_root", rel, manifest, root, work, body.options)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


@campaigns_router.get(
    "/campaigns/{job_id}/report",
    response_class=FileResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "The self-contained HTML report."},
        **_AUTH,
        404: _err("No job with this id, or it is not a campaign."),
        409: _err("The job has not finished (JobNotFinished) or it failed (JobFailed)."),
    },
)
def get_campaign_report(job_id: str, runner: JobRunner = Depends(get_runner)) -> FileResponse:
    """The campaign's report (offline HTML: curves, KPIs, rankings, key moments, QC)."""
    kind = runner.store.get(job_id).kind
    if kind != CAMPAIGN_KIND:
        raise JobFileNotFound(f"job {job_id} is a {kind} job, not a campaign")
    job = finished_job(runner, job_id)
    path = runner.store.job_dir(job_id) / "report.html"
    if "report.html" not in job.files or not path.is_file():
        raise JobFileNotFound(f"campaign job {job_id} has no report")
    return FileResponse(path, media_type="text/html", filename="report.html", content_disposition_type="inline",
                        headers=REPORT_HEADERS)
