"""The job store: one SQLite database (stdlib ``sqlite3``, WAL journal) under a jobs folder.

    jobs_dir/jobs.sqlite3        every job's record
    jobs_dir/results/<job id>/   the files each job wrote (:meth:`JobStore.job_dir`)

One connection is shared by the threads of a process behind a lock (every operation is a
statement or two); several processes (``emolens serve --workers N``) may open the same folder:
WAL lets readers and one writer work at once and a busy timeout makes writers wait their turn.
Keep the folder on a local disk: SQLite's locking does not hold on network file systems.

State changes that could race with another thread or process are compare-and-set updates
(``... WHERE state = ? AND owner IS ?``) that report whether they took effect.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import EllipsisType
from typing import Any

from .models import ACTIVE_STATES, FINISHED_STATES, PUBLIC_CLIENT, JobNotFound, JobRecord, JobState
from .sqlitedb import SqliteDb

DB_NAME = "jobs.sqlite3"
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    params TEXT NOT NULL DEFAULT '{}',
    details TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    files TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    error_type TEXT,
    owner TEXT,
    heartbeat_at REAL,
    client TEXT,
    warnings TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at DESC);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state);
"""
_ADDED_COLUMNS = {"client": "client TEXT", "warnings": "warnings TEXT NOT NULL DEFAULT '[]'"}  # since version 2

_COLUMNS = (
    "id, kind, state, progress, message, created_at, started_at, finished_at, params, details, result, files, "
    "error, error_type, owner, heartbeat_at, client, warnings"
)


def default_jobs_dir() -> Path:
    """``$EMOLENS_CACHE/jobs`` when that variable is set, else ``~/.cache/emolens/jobs``."""
    env = os.environ.get("EMOLENS_CACHE")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "emolens"
    return base / "jobs"


