"""Ad-test studies in the browser: viewers watch the ads while their webcam records; reports follow.

:class:`~emolens.studies.service.StudyService` creates studies (ads, questions, viewer link),
runs viewer sessions (consent, chunked resumable recording upload, the page's ad timing) and
submits each finished session to the job runner as a ``study`` job
(:mod:`emolens.studies.analysis`), which analyses it with the campaign code and rebuilds the
study's campaign report. The REST routes are in :mod:`emolens.api.study_routes`; the guide is
``docs/studies.md``.
"""

from __future__ import annotations

from .models import (
    Question,
    Session,
    SessionNotFound,
    SessionState,
    SessionStateError,
    Study,
    StudyAd,
    StudyClosed,
    StudyNotFound,
    UploadOffsetMismatch,
)
from .settings import StudySettings

__all__ = [
    "Question",
    "Session",
    "SessionNotFound",
    "SessionState",
    "SessionStateError",
    "Study",
    "StudyAd",
    "StudyClosed",
    "StudyNotFound",
    "StudySettings",
    "UploadOffsetMismatch",
]
