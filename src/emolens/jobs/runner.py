"""The job runner: a bounded pool of worker threads running job functions, every step recorded.

    runner = JobRunner(store, [JobKind("video", run_video)], max_workers=1)
    runner.start()                         # takes over what a dead server left behind
    job = runner.submit("video", {"upload": "...", "every": 1})
    ...
    runner.close()                         # interrupts running jobs, leaves queued ones for the next server

A job function gets a :class:`JobContext` (its params, its output folder, ``report()`` for
progress) and returns the job's JSON result; the files it left in ``ctx.out_dir`` become the job's
file listing. An :class:`~emolens.errors.EmolensError` it raises ends the job ``failed`` with that
message; any other exception too, with a generic message (the traceback goes to the log).

**Restarts.** Each runner has an owner token (``host:pid:random``) written on the jobs it holds and
refreshed every ``heartbeat_s``. On start, and then at every heartbeat, it looks for jobs whose
owner is dead (its process is gone from this host, or its heartbeat is older than ``stale_s``):

* a job left **running** is marked ``failed`` with :data:`~emolens.jobs.models.RESTARTED`
  (half-written outputs cannot be trusted, and a job that crashed its server must not crash the
  next one in a loop);
* a job left **queued** never started, so nothing is lost by running it: the runner takes it over
  and runs it (kinds it does not know fail with ``UnknownJobKind``).

A clean :meth:`JobRunner.close` interrupts its running jobs (they fail with
:data:`~emolens.jobs.models.SHUT_DOWN`) and hands its queued jobs to whichever server runs next.
Each kind's ``cleanup`` runs once a job has ended, however it ended (even when a later server
recorded the failure), e.g. to delete an uploaded video. A failed job's folder is deleted: its
partial files are never served.

**Partial results.** A job function that could not use every input (frames that do not decode,
...) calls :meth:`JobContext.warn`; the job then ends ``partial`` rather than ``succeeded``, with
its warnings in the record and in its result (``result["warnings"]``).

**Deleting and retention.** :meth:`JobRunner.delete` removes a finished job (record and files) and
cancels an unfinished one (it stops at its next progress report and is then removed).
:meth:`JobRunner.prune`, run at start and then every ``prune_every_s`` when ``retention_s`` is set,
deletes the jobs that finished more than ``retention_s`` seconds ago.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import EmolensError, InvalidInput
from .models import RESTARTED, SHUT_DOWN, JobRecord, JobState, JobStoreError
from .store import JobStore

log = logging.getLogger(__name__)

JobFunction = Callable[["JobContext"], Mapping[str, Any] | None]
"""Runs one job: reads ``ctx.params``, writes files into ``ctx.out_dir``, returns the JSON result."""


class JobInterrupted(Exception):
    """Raised inside a job function (by :meth:`JobContext.report`) when its runner shuts down or
    its job is cancelled."""


CANCELLED = "deleted by its client before it finished"
MAX_WARNINGS = 50
"""Warnings kept per job (a count of the others is added): a job's record stays small."""


class JobQueueFull(EmolensError):
    """The server already holds as many waiting jobs as it accepts; try again later."""

    exit_code = 1
    http_status = 503


@dataclass(frozen=True)
class JobKind:
    """A kind of job: its name, its function and an optional ``cleanup(record)`` run once it ended."""

    name: str
    run: JobFunction
    cleanup: Callable[[JobRecord], None] | None = None


@dataclass(frozen=True)
class Recovery:
    """What one look for abandoned jobs did: jobs marked failed, queued jobs taken over."""

    failed: int = 0
    resumed: int = 0


