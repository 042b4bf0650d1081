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

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import ValidationError

from ..campaign.manifest import check_budget, path_problem
from ..errors import InvalidInput, MediaTooLarge
from ..jobs.campaign import CAMPAIGN_KIND, OutsideDataRoot, Source, inside, load_confined
from ..jobs.models import JobFileNotFound
from ..jobs.runner import JobQueueFull, JobRunner
from .bodylimit import human_bytes
from .deps import get_client, get_settings, require_api_key
from .errors import ApiError, describe_validation_errors
from .jobs_routes import JobService, finished_job, get_job_file, get_job_service, get_runner
from .routes import clean_filename
from .schemas import CampaignCreatedOut, CampaignFromPathIn, CampaignLinksOut, CampaignOptionsIn, ErrorOut
from .settings import Settings
from .streamform import FormLimits, Target, stream_form

log = logging.getLogger(__name__)

MAX_MANIFEST_BYTES = 1 << 20
MANIFEST_SUFFIXES = (".yaml", ".yml", ".csv")
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


class _Names:
    """The uploaded file names so far: no duplicate, none equal to the manifest's, none that is also
    the folder of another (checked as each name arrives, in time linear in the names)."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.folders: set[str] = set()

    def add(self, name: str) -> None:
        parents = {str(p) for p in PurePosixPath(name).parents if str(p) != "."}
        if name in self.files:
            raise InvalidInput(f"file name {name!r} is given twice (or is the manifest's own name)")
        clash = name if name in self.folders else next(iter(sorted(parents & self.files)), None)
        if clash is not None:
            raise InvalidInput(f"file name {clash!r} is both a file and a folder of other files")
        self.files.add(name)
        self.folders |= parents


def _work_dir(service: JobService) -> Path:
    work = service.uploads_dir / f"campaign-{uuid.uuid4().hex}"
    work.mkdir(parents=True)
    return work


def _check_queue(runner: JobRunner) -> None:
    if runner.max_queued is not None and runner.waiting() >= runner.max_queued:
        raise JobQueueFull(f"{runner.waiting()} jobs are already waiting (the limit is {runner.max_queued})")


def _submit(request: Request, response: Response, runner: JobRunner, source: Source, shown: str,
            manifest: Path, root: Path, work: Path, options: CampaignOptionsIn, client: str) -> CampaignCreatedOut:
    """Check the manifest (confined to ``root``) and queue its job."""
    m = load_confined(manifest, root, source, shown)
    check_budget(m, options.bootstrap)  # 422 now, not a job that would need too much memory
    params = {
        "source": source, "manifest": shown, "campaign": m.name, "recordings": len(m.recordings),
        "ads": [ad.name for ad in m.ads], "options": options.model_dump(),
        "_manifest": str(manifest), "_root": str(root), "_work": str(work),
    }
    job = runner.submit(CAMPAIGN_KIND, params, client=client)
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


def _upload_body_schema() -> dict[str, Any]:
    """The OpenAPI schema of the multipart body of ``POST /v1/campaigns`` (read by :func:`stream_form`)."""
    options = CampaignOptionsIn.model_json_schema()
    binary = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}
    props = {
        "manifest": {**binary, "description": "The campaign manifest: YAML (.yaml, .yml) or CSV (docs/campaigns.md)."},
        "files": {"type": "array", "items": binary, "description": "Every recording and ad video the manifest "
                  "names; each file name is its path relative to the manifest (e.g. `recordings/v01.mp4`, "
                  "`photos/v03/1.jpg`)."},
        **options["properties"],
    }
    schema = {"type": "object", "properties": props, "required": ["manifest"], "additionalProperties": False}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


class _Placer:
    """Decides where each uploaded part goes (``work/files/<its path>``) and what it may hold."""

    def __init__(self, folder: Path, settings: Settings) -> None:
        self.folder, self.settings = folder, settings
        self.manifest: str | None = None
        self.names = _Names()
        self.count = 0

    def __call__(self, field_name: str, filename: str, used: int) -> Target:
        total = self.settings.max_campaign_bytes
        budget = total - used
        too_large = f"{filename[:200]}: the upload passes the limit of {human_bytes(total)}"
        if budget <= 0:
            raise MediaTooLarge(too_large)
        if field_name == "manifest":
            if self.manifest is not None:
                raise InvalidInput("the form has two `manifest` files")
            shown = clean_filename(filename, "manifest.yaml")
            if not shown.lower().endswith(MANIFEST_SUFFIXES):
                raise InvalidInput(f"manifest {shown!r}: its name must end with .yaml, .yml or .csv")
            self.manifest = shown
            self.names.add(shown)
            if budget > MAX_MANIFEST_BYTES:
                return Target(self.folder / shown, MAX_MANIFEST_BYTES,
                              f"{shown}: the manifest passes the limit of {human_bytes(MAX_MANIFEST_BYTES)}")
            return Target(self.folder / shown, budget, too_large)
        if field_name != "files":
            raise InvalidInput(f"unknown file field {field_name[:100]!r}: send `manifest` and `files`")
        most = self.settings.max_campaign_files
        if self.count >= most:
            raise MediaTooLarge(f"more than {most} files uploaded besides the manifest; the limit is {most}")
        name = upload_path(filename)
        self.names.add(name)
        self.count += 1
        return Target(self.folder / name, budget, too_large)


def _options(fields: dict[str, list[str]]) -> CampaignOptionsIn:
    """The campaign options from the form's text fields (422 naming each bad one)."""
    values: dict[str, Any] = {}
    for name, given in fields.items():
        if len(given) > 1:
            raise InvalidInput(f"form field {name[:100]!r} is given {len(given)} times")
        values[name] = given[0]
    try:
        return CampaignOptionsIn.model_validate(values)
    except ValidationError as err:
        raise InvalidInput(describe_validation_errors(
            [{**e, "loc": ("body", *e.get("loc", ()))} for e in err.errors()])) from None


