"""Response models of the REST API, named by role. They mirror :mod:`emolens.results`.

Boxes are ``[x, y, w, h]`` in pixels of the upright image (after EXIF rotation); probabilities
map every label of the loaded model to a value in [0, 1] that sums to 1 per face.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..inference.summary import summarize
from ..jobs.models import JobRecord, JobState
from ..results import FaceResult, ImageResult


class ErrorDetail(BaseModel):
    type: str = Field(description="Error class, e.g. UnsupportedMedia, MediaTooLarge, InvalidInput.")
    message: str = Field(description="What went wrong, naming the file, field or limit.")


class ErrorOut(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class FaceOut(BaseModel):
    box: list[int] = Field(description="[x, y, width, height] in pixels of the upright image.")
    detection_score: float
    emotion: str = Field(description="The most probable emotion.")
    confidence: float = Field(description="Probability of `emotion`.")
    probabilities: dict[str, float]
    keypoints: dict[str, list[float]] | None = None
    roll: float | None = None
    yaw: float | None = Field(None, description="Head yaw in degrees from the line of sight to the camera; "
                              "> 0 turned towards the image's right.")
    pitch: float | None = Field(None, description="Head pitch in degrees; > 0 tilted up.")
    looking: bool | None = Field(None, description="Head towards the camera within the server's yaw/pitch limits.")
    whole_image: bool = Field(False, description="No face was detected in this small image: the whole image was "
                              "analysed as the face.")

    @classmethod
    def from_result(cls, face: FaceResult) -> FaceOut:
        d = face.to_dict()
        return cls(
            box=d["box"],
            detection_score=d["detection_score"],
            emotion=d["emotion"],
            confidence=round(face.confidence, 6),
            probabilities=d["probabilities"],
            keypoints=d.get("keypoints"),
            roll=d.get("roll"),
            yaw=d.get("yaw"),
            pitch=d.get("pitch"),
            looking=d.get("looking"),
            whole_image=face.whole_image,
        )


class AnalysisOut(BaseModel):
    """All faces found in one image (an empty list when there is none)."""

    source: str = Field(description="The uploaded file's name.")
    width: int
    height: int
    model: str
    faces: list[FaceOut]
    timings_ms: dict[str, float] = Field(description="Milliseconds per stage (decode, detect, ...).")
    warnings: list[str] = Field(default_factory=list,
                                description="What may be wrong with this result (e.g. damaged JPEG data).")

    @classmethod
    def from_result(cls, result: ImageResult, source: str) -> AnalysisOut:
        d = result.to_dict()
        return cls(
            source=source,
            width=d["width"],
            height=d["height"],
            model=d["model"],
            faces=[FaceOut.from_result(f) for f in result.faces],
            timings_ms=d["timings_ms"],
            warnings=[w.replace(result.source, source) for w in result.warnings],
        )


ImageOut = AnalysisOut


class SummaryOut(BaseModel):
    """Emotion distribution over every face of a batch."""

    images: int
    images_with_faces: int
    faces: int
    top: str | None
    counts: dict[str, int] = Field(description="Faces per top emotion.")
    shares: dict[str, float] = Field(description="Fraction of faces per top emotion.")
    mean_probabilities: dict[str, float]
    valence: dict[str, float]

    @classmethod
    def from_results(cls, results: list[ImageResult], labels: tuple[str, ...]) -> SummaryOut:
        return cls(**summarize(results, labels).to_dict())


class BatchItemOut(BaseModel):
    """One file of a batch: its result, or the error that file alone met."""

    filename: str
    ok: bool
    result: AnalysisOut | None = None
    error: ErrorDetail | None = None


class BatchOut(BaseModel):
    items: list[BatchItemOut]
    summary: SummaryOut


class ModelOut(BaseModel):
    name: str
    description: str = ""
    default: bool = False
    loaded: bool = False
    labels: list[str]
    input_size: list[int] = Field(description="[height, width] of the classifier input.")
    channels: int
    architecture: str
    dataset: str
    metrics: dict[str, Any] = Field(default_factory=dict)


class ModelsOut(BaseModel):
    loaded: ModelOut = Field(description="The model this server analyses with.")
    shipped: list[ModelOut] = Field(description="Models that come with the package.")


class LimitsOut(BaseModel):
    max_upload_bytes: int
    max_pixels: int
    max_batch_files: int
    max_batch_bytes: int


class HealthOut(BaseModel):
    status: str = "ok"
    model: str
    version: str
    api_key_required: bool
    limits: LimitsOut


# -- background jobs (POST /v1/videos, GET /v1/jobs/...) ---------------------------------------

JobStateOut = Literal["queued", "running", "succeeded", "partial", "failed"]


class JobLinksOut(BaseModel):
    """Where to follow a job (paths on this server)."""

    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self", description="GET: the job's state and progress.")
    result: str = Field(description="GET: the job's result once it has succeeded (409 before).")


class JobCreatedOut(BaseModel):
    """A job accepted for background processing (HTTP 202): poll `links.self` until it ends."""

    job_id: str
    state: JobStateOut
    links: JobLinksOut


class JobOut(BaseModel):
    """A job's state: queued -> running -> succeeded | partial | failed (partial: a result with parts
    missing, named in ``warnings``)."""

    job_id: str
    kind: str = Field(description="What the job does, e.g. `video`.")
    state: JobStateOut
    progress: float = Field(ge=0.0, le=1.0, description="Fraction done (0 while unknown, 1 when succeeded).")
    message: str = Field(description="The latest word from the job, e.g. `120 frames analysed`.")
    frames_done: int | None = Field(default=None, description="Video frames analysed so far (video jobs).")
    frames_total: int | None = Field(default=None, description="Frames in the video, when the file says.")
    details: dict[str, Any] = Field(description="The latest progress figures the job reported (fps, eta_s, ...).")
    params: dict[str, Any] = Field(description="What the job was asked to do (file name, options).")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: ErrorDetail | None = Field(default=None, description="Why the job failed (failed jobs only).")
    warnings: list[str] = Field(default_factory=list, description="What a partial job's result misses.")
    links: JobLinksOut

    @classmethod
    def from_record(cls, job: JobRecord, links: JobLinksOut) -> JobOut:
        def when(ts: float | None) -> datetime | None:
            return None if ts is None else datetime.fromtimestamp(ts, UTC)

        details = dict(job.details)
        done, total = details.get("frames_done"), details.get("frames_total")
        error = None
        if job.state is JobState.FAILED:
            error = ErrorDetail(type=job.error_type or "JobError", message=job.error or "the job failed")
        return cls(
            job_id=job.id,
            kind=job.kind,
            state=job.state.value,
            progress=job.progress,
            message=job.message,
            frames_done=done if isinstance(done, int) else None,
            frames_total=total if isinstance(total, int) else None,
            details=details,
            params={k: v for k, v in job.params.items() if not k.startswith("_")},
            created_at=when(job.created_at) or datetime.fromtimestamp(0, UTC),
            started_at=when(job.started_at),
            finished_at=when(job.finished_at),
            error=error,
            warnings=list(job.warnings),
            links=links,
        )


class JobListOut(BaseModel):
    """A page of jobs, newest first."""

    jobs: list[JobOut]
    total: int = Field(description="Jobs matching the filters, over all pages.")
    limit: int
    offset: int
    next: str | None = Field(default=None, description="The next page, when there is one.")


class JobFileOut(BaseModel):
    """One file a job produced."""

    name: str = Field(description="e.g. `frames.csv`, `frames.parquet`, `tracks.csv`, `timeline_track1.png`.")
    url: str = Field(description="GET: the file itself.")
    bytes: int
    media_type: str


class JobResultOut(BaseModel):
    """A succeeded job's result: its JSON summary and the files to download."""

    job_id: str
    kind: str
    state: JobStateOut
    result: dict[str, Any] = Field(description="The job's JSON result (for a video: per-track summary, counts).")
    files: list[JobFileOut]
    warnings: list[str] = Field(default_factory=list, description="What the result misses (a partial job).")


