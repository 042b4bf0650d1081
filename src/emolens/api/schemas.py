"""Response models of the REST API, named by role. They mirror :mod:`emolens.results`.

Boxes are ``[x, y, w, h]`` in pixels of the upright image (after EXIF rotation); probabilities
map every label of the loaded model to a value in [0, 1] that sums to 1 per face.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..inference.summary import summarize
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
        )


class AnalysisOut(BaseModel):
    """All faces found in one image (an empty list when there is none)."""

    source: str = Field(description="The uploaded file's name.")
    width: int
    height: int
    model: str
    faces: list[FaceOut]
    timings_ms: dict[str, float] = Field(description="Milliseconds per stage (decode, detect, ...).")

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
