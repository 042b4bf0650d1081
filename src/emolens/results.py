"""The typed results every consumer shares: Python API, CLI, REST API, video and reports.

They are frozen dataclasses with ``to_dict()`` (JSON-ready, plain types). Boxes are
``[x, y, w, h]`` in pixels of the upright image (after EXIF rotation).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FaceResult:
    """One face: where it is and what it feels.

    ``probabilities`` maps every label of the model to its probability (they sum to 1);
    ``emotion`` is the most probable label. ``keypoints`` (name -> [x, y], image pixels) and
    ``roll`` (degrees, positive = counter-clockwise head tilt) are present when a landmark model ran.
    ``yaw`` and ``pitch`` (degrees) are the head pose from the face's landmarks: yaw > 0 when the
    head turns towards the image's right (the subject's left), pitch > 0 when it tilts up; ``looking``
    is True when both are within the analyser's attention limits (head towards the camera), None
    when no pose could be estimated. ``whole_image`` is True when no face was detected in a small
    image (a face crop) and the whole image was analysed as the face. ``track_id`` is set by video tracking.
    """

    box: tuple[int, int, int, int]
    detection_score: float
    emotion: str
    probabilities: Mapping[str, float]
    keypoints: Mapping[str, tuple[float, float]] | None = None
    roll: float | None = None
    track_id: int | None = None
    yaw: float | None = None
    pitch: float | None = None
    looking: bool | None = None
    whole_image: bool = False

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.emotion])

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "box": [int(v) for v in self.box],
            "detection_score": round(float(self.detection_score), 6),
            "emotion": self.emotion,
            "probabilities": {k: round(float(v), 6) for k, v in self.probabilities.items()},
        }
        if self.keypoints is not None:
            d["keypoints"] = {k: [round(float(x), 2), round(float(y), 2)] for k, (x, y) in self.keypoints.items()}
        if self.roll is not None:
            d["roll"] = round(float(self.roll), 2)
        if self.yaw is not None:
            d["yaw"] = round(float(self.yaw), 2)
        if self.pitch is not None:
            d["pitch"] = round(float(self.pitch), 2)
        if self.looking is not None:
            d["looking"] = bool(self.looking)
        if self.whole_image:
            d["whole_image"] = True
        if self.track_id is not None:
            d["track_id"] = int(self.track_id)
        return d


def keypoints_json(face: FaceResult) -> str:
    """A face's keypoints as compact JSON ``{name: [x, y]}`` (``""`` when it has none), for CSV and
    Parquet cells."""
    if not face.keypoints:
        return ""
    return json.dumps({k: [round(float(x), 2), round(float(y), 2)] for k, (x, y) in face.keypoints.items()},
                      separators=(",", ":"))


@dataclass(frozen=True)
class ImageResult:
    """All faces of one image. ``source`` is the path or a caller-given name; ``timings_ms`` holds
    per-stage milliseconds (``decode``, ``detect``, ``align``, ``classify``) for this image; ``warnings``
    says what may be wrong with the result (e.g. damaged JPEG data: the image may be partly wrong)."""

    source: str
    width: int
    height: int
    faces: tuple[FaceResult, ...]
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    model: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def emotions(self) -> list[str]:
        return [f.emotion for f in self.faces]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "width": int(self.width),
            "height": int(self.height),
            "model": self.model,
            "faces": [f.to_dict() for f in self.faces],
            "timings_ms": {k: round(float(v), 3) for k, v in self.timings_ms.items()},
            "warnings": list(self.warnings),
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)


@dataclass(frozen=True)
class FrameResult:
    """One analysed video frame: its index, its time in seconds from the stream, and its faces."""

    index: int
    time_s: float
    width: int
    height: int
    faces: tuple[FaceResult, ...]
    classified: bool = True
    timings_ms: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": int(self.index),
            "time_s": round(float(self.time_s), 4),
            "width": int(self.width),
            "height": int(self.height),
            "classified": self.classified,
            "faces": [f.to_dict() for f in self.faces],
            "timings_ms": {k: round(float(v), 3) for k, v in self.timings_ms.items()},
        }