def owner_token() -> str:
    """A token naming this runner: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or we cannot tell: assume alive
    return True


def owner_alive(owner: str | None, heartbeat_at: float | None, stale_s: float, now: float | None = None) -> bool:
    """Whether the runner ``owner`` may still be looking after its jobs.

    Dead when there is no owner, when the owner's process is gone from this host, or when its
    last heartbeat is ``stale_s`` old (another host, or a hung process)."""
    if owner is None:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if os.name == "posix" and host == socket.gethostname() and pid_text.isdigit():
        pid = int(pid_text)
        if pid != os.getpid() and not _pid_running(pid):
            return False
    now = time.time() if now is None else now
    return heartbeat_at is not None and now - heartbeat_at < stale_s


class JobContext:
    """What a job function gets: its record, params, output folder and a progress reporter."""

    def __init__(
        self, store: JobStore, job: JobRecord, stop: threading.Event, throttle_s: float,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        self.job = job
        self.warnings: list[str] = []
        self._dropped = 0
        self._cancelled = cancelled
        self.out_dir = store.job_dir(job.id)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._store = store
        self._stop = stop
        self._throttle_s = throttle_s
        self._last = -float("inf")
        self._details: dict[str, Any] = {}
        self._progress: float | None = None
        self._message: str | None = None
        self._pending = False

    @property
    def job_id(self) -> str:
        return self.job.id

    @property
    def params(self) -> Mapping[str, Any]:
        return self.job.params

    @property
    def interrupted(self) -> bool:
        """True once the runner is shutting down (the job should stop soon)."""
        return self._stop.is_set()

    def check(self) -> None:
        """Raise :class:`JobInterrupted` if the runner is shutting down or the job was cancelled."""
        if self._stop.is_set():
            raise JobInterrupted(SHUT_DOWN)
        if self._cancelled():
            raise JobInterrupted(CANCELLED)

    def warn(self, text: str) -> None:
        """Record that the result misses something (the job then ends ``partial``)."""
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(str(text)[:500])
        else:
            self._dropped += 1

    def all_warnings(self) -> list[str]:
        """The warnings, with a last one counting those left out."""
        more = [f"... and {self._dropped} more warnings"] if self._dropped else []
        return [*self.warnings, *more]

    def report(
        self, progress: float | None = None, message: str | None = None, *, force: bool = False, **details: Any
    ) -> None:
        """Record progress (0..1, or None when unknown), a message and detail figures.

        Cheap to call per frame: the store is written at most every ``throttle_s`` seconds (and
        always when ``force`` or ``progress >= 1``). Raises :class:`JobInterrupted` on shutdown."""
        self.check()
        self._details.update(details)
        if progress is not None:
            self._progress = progress
        if message is not None:
            self._message = message
        now = time.monotonic()
        if not force and now - self._last < self._throttle_s and not (progress is not None and progress >= 1):
            self._pending = True
            return
        self.flush()

    def flush(self) -> None:
        """Write what :meth:`report` has held back (the runner does this when the job ends)."""
        self._last = time.monotonic()
        self._pending = False
        self._store.report(self.job.id, progress=self._progress, message=self._message, details=self._details)

    @property
    def pending(self) -> bool:
        """True when reports are held back, not yet written."""
        return self._pending


def list_files(folder: Path) -> list[str]:
    """The regular files under ``folder`` (no symlinks), as sorted POSIX paths relative to it."""
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


class JobRunner:
    """Runs jobs of the registered kinds on at most ``max_workers`` threads; see the module doc.

    ``max_queued`` caps the unfinished jobs (queued or running) this process accepts
    (:class:`JobQueueFull` beyond, None: no cap; jobs taken over from a dead server do not count
    against it).
    ``throttle_s`` spaces progress writes; ``heartbeat_s`` and ``stale_s`` tune restart detection.
    """

    def __init__(
        self,
        store: JobStore,
        kinds: Iterable[JobKind] = (),
        *,
        max_workers: int = 1,
        max_queued: int | None = None,
        throttle_s: float = 0.5,
        heartbeat_s: float = 5.0,
        stale_s: float = 60.0,
        retention_s: float | None = None,
        prune_every_s: float = 60.0,
        housekeeping: Callable[[], None] | None = None,
    ) -> None:
        if max_workers < 1:
            raise InvalidInput(f"max_workers must be at least 1, got {max_workers}")
        self.store = store
        self.owner = owner_token()
        self.max_workers = max_workers
        self.max_queued = max_queued
        self.throttle_s = throttle_s
        self.heartbeat_s = heartbeat_s
        self.stale_s = stale_s
        self.retention_s = retention_s or None
        self.prune_every_s = prune_every_s
        self.housekeeping = housekeeping
        self._last_prune = -float("inf")
        self._cancelled: set[str] = set()
        self._kinds: dict[str, JobKind] = {}
        for kind in kinds:
            self.register(kind)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="emolens-job")
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._closed = False

    def register(self, kind: JobKind) -> None:
        """Add a kind of job (before :meth:`start`, so queued jobs of that kind can be resumed)."""
        self._kinds[kind.name] = kind

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def start(self) -> Recovery:
        """Take over abandoned jobs, then keep a heartbeat (and look for abandoned jobs) in the background."""
        recovery = self.recover()
        if recovery.failed or recovery.resumed:
            log.warning(
                "jobs left by a stopped server: %d marked failed, %d resumed", recovery.failed, recovery.resumed
            )
        self._maybe_prune()
        if self._beat is None:
            self._beat = threading.Thread(target=self._beat_loop, name="emolens-job-heartbeat", daemon=True)
            self._beat.start()
        return recovery

    def submit(self, kind: str, params: Mapping[str, Any] | None = None, *, client: str | None = None) -> JobRecord:
        """Record a queued job for ``client`` and schedule it; returns its record at once."""
        if kind not in self._kinds:
            raise InvalidInput(f"unknown job kind {kind!r}; this server runs {', '.join(self._kinds) or 'none'}")
        if self._closed:
            raise JobStoreError("the job runner is shut down")
        if self.max_queued is not None and self.waiting() >= self.max_queued:
            raise JobQueueFull(f"{self.waiting()} jobs are already waiting (the limit is {self.max_queued})")
        record = self.store.create(kind, params, owner=self.owner, client=client)
        self._enqueue(record.id)
        return record

    def waiting(self) -> int:
        """Jobs of this runner not yet finished (queued or running in this process)."""
        with self._lock:
            return sum(1 for f in self._futures.values() if not f.done())

    def _enqueue(self, job_id: str) -> None:
        with self._lock:
            try:
                self._futures[job_id] = future = self._pool.submit(self._run, job_id)
            except RuntimeError:  # shut down meanwhile: the job stays queued for the next server
                return
        future.add_done_callback(lambda _f: self._forget(job_id))

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._futures.pop(job_id, None)

    def _run(self, job_id: str) -> None:
        if self._stop.is_set() or not self.store.start(job_id, self.owner):
            return  # shutting down (the job stays queued for the next server), or no longer ours
        record = self.store.get(job_id)
        kind = self._kinds[record.kind]
        final = self._outcome(kind, record)
        # clean up before the final state is written: a client that sees the job ended finds
        # its upload gone and, for a failed job, no partial files
        self._cleanup(kind, final)
        if final.state.has_result:
            self.store.succeed(job_id, final.result, final.files, warnings=final.warnings)
        else:
            self.store.fail(job_id, final.error or "the job failed", final.error_type or "JobError")
        with self._lock:
            cancelled = job_id in self._cancelled
            self._cancelled.discard(job_id)
        if cancelled:
            self._remove(job_id)

    def _outcome(self, kind: JobKind, record: JobRecord) -> JobRecord:
        """Run the job function; the record as it ended (not yet stored)."""
        ctx: JobContext | None = None
        try:
            ctx = JobContext(self.store, record, self._stop, self.throttle_s, lambda: record.id in self._cancelled)
            result = kind.run(ctx)
            files = tuple(list_files(ctx.out_dir))
            warnings = tuple(ctx.all_warnings())
            if warnings:
                result = {**(result or {}), "warnings": list(warnings)}
            state = JobState.PARTIAL if warnings else JobState.SUCCEEDED
            return replace(record, state=state, result=result, files=files, warnings=warnings)
        except JobInterrupted as e:
            error, error_type = (CANCELLED, "JobCancelled") if str(e) == CANCELLED else (SHUT_DOWN, "ServerShutDown")
        except EmolensError as e:
            error, error_type = str(e) or type(e).__name__, type(e).__name__
        except OSError as e:  # a full or read-only disk under the job's outputs: say so, name no server path
            from ..fsio import reason

            log.warning("job %s (%s) failed on a file: %s", record.id, record.kind, e)
            error, error_type = f"a file of the job could not be written or read: {reason(e)}", "OutputError"
        except Exception as e:
            log.exception("job %s (%s) failed unexpectedly", record.id, record.kind)
            error, error_type = f"the job failed unexpectedly ({type(e).__name__}); see the server log", "InternalError"
        finally:
            self._flush(ctx)  # the last progress held back (a failed job shows how far it got)
        return replace(record, state=JobState.FAILED, error=error, error_type=error_type)

    def _flush(self, ctx: JobContext | None) -> None:
        if ctx is not None and ctx.pending:
            try:
                ctx.flush()
            except JobStoreError as e:
                log.warning("could not record the last progress of job %s: %s", ctx.job_id, e)

    def _cleanup(self, kind: JobKind | None, record: JobRecord) -> None:
        """After a job ended: delete a failed job's partial files, run its kind's cleanup."""
        try:
            if record.state is JobState.FAILED:
                shutil.rmtree(self.store.job_dir(record.id), ignore_errors=True)
            if kind is not None and kind.cleanup is not None:
                kind.cleanup(record)
        except Exception:
            log.exception("cleanup of job %s failed", record.id)

    def recover(self) -> Recovery:
        """Fail the running jobs and take over the queued jobs of dead owners (see the module doc)."""
        failed = resumed = 0
        now = time.time()
        for job in self.store.active():
            if job.owner == self.owner or owner_alive(job.owner, job.heartbeat_at, self.stale_s, now):
                continue
            kind = self._kinds.get(job.kind)
            if job.state is JobState.RUNNING:
                if self.store.fail(job.id, RESTARTED, "ServerRestarted", states=(JobState.RUNNING,), owner=job.owner):
                    failed += 1
                    self._cleanup(kind, self.store.get(job.id))
            elif kind is None:
                reason = f"no server here runs jobs of kind {job.kind!r}"
                if self.store.fail(job.id, reason, "UnknownJobKind", states=(JobState.QUEUED,), owner=job.owner):
                    failed += 1
            elif not self._stop.is_set() and self.store.claim(job.id, self.owner, job.owner):
                resumed += 1
                self._enqueue(job.id)
        return Recovery(failed, resumed)

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.store.heartbeat(self.owner)
                self.recover()
                self._maybe_prune()
            except JobStoreError as e:
                log.warning("job heartbeat failed: %s", e)

    # -- deleting ---------------------------------------------------------------------------------

    def _remove(self, job_id: str) -> None:
        """Delete a finished job's record, then its folder."""
        self.store.delete(job_id)
        shutil.rmtree(self.store.job_dir(job_id), ignore_errors=True)

    def delete(self, job_id: str) -> JobState:
        """Delete a job: a finished one now (record and files); a queued one is cancelled and deleted
        now; a running one is cancelled and deleted once it has stopped. Returns the state it had."""
        record = self.store.get(job_id)
        if record.finished:
            self._remove(job_id)
        elif record.state is JobState.QUEUED and self.store.fail(job_id, CANCELLED, "JobCancelled",
                                                                 states=(JobState.QUEUED,)):
            self._cleanup(self._kinds.get(record.kind), self.store.get(job_id))
            self._remove(job_id)
        else:  # running (or it just started): stop it at its next report; _run deletes it
            with self._lock:
                self._cancelled.add(job_id)
            if self.store.get(job_id).finished:  # it ended meanwhile: _run may have missed the flag
                with self._lock:
                    self._cancelled.discard(job_id)
                self._remove(job_id)
        return record.state

    def prune(self, retention_s: float, now: float | None = None) -> int:
        """Delete the jobs that finished more than ``retention_s`` seconds ago; returns how many."""
        cutoff = (time.time() if now is None else now) - retention_s
        removed = 0
        while ids := self.store.finished_before(cutoff):
            for job_id in ids:
                self._remove(job_id)
                removed += 1
        return removed

    def _maybe_prune(self) -> None:
        if self.retention_s is None or time.monotonic() - self._last_prune < self.prune_every_s:
            return
        self._last_prune = time.monotonic()
        removed = self.prune(self.retention_s)
        if removed:
            log.info("deleted %d jobs that ended more than %.0f s ago", removed, self.retention_s)
        if self.housekeeping is not None:
            try:
                self.housekeeping()
            except OSError as e:
                log.warning("job housekeeping failed: %s", e)

    def wait_for(self, job_id: str, timeout: float = 60.0, poll_s: float = 0.02) -> JobRecord:
        """The job's record once it has finished, or as it stands after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.store.get(job_id)
            if record.finished or time.monotonic() >= deadline:
                return record
            time.sleep(poll_s)

    def close(self, timeout: float = 10.0) -> None:
        """Stop: interrupt running jobs (waiting up to ``timeout`` s for them to notice) and hand the
        queued ones over to the next server. The store stays open (its owner closes it)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            running = list(self._futures.values())
        _done, not_done = wait_futures(running, timeout=timeout)
        if not_done:
            log.warning(
                "%d jobs did not stop within %.0f s; the next server will mark them failed", len(not_done), timeout
            )
        if self._beat is not None:
            self._beat.join(timeout=timeout)
        try:
            self.store.release(self.owner)
        except JobStoreError as e:
            log.warning("could not hand over queued jobs: %s", e)
