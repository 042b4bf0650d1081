"""Records of the study store (studies, their ads, viewer sessions) and the errors of studies.

A *study* is an ad test run from the browser: the marketer uploads ads and shares one viewer link
(an unguessable token); each viewer who opens it is a *session* that records the webcam while the
ads play. Records are frozen; the store hands out fresh ones on every read.

A session moves ``consented -> recording -> analysing -> analysed | failed``, or ends
``abandoned`` (camera refused, page closed, upload silent for too long) with the reason.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import EmolensError, InvalidInput

MAX_QUESTIONS = 20
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")


class StudyNotFound(EmolensError):
    """No study has this id or viewer link (it never existed, or it was deleted)."""

    exit_code = 2
    http_status = 404


class StudyClosed(EmolensError):
    """The study's viewer link has expired (its ``closes_at`` has passed)."""

    exit_code = 2
    http_status = 410


class SessionNotFound(EmolensError):
    """No session of this study has this id."""

    exit_code = 2
    http_status = 404


class SessionStateError(EmolensError):
    """The session cannot do this in its state (e.g. an upload after it finished or was abandoned)."""

    exit_code = 2
    http_status = 409


class UploadOffsetMismatch(EmolensError):
    """A recording chunk does not start where the server's copy ends; ``received`` says where it does."""

    exit_code = 2
    http_status = 409

    def __init__(self, message: str, received: int) -> None:
        super().__init__(message)
        self.received = received


class TooManyViewers(EmolensError):
    """The study already has as many viewers watching at once as the server allows; try again later."""

    exit_code = 1
    http_status = 429


class SessionState(StrEnum):
    """Where a viewer session is."""

    CONSENTED = "consented"
    RECORDING = "recording"
    ANALYSING = "analysing"
    ANALYSED = "analysed"
    FAILED = "failed"
    ABANDONED = "abandoned"

    @property
    def open(self) -> bool:
        """True while the viewer's page may still upload."""
        return self in (SessionState.CONSENTED, SessionState.RECORDING)


def iso(ts: float | None) -> str | None:
    """POSIX seconds as ISO 8601 UTC (None stays None)."""
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Question:
    """A question put to each viewer before the ads; the answer becomes a viewer attribute ``key``.

    ``choices`` empty: free text (at most 200 characters); else the answer must be one of them."""

    key: str
    label: str
    choices: tuple[str, ...] = ()
    required: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "choices": list(self.choices), "required": self.required}

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Question:
        key = str(raw.get("key", "")).strip()
        if not _KEY.match(key):
            raise InvalidInput(f"question key {key[:60]!r}: use a letter then letters, digits or _ (at most 40)")
        if key in ("viewer", "ad", "recording", "offset_s", "attributes", "ad_duration_s", "ad_video"):
            raise InvalidInput(f"question key {key!r} is a reserved campaign column; choose another")
        label = str(raw.get("label") or key).strip()[:300]
        choices = tuple(str(c).strip()[:100] for c in raw.get("choices") or () if str(c).strip())
        if len(set(choices)) != len(choices):
            raise InvalidInput(f"question {key!r}: a choice is given twice")
        return cls(key, label, choices, bool(raw.get("required", False)))

    def answer(self, value: Any) -> str:
        """The viewer's answer checked: one of the choices, or free text; '' when not answered."""
        text = "" if value is None else str(value).strip()
        if not text:
            if self.required:
                raise InvalidInput(f"please answer {self.label!r}")
            return ""
        if self.choices and text not in self.choices:
            raise InvalidInput(f"answer {text[:60]!r} to {self.label!r} is not one of: {', '.join(self.choices)}")
        return text[:200]


def parse_questions(raw: Any) -> tuple[Question, ...]:
    """A list of question mappings checked (unique keys, at most :data:`MAX_QUESTIONS`)."""
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple) or not all(isinstance(q, Mapping) for q in raw):
        raise InvalidInput("questions must be a list of {key, label, choices, required}")
    if len(raw) > MAX_QUESTIONS:
        raise InvalidInput(f"{len(raw)} questions; at most {MAX_QUESTIONS}")
    questions = tuple(Question.parse(q) for q in raw)
    keys = [q.key for q in questions]
    if len(set(keys)) != len(keys):
        raise InvalidInput("two questions have the same key")
    return questions


@dataclass(frozen=True)
class StudyAd:
    """One ad of a study: its file (``file``, relative to the study's folder) and probed duration."""

    id: str
    study_id: str
    position: int
    name: str
    file: str
    media_type: str
    duration_s: float
    width: int
    height: int
    bytes: int


@dataclass(frozen=True)
class Study:
    """A study. ``token`` is the viewer link's secret; ``order`` is ``fixed`` or ``random`` (per
    viewer); ``keep_recordings`` keeps the raw webcam videos after analysis (for at most
    ``retention_days``); ``closes_at`` ends the viewer link (None: open until deleted);
    ``options`` are campaign settings (``sample_fps`` ...); ``report_job`` the job whose report
    is the latest, covering ``report_viewers`` viewers; ``client`` the API client that created it
    (only that client sees it; None: no API clients)."""

    id: str
    name: str
    created_at: float
    token: str
    order: str
    keep_recordings: bool
    retention_days: int
    closes_at: float | None
    questions: tuple[Question, ...]
    options: Mapping[str, Any]
    report_job: str | None = None
    report_viewers: int = 0
    ads: tuple[StudyAd, ...] = ()
    client: str | None = None

    def closed(self, now: float) -> bool:
        return self.closes_at is not None and now >= self.closes_at

    def ad(self, ad_id: str) -> StudyAd | None:
        return next((a for a in self.ads if a.id == ad_id), None)


@dataclass(frozen=True)
class Session:
    """One viewer's visit. ``viewer`` is the study-wide viewer id (``v001`` ...); ``ad_order`` the
    ad ids in the order this viewer sees them; ``received`` the recording bytes stored so far;
    ``timing`` what the page reported (see :mod:`emolens.studies.timing`); ``job_id`` the
    analysis job; ``reason`` why it was abandoned or failed."""

    id: str
    study_id: str
    viewer: str
    created_at: float
    updated_at: float
    state: SessionState
    answers: Mapping[str, str] = field(default_factory=dict)
    ad_order: tuple[str, ...] = ()
    received: int = 0
    mime: str | None = None
    timing: Any = None
    job_id: str | None = None
    reason: str | None = None
