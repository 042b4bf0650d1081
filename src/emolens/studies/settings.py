"""Limits of studies, read from ``EMOLENS_STUDY_*`` environment variables (or passed in).

``max_ad_bytes`` / ``max_ad_seconds``: one ad video; ``max_ads``: ads per study;
``max_session_bytes``: one viewer's whole recording; ``max_chunk_bytes``: one upload request of
it; ``max_open_sessions``: viewers of one study watching (or uploading) at once, so a leaked link
cannot fill the disk; ``stale_after_s``: a session whose page has sent nothing for that long counts as abandoned
(its partial recording is deleted); ``max_retention_days``: the longest a study may keep raw
recordings. The studies live in ``<jobs_dir>/studies`` unless ``dir`` is set.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MB = 1024 * 1024


class StudySettings(BaseSettings):
    """See the module doc."""

    model_config = SettingsConfigDict(env_prefix="EMOLENS_STUDY_", frozen=True, extra="ignore")

    dir: Path | None = None
    max_ad_bytes: int = Field(default=300 * MB, ge=1)
    max_ad_seconds: float = Field(default=600.0, gt=0)
    max_ads: int = Field(default=20, ge=1, le=200)
    max_session_bytes: int = Field(default=500 * MB, ge=1)
    max_chunk_bytes: int = Field(default=8 * MB, ge=1024)
    max_face_check_bytes: int = Field(default=2 * MB, ge=1024)
    max_open_sessions: int = Field(default=50, ge=1, le=100_000)
    stale_after_s: float = Field(default=1800.0, gt=0)
    max_retention_days: int = Field(default=365, ge=1)