async def _receive_upload(request: Request, work: Path, settings: Settings) -> tuple[str, CampaignOptionsIn]:
    placer = _Placer(work / "files", settings)
    limits = FormLimits(max_files=settings.max_campaign_files + 2, max_fields=32)  # the placer names the limit
    form = await stream_form(request, placer, limits)
    if placer.manifest is None:
        raise InvalidInput("body.manifest: Field required (the campaign manifest file)")
    if len(form.files) - 1 > settings.max_campaign_files:
        raise MediaTooLarge(f"{len(form.files) - 1} files uploaded; the limit is {settings.max_campaign_files}")
    return placer.manifest, _options(form.fields)


@campaigns_router.post(
    "/campaigns",
    status_code=202,
    response_model=CampaignCreatedOut,
    responses={**_CREATE, 413: _err("Over `max_campaign_files` files or `max_campaign_bytes`, or manifest over 1 MB.")},
    openapi_extra=_upload_body_schema(),
)
async def upload_campaign(
    request: Request,
    response: Response,
    service: JobService = Depends(get_job_service),
    settings: Settings = Depends(get_settings),
    client: str = Depends(get_client),
) -> CampaignCreatedOut:
    """Upload a manifest and its recordings; the campaign is analysed in the background.

    The body is multipart: ``manifest`` (one file), ``files`` (any number), and the options as text
    fields. Each file is written to disk as it arrives (never held in memory)."""
    runner = await run_in_threadpool(lambda: service.runner)
    _check_queue(runner)
    work = await run_in_threadpool(_work_dir, service)
    try:
        shown, options = await _receive_upload(request, work, settings)
        folder = work / "files"
        try:
            return await run_in_threadpool(_submit, request, response, runner, "upload", shown, folder / shown,
                                           folder, work, options, client)
        except InvalidInput as err:
            raise _with_upload_hint(err) from None
    except BaseException:
        await run_in_threadpool(shutil.rmtree, work, True)
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
    client: str = Depends(get_client),
) -> CampaignCreatedOut:
    """Analyse a campaign whose manifest and recordings already lie in the server's data root."""
    root = _data_root(settings)
    rel = body.manifest_path
    if "\\" in rel or PurePosixPath(rel).is_absolute():
        raise InvalidInput(f"manifest_path {rel[:200]!r} must be a path relative to the data root, with '/'")
    why = path_problem(rel)
    if why is not None:
        raise InvalidInput(f"manifest_path {rel[:200]!r} {why}")
    manifest = root / rel
    if not inside(manifest, root):
        raise OutsideDataRoot(f"manifest_path {rel[:200]!r} leads outside the server's data root")
    try:
        found = manifest.is_file()
    except OSError as err:
        raise InvalidInput(f"manifest_path {rel[:200]!r} cannot be used ({err.strerror or err})") from None
    if not found:
        raise InvalidInput(f"manifest_path {rel[:200]!r}: no such file in the data root")
    runner = service.runner
    _check_queue(runner)
    work = _work_dir(service)
    try:
        return _submit(request, response, runner, "data_root", rel, manifest, root, work, body.options, client)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _require_campaign(runner: JobRunner, job_id: str, client: str) -> None:
    """JobFileNotFound (404) unless ``job_id`` is one of ``client``'s campaign jobs."""
    kind = runner.store.get(job_id, client=client).kind
    if kind != CAMPAIGN_KIND:
        raise JobFileNotFound(f"job {job_id} is a {kind} job, not a campaign")


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
def get_campaign_report(
    job_id: str, runner: JobRunner = Depends(get_runner), client: str = Depends(get_client)
) -> FileResponse:
    """The campaign's report (offline HTML: curves, KPIs, rankings, key moments, QC)."""
    _require_campaign(runner, job_id, client)
    job = finished_job(runner, job_id, client)
    path = runner.store.job_dir(job_id) / "report.html"
    if "report.html" not in job.files or not path.is_file():
        raise JobFileNotFound(f"campaign job {job_id} has no report")
    return FileResponse(path, media_type="text/html", filename="report.html", content_disposition_type="inline",
                        headers=REPORT_HEADERS)


@campaigns_router.get(
    "/campaigns/{job_id}/{name:path}",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "One file of the campaign's outputs."},
        **_AUTH,
        404: _err("No job with this id, not a campaign, or no such file among its outputs."),
    },
)
def get_campaign_file(
    job_id: str, name: str, runner: JobRunner = Depends(get_runner), client: str = Depends(get_client)
) -> FileResponse:
    """A file of the campaign's outputs, by the name the report links to (``series.csv``, ``kpis.csv``, ...):
    the report's relative links work when it is served at ``/v1/campaigns/{id}/report``."""
    _require_campaign(runner, job_id, client)
    return get_job_file(job_id, name, runner, client)
