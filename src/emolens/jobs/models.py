"""The record of one background job, its states, and the errors of the job system.

A job moves ``queued -> running -> succeeded | partial | failed`` and never back (except that a *queued*
job left behind by a stopped server is taken over, still queued, by the next one). Records are
frozen: the store hands out a fresh one on every read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import EmolensError

RESTARTED = "server restarted before the job finished"
"""The error of a job that was running when its server died (recorded by the next server)."""

SHUT_DOWN = "server shut down before the job finished"
"""The error of a job that was running when its server stopped cleanly."""


class JobState(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """True once the job can change no more (succeeded, partial or failed)."""
        return self in (JobState.SUCCEEDED, JobState.PARTIAL, JobState.FAILED)

    @property
    def has_result(self) -> bool:
        """True for a job that ended with a result: whole (succeeded) or with parts missing (partial)."""
        return self in (JobState.SUCCEEDED, JobState.PARTIAL)


ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)

PUBLIC_CLIENT = "public"
"""The client of a server without API keys; jobs recorded with no client belong to it too."""
FINISHED_STATES = (JobState.SUCCEEDED, JobState.PARTIAL, JobState.FAILED)


class JobNotFound(EmolensError):
    """No job has this id (it never existed, or its store was deleted)."""

    exit_code = 2
    http_status = 404


class JobNotFinished(EmolensError):
    """The job's result was asked for while it is still queued or running."""

    exit_code = 2
    http_status = 409


class JobFailed(EmolensError):
    """The job's result was asked for, but the job failed; the message carries its reason."""

    exit_code = 1
    http_status = 409


class JobStoreError(EmolensError):
    """The jobs database cannot be opened or written (corrupt file, unwritable folder)."""

    exit_code = 6
    http_status = 500


class JobFileNotFound(EmolensError):
    """The job produced no file of this name (only names from its own output listing are served)."""

    exit_code = 2
    http_status = 404


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


@dataclass(frozen=True)
class JobRecord:
    """One job as the store holds it.

    ``params`` are what the job was asked to do (JSON values); ``details`` the latest progress
    figures the job reported (for a video: ``frames_done``, ``frames_total``, ``fps``, ``eta_s``);
    ``result`` the JSON the job function returned; ``files`` the names (POSIX paths relative to
    the job's folder, :meth:`JobStore.job_dir`) of the files it produced. ``error`` is the reason
    a failed job failed and ``error_type`` its class (``UnsupportedMedia``, ``ServerRestarted``,
    ...). Timestamps are POSIX seconds. ``owner`` names the server process that holds the job (None: nobody).
    ``client`` is who asked for it (an API key's digest, :data:`PUBLIC_CLIENT` without keys; None,
    for jobs made before clients were recorded, counts as public): only that client sees it.
    ``warnings`` say what is missing from a ``partial`` job's result (frames that could not be read).
    """

    id: str
    kind: str
    state: JobState
    progress: float = 0.0
    message: str = ""
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    result: Mapping[str, Any] | None = None
    files: tuple[str, ...] = ()
    error: str | None = None
    error_type: str | None = None
    owner: str | None = None
    heartbeat_at: float | None = None
    client: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.state.finished

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (timestamps as ISO 8601 UTC strings; no owner bookkeeping and no
        server-private params, those whose key starts with ``_``)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state.value,
            "progress": round(float(self.progress), 6),
            "message": self.message,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "params": {k: v for k, v in self.params.items() if not k.startswith("_")},
            "details": dict(self.details),
            "result": None if self.result is None else dict(self.result),
            "files": list(self.files),
            "error": self.error,
            "error_type": self.error_type,
            "warnings": list(self.warnings),
        }