def _clean(value: Any) -> Any:
    """``value`` as strict JSON values: NaN and infinities become None, numpy scalars plain numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "item"):  # numpy scalar
        return _clean(value.item())
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _dumps(value: Any) -> str:
    return json.dumps(_clean(value), allow_nan=False, separators=(",", ":"))


def _record(row: Sequence[Any]) -> JobRecord:
    (id_, kind, state, progress, message, created, started, finished, params, details, result, files, error,
     error_type, owner, heartbeat, client, warnings) = row  # fmt: skip
    return JobRecord(
        id=id_,
        kind=kind,
        state=JobState(state),
        progress=float(progress),
        message=message,
        created_at=created,
        started_at=started,
        finished_at=finished,
        params=json.loads(params),
        details=json.loads(details),
        result=None if result is None else json.loads(result),
        files=tuple(json.loads(files)),
        error=error,
        error_type=error_type,
        owner=owner,
        heartbeat_at=heartbeat,
        client=client,
        warnings=tuple(json.loads(warnings or "[]")),
    )


def _migrate(conn: sqlite3.Connection) -> None:
    """Columns added since the first schema, for a store written by an older emolens."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    for name, column in _ADDED_COLUMNS.items():
        if name not in have:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {column}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class JobStore:
    """Persistent job records in ``root/jobs.sqlite3`` (the folder is created when missing).

    Raises :class:`JobStoreError` when the database cannot be opened (not a database, folder not
    writable). Thread-safe; close it with :meth:`close` (or use it as a context manager).
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()
        self.path = self.root / DB_NAME
        self._sql = SqliteDb(self.path, "jobs", _SCHEMA, synchronous_normal=True, migrate=_migrate)

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database (later calls raise :class:`JobStoreError`). Closing twice is fine."""
        self._sql.close()

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._sql.connection()

    def _update(self, sql: str, args: Sequence[Any]) -> bool:
        with self._db() as db:
            return db.execute(sql, args).rowcount > 0

    def job_dir(self, job_id: str) -> Path:
        """The folder for the files of job ``job_id`` (not created here)."""
        return self.root / "results" / job_id

    # -- create and read ---------------------------------------------------------------------

    def create(
        self, kind: str, params: Mapping[str, Any] | None = None, *, owner: str | None = None,
        client: str | None = None,
    ) -> JobRecord:
        """Record a new queued job of ``kind`` with JSON ``params`` for ``client``; returns it (with a fresh id)."""
        job_id = uuid.uuid4().hex
        now = time.time()
        with self._db() as db:
            db.execute(
                "INSERT INTO jobs (id, kind, state, created_at, params, owner, heartbeat_at, client) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (job_id, kind, JobState.QUEUED.value, now, _dumps(params or {}), owner, now, client),
            )
        return self.get(job_id)

    def get(self, job_id: str, *, client: str | EllipsisType | None = ...) -> JobRecord:
        """The job ``job_id``; :class:`JobNotFound` when there is none or, when ``client`` is given,
        when it belongs to another client (the same answer: a client cannot learn others' job ids)."""
        with self._db() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or (client is not ... and (row[-2] or PUBLIC_CLIENT) != client):
            raise JobNotFound(f"no job with id {job_id[:64]!r}")
        return _record(row)

    def delete(self, job_id: str) -> bool:
        """Forget the record of a finished job (its folder is the caller's to delete); True if it was."""
        marks = ",".join("?" for _ in FINISHED_STATES)
        return self._update(f"DELETE FROM jobs WHERE id = ? AND state IN ({marks})",
                            (job_id, *[s.value for s in FINISHED_STATES]))

    def finished_before(self, cutoff: float, limit: int = 1000) -> list[str]:
        """Ids of jobs that finished before ``cutoff`` (POSIX seconds), oldest first."""
        marks = ",".join("?" for _ in FINISHED_STATES)
        with self._db() as db:
            rows = db.execute(
                f"SELECT id FROM jobs WHERE state IN ({marks}) AND finished_at < ? ORDER BY finished_at LIMIT ?",
                (*[s.value for s in FINISHED_STATES], cutoff, limit),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def _where(
        self, kind: str | None, state: JobState | None, client: str | EllipsisType | None = ...
    ) -> tuple[str, list[Any]]:
        clauses, args = [], []
        if client is not ...:
            clauses.append("COALESCE(client, ?) = ?")
            args += [PUBLIC_CLIENT, client]
        if kind is not None:
            clauses.append("kind = ?")
            args.append(kind)
        if state is not None:
            clauses.append("state = ?")
            args.append(JobState(state).value)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def list_jobs(
        self, *, limit: int = 20, offset: int = 0, kind: str | None = None, state: JobState | None = None,
        client: str | EllipsisType | None = ...,
    ) -> list[JobRecord]:
        """Jobs, newest first, optionally of one ``kind``, ``state`` and/or ``client``; ``limit``/``offset`` page."""
        where, args = self._where(kind, state, client)
        with self._db() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM jobs{where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
                (*args, max(0, int(limit)), max(0, int(offset))),
            ).fetchall()
        return [_record(r) for r in rows]

    def count(
        self, *, kind: str | None = None, state: JobState | None = None, client: str | EllipsisType | None = ...
    ) -> int:
        """How many jobs :meth:`list_jobs` would page through."""
        where, args = self._where(kind, state, client)
        with self._db() as db:
            return int(db.execute(f"SELECT COUNT(*) FROM jobs{where}", args).fetchone()[0])

    def active(self) -> list[JobRecord]:
        """Every queued or running job, oldest first."""
        marks = ",".join("?" for _ in ACTIVE_STATES)
        with self._db() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE state IN ({marks}) ORDER BY created_at",
                [s.value for s in ACTIVE_STATES],
            ).fetchall()
        return [_record(r) for r in rows]

    # -- state changes -----------------------------------------------------------------------

    def start(self, job_id: str, owner: str | None) -> bool:
        """``queued -> running`` if the job is still queued and held by ``owner``; True if it was."""
        now = time.time()
        return self._update(
            "UPDATE jobs SET state = ?, started_at = ?, heartbeat_at = ? WHERE id = ? AND state = ? AND owner IS ?",
            (JobState.RUNNING.value, now, now, job_id, JobState.QUEUED.value, owner),
        )

    def report(
        self,
        job_id: str,
        *,
        progress: float | None = None,
        message: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record the progress of a running job (``progress`` clamped to 0..1; NaN ignored)."""
        sets: list[str] = ["heartbeat_at = ?"]
        args: list[Any] = [time.time()]
        if progress is not None and math.isfinite(progress):
            sets.append("progress = ?")
            args.append(min(1.0, max(0.0, float(progress))))
        if message is not None:
            sets.append("message = ?")
            args.append(str(message))
        if details is not None:
            sets.append("details = ?")
            args.append(_dumps(details))
        return self._update(
            f"UPDATE jobs SET {', '.join(sets)} WHERE id = ? AND state = ?", (*args, job_id, JobState.RUNNING.value)
        )

    def succeed(
        self, job_id: str, result: Mapping[str, Any] | None, files: Sequence[str] = (), message: str = "done",
        warnings: Sequence[str] = (),
    ) -> bool:
        """``running -> succeeded`` with the job's JSON ``result`` and the ``files`` it wrote; ``running ->
        partial`` instead when there are ``warnings`` (what the result is missing)."""
        state = JobState.PARTIAL if warnings else JobState.SUCCEEDED
        return self._update(
            "UPDATE jobs SET state = ?, progress = 1, message = ?, result = ?, files = ?, finished_at = ?, "
            "owner = NULL, warnings = ? WHERE id = ? AND state = ?",
            (
                state.value,
                "done, with parts missing" if warnings and message == "done" else message,
                None if result is None else _dumps(result),
                _dumps(list(files)),
                time.time(),
                _dumps(list(warnings)),
                job_id,
                JobState.RUNNING.value,
            ),
        )

    def fail(
        self,
        job_id: str,
        error: str,
        error_type: str = "JobError",
        *,
        states: Sequence[JobState] = ACTIVE_STATES,
        owner: str | EllipsisType | None = ...,
    ) -> bool:
        """Mark the job failed with a reason, if it is in one of ``states`` (and, when ``owner`` is
        given, still held by that owner: None means held by nobody). True if it took effect."""
        marks = ",".join("?" for _ in states)
        sql = (
            "UPDATE jobs SET state = ?, message = ?, error = ?, error_type = ?, finished_at = ?, owner = NULL "
            f"WHERE id = ? AND state IN ({marks})"
        )
        args: list[Any] = [JobState.FAILED.value, "failed", error, error_type, time.time(), job_id]
        args += [JobState(s).value for s in states]
        if owner is not ...:
            sql += " AND owner IS ?"
            args.append(owner)
        return self._update(sql, args)

    def claim(self, job_id: str, owner: str, previous: str | None) -> bool:
        """Take over a queued job from ``previous`` (a dead server, or None). True if it was taken."""
        return self._update(
            "UPDATE jobs SET owner = ?, heartbeat_at = ? WHERE id = ? AND state = ? AND owner IS ?",
            (owner, time.time(), job_id, JobState.QUEUED.value, previous),
        )

    def heartbeat(self, owner: str) -> int:
        """Mark every active job of ``owner`` as still looked after; returns how many there are."""
        marks = ",".join("?" for _ in ACTIVE_STATES)
        with self._db() as db:
            cur = db.execute(
                f"UPDATE jobs SET heartbeat_at = ? WHERE owner = ? AND state IN ({marks})",
                (time.time(), owner, *[s.value for s in ACTIVE_STATES]),
            )
            return cur.rowcount

    def release(self, owner: str) -> int:
        """Let go of ``owner``'s queued jobs (clean shutdown): the next server takes them over."""
        with self._db() as db:
            cur = db.execute(
                "UPDATE jobs SET owner = NULL WHERE owner = ? AND state = ?", (owner, JobState.QUEUED.value)
            )
            return cur.rowcount
