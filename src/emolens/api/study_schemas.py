"""Request and response models of the study routes (:mod:`emolens.api.study_routes`), named by role."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .schemas import CampaignOptionsIn


class QuestionIn(BaseModel):
    """A question put to each viewer before the ads; the answer becomes the viewer attribute ``key``."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=40, description="Attribute name, e.g. `segment`.")
    label: str = Field(default="", max_length=300, description="The question as the viewer reads it.")
    choices: list[str] = Field(default_factory=list, max_length=50, description="Allowed answers (empty: free text).")
    required: bool = False


class StudyCreateIn(BaseModel):
    """A new study. Ads are added afterwards, one upload each (``POST /v1/studies/{id}/ads``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    order: Literal["fixed", "random"] = Field(default="fixed",
        description="Ad order: as added, or shuffled per viewer.")
    keep_recordings: bool = Field(default=False, description="Keep the raw webcam videos after analysis.")
    retention_days: int = Field(default=30, ge=1, le=3650, description="Days kept recordings are kept at most.")
    closes_at: datetime | None = Field(default=None, description="When the viewer link stops working (ISO 8601).")
    questions: list[QuestionIn] = Field(default_factory=list, max_length=20)
    options: CampaignOptionsIn = Field(default_factory=CampaignOptionsIn, description="Analysis settings.")


class QuestionOut(BaseModel):
    key: str
    label: str
    choices: list[str]
    required: bool


class AdOut(BaseModel):
    id: str
    name: str
    duration_s: float
    width: int
    height: int
    bytes: int
    media_type: str


class AnalysisOut(BaseModel):
    """The analysis job of one session."""

    job_id: str
    state: str
    progress: float
    message: str
    error: str | None = None


class QcOut(BaseModel):
    """One (viewer, ad) of the latest report: kept or excluded, and why."""

    ad: str
    status: str
    reason: str | None = None
    face_found_rate: float | None = None


class SessionOut(BaseModel):
    """One viewer's session as the marketer sees it."""

    viewer: str
    state: str = Field(description="consented | recording | analysing | analysed | failed | abandoned")
    reason: str | None = Field(description="Why it was abandoned or failed.")
    created_at: str | None
    updated_at: str | None
    answers: dict[str, str]
    ads: list[str] = Field(description="Ad names in the order this viewer saw them.")
    received_bytes: int
    analysis: AnalysisOut | None = None
    qc: list[QcOut] = Field(default_factory=list, description="From the latest report (empty until it has them).")


class ReportOut(BaseModel):
    available: bool
    url: str | None = None
    viewers: int = 0
    files: dict[str, str] = Field(default_factory=dict, description="Output file name -> URL.")
    ads: list[dict[str, Any]] = Field(default_factory=list, description="Per ad: viewers and KPI values.")


class CountsOut(BaseModel):
    viewers: int = 0
    consented: int = 0
    recording: int = 0
    analysing: int = 0
    analysed: int = 0
    failed: int = 0
    abandoned: int = 0
    excluded: int = Field(0, description="(viewer, ad) pairs excluded by QC in the latest report.")


class StudyOut(BaseModel):
    id: str
    name: str
    created_at: str | None
    order: str
    keep_recordings: bool
    retention_days: int
    closes_at: str | None
    closed: bool
    viewer_url: str = Field(description="The one link to send to viewers (its token is the only credential).")
    questions: list[QuestionOut]
    options: dict[str, Any]
    ads: list[AdOut]
    counts: CountsOut
    sessions: list[SessionOut]
    report: ReportOut


class StudyBriefOut(BaseModel):
    id: str
    name: str
    created_at: str | None
    ads: int
    counts: CountsOut
    viewer_url: str
    report_url: str | None


class StudyListOut(BaseModel):
    studies: list[StudyBriefOut]


class ConsentOut(BaseModel):
    keep_recordings: bool
    retention_days: int
    recorded: str
    purpose: str
    rights: str


class ViewerStudyOut(BaseModel):
    """What the viewer page needs before consent."""

    name: str
    ads: int
    total_duration_s: float
    questions: list[QuestionOut]
    consent: ConsentOut
    closes_at: str | None


class SessionStartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: dict[str, str] = Field(default_factory=dict, max_length=20)


class ViewerAdOut(BaseModel):
    id: str
    name: str
    duration_s: float
    url: str


class SessionStartOut(BaseModel):
    session_id: str = Field(description="This viewer's session secret: the page's only credential for it.")
    ads: list[ViewerAdOut] = Field(description="In the order to show them.")
    max_bytes: int
    chunk_bytes: int


class ViewerSessionOut(BaseModel):
    state: str
    received: int
    reason: str | None = None


class AdTimingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ad_id: str = Field(max_length=64)
    completed: bool
    segments: list[list[float]] = Field(max_length=200, description="[rec_start, rec_end, ad_start, ad_end] seconds.")


class FinishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timing: list[AdTimingIn] = Field(max_length=200)
    mime: str | None = Field(default=None, max_length=100)


class AbandonIn(BaseModel):
    reason: str = Field(default="the viewer left", max_length=500)


class ChunkOut(BaseModel):
    received: int


class FaceCheckOut(BaseModel):
    """The camera check: is one face found, is the picture lit well enough (nothing is kept)."""

    face_found: bool
    faces: int
    brightness: float = Field(description="Mean gray level of the picture, 0-255.")
    lit: bool = Field(description="Brightness at least the study's QC minimum.")
    box: list[float] | None = Field(description="Largest face as [x, y, w, h] fractions of the picture.")
