"""Server settings, read from ``EMOLENS_*`` environment variables (or passed to ``create_app``).

Every field has a safe default: the shipped default model, no API key, no CORS, uploads never
kept. ``emolens serve`` builds a :class:`Settings` from its options; with several workers it hands
them over through the same environment variables (:meth:`Settings.to_env`).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..jobs.store import default_jobs_dir

MB = 1024 * 1024


class Settings(BaseSettings):
    """Configuration of the REST API.

    ``model`` is a path to an ``.onnx`` model or a shipped model name (None: the shipped default).
    ``threads`` are ONNX Runtime threads per model (0: its choice); ``max_concurrency`` caps the
    analyses running at once in this process (0: one per CPU core); further requests wait their turn.
    Limits: one uploaded file may hold ``max_upload_bytes`` and decode to ``max_pixels``; a batch
    may carry ``max_batch_files`` files and ``max_batch_bytes`` in total. When ``api_key`` (or any of
    ``api_keys``, a JSON list in ``EMOLENS_API_KEYS``) is set every ``/v1/*`` request needs the header
    ``X-API-Key``, checked before any request body is read. Each key is one client: a job is listed,
    read and deleted only by the client that made it (without keys every client is the same
    ``public`` one: give each client its own key to keep them apart). ``keep_uploads`` saves each upload under
    ``uploads_dir`` (off by default: nothing uploaded is kept).

    Video jobs (``POST /v1/videos``): their records and outputs live under ``jobs_dir`` (default
    ``~/.cache/emolens/jobs``, or ``$EMOLENS_CACHE/jobs``); ``job_workers`` jobs run at once per
    process and at most ``max_queued_jobs`` are unfinished (queued or running) per process; an
    uploaded video may hold ``max_video_bytes`` and last ``max_video_seconds`` (an upload kept
    with ``keep_uploads`` is moved to ``uploads_dir`` once its job has ended).

    Campaign jobs (``POST /v1/campaigns``): one upload may carry ``max_campaign_files`` files
    besides its manifest and ``max_campaign_bytes`` in total. ``data_root`` (``EMOLENS_DATA_ROOT``)
    is the one folder whose manifests and videos clients may name by path
    (``POST /v1/campaigns/from-path``); None (the default) refuses every path: only uploads work.
    Nothing outside it is ever read, symlinks included. Per-recording analyses are cached under
    ``jobs_dir/campaign-cache`` (keyed by file content), shared by every campaign job.

    Finished jobs (records and files) and cache entries unused for ``job_retention_s`` seconds are
    deleted by the server (0: kept until a client deletes them with ``DELETE /v1/jobs/{id}``).
    """

    model_config = SettingsConfigDict(env_prefix="EMOLENS_", frozen=True, extra="ignore")

    model: str | None = None
    detector: str = "auto"
    align: bool = True
    tta: bool = False
    threads: int = Field(default=0, ge=0, le=256)
    max_concurrency: int = Field(default=0, ge=0, le=1024)
    max_upload_bytes: int = Field(default=20 * MB, ge=1)
    max_pixels: int = Field(default=40_000_000, ge=1)
    max_batch_files: int = Field(default=16, ge=1, le=1000)
    max_batch_bytes: int = Field(default=64 * MB, ge=1)
    api_key: SecretStr | None = None
    api_keys: list[SecretStr] = Field(default_factory=list)
    keep_uploads: bool = False
    uploads_dir: Path = Path("emolens-uploads")
    cors_origins: list[str] = Field(default_factory=list)
    jobs_dir: Path = Field(default_factory=default_jobs_dir)
    job_workers: int = Field(default=1, ge=1, le=64)
    max_queued_jobs: int = Field(default=100, ge=1, le=100_000)
    max_video_bytes: int = Field(default=500 * MB, ge=1)
    max_video_seconds: float = Field(default=1800.0, gt=0)
    max_campaign_files: int = Field(default=2000, ge=1, le=100_000)
    max_campaign_bytes: int = Field(default=2048 * MB, ge=1)
    data_root: Path | None = None
    job_retention_s: float = Field(default=7 * 24 * 3600.0, ge=0)

    @field_validator("api_key")
    @classmethod
    def _empty_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        return value

    @field_validator("api_keys")
    @classmethod
    def _no_empty_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        return [k for k in value if k.get_secret_value()]

    def accepted_keys(self) -> list[str]:
        """Every API key this server accepts (``api_key`` and ``api_keys``); empty: no key needed."""
        keys = [self.api_key.get_secret_value()] if self.api_key is not None else []
        return keys + [k.get_secret_value() for k in self.api_keys]

    @field_validator("data_root", mode="before")
    @classmethod
    def _empty_root_is_none(cls, value: object) -> object:
        return None if value is None or (isinstance(value, str) and not value.strip()) else value

    @field_validator("model")
    @classmethod
    def _empty_model_is_none(cls, value: str | None) -> str | None:
        return value or None

    def to_env(self) -> dict[str, str]:
        """These settings as ``EMOLENS_*`` variables (for worker processes started by uvicorn)."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                text = value.get_secret_value()
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, list):
                text = json.dumps([v.get_secret_value() if isinstance(v, SecretStr) else v for v in value])
            else:
                text = str(value)
            env[f"EMOLENS_{name.upper()}"] = text
        return env