# -- campaign jobs (POST /v1/campaigns, POST /v1/campaigns/from-path) ---------------------------


class CampaignOptionsIn(BaseModel):
    """Settings of a campaign analysis (defaults as ``emolens campaign analyze``; docs/campaigns.md)."""

    model_config = ConfigDict(extra="forbid")

    sample_fps: float = Field(default=5.0, gt=0.0, le=120.0, description="Video frames analysed per second.")
    expressing_threshold: float = Field(
        default=0.5, gt=0.0, le=1.0, description="Probability from which a viewer counts as expressing an emotion."
    )
    min_face_rate: float = Field(default=0.5, ge=0.0, le=1.0, description="QC: least share of seconds with a face.")
    min_brightness: float = Field(default=40.0, ge=0.0, le=255.0, description="QC: least median brightness (0-255).")
    min_sharpness: float = Field(default=15.0, ge=0.0, le=1e6, description="QC: least median face sharpness.")
    bootstrap: int = Field(default=2000, ge=10, le=20_000, description="Bootstrap resamples per CI and test.")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed of the resampling.")


class CampaignFromPathIn(BaseModel):
    """A campaign whose manifest and recordings are already on the server, inside its data root."""

    model_config = ConfigDict(extra="forbid")

    manifest_path: str = Field(
        min_length=1,
        max_length=4096,
        description="The manifest (.yaml, .yml, .csv), relative to the server's data root; its paths are "
        "relative to its own folder and must stay inside the data root.",
    )
    options: CampaignOptionsIn = Field(default_factory=lambda: CampaignOptionsIn())


class CampaignLinksOut(JobLinksOut):
    report: str = Field(description="GET: the campaign's report.html once the job has succeeded (409 before).")


class CampaignCreatedOut(BaseModel):
    """A campaign job accepted (HTTP 202): poll `links.self` until it ends, then fetch `links.report`."""

    job_id: str
    state: JobStateOut
    links: CampaignLinksOut
    campaign: str = Field(description="The campaign's name (from the manifest).")
    recordings: int = Field(description="Recordings the manifest lists.")
    ads: list[str] = Field(description="The ads, in manifest order.")
