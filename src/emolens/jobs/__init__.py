"""Background jobs that survive restarts: a SQLite job store and a bounded worker pool.

:class:`~emolens.jobs.store.JobStore` keeps every job's record on disk;
:class:`~emolens.jobs.runner.JobRunner` runs the job functions of registered
:class:`~emolens.jobs.runner.JobKind` s and records state, progress, result and error. The REST
API uses it for ``POST /v1/videos`` (kind ``video``, :mod:`emolens.jobs.video`); any other long
task registers its own kind. Only the standard library is imported here.
"""

from __future__ import annotations

from .models import RESTARTED, SHUT_DOWN, JobFailed, JobNotFinished, JobNotFound, JobRecord, JobState, JobStoreError
from .runner import JobContext, JobInterrupted, JobKind, JobQueueFull, JobRunner, Recovery
from .store import JobStore, default_jobs_dir

__all__ = [
    "RESTARTED",
    "SHUT_DOWN",
    "JobContext",
    "JobFailed",
    "JobInterrupted",
    "JobKind",
    "JobNotFinished",
    "JobNotFound",
    "JobQueueFull",
    "JobRecord",
    "JobRunner",
    "JobState",
    "JobStore",
    "JobStoreError",
    "Recovery",
    "default_jobs_dir",
]
