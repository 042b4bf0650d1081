"""The study store: one SQLite database (stdlib ``sqlite3``, WAL) and one folder per study.

    root/studies.sqlite3                    studies, ads, sessions
    root/<study>/ads/<ad id><suffix>        the ad videos as uploaded
    root/<study>/sessions/<session>.webm    a viewer's webcam recording (deleted after analysis
                                            unless the study keeps recordings)
    root/<study>/frames/<viewer>/<ad>.*     the analysis of one viewer and ad: ``.parquet`` frame
                                            table in ad time, or ``.error.txt`` with the reason

Ids are random hex; the viewer token is ``secrets.token_urlsafe(24)`` (192 bits) and so is each
session id (the viewer page's only credential for its own session). Like the job store, one
connection is shared by the threads of a process behind a lock, and several processes may open
the same folder.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import EllipsisType
from typing import Any

from ..jobs.sqlitedb import SqliteDb
from .models import Question, Session, SessionNotFound, SessionState, Study, StudyAd, StudyNotFound

DB_NAME = "studies.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL, token TEXT NOT NULL UNIQUE,
    order_mode TEXT NOT NULL, keep_recordings INTEGER NOT NULL, retention_days INTEGER NOT NULL,
    closes_at REAL, questions TEXT NOT NULL, options TEXT NOT NULL, viewer_seq INTEGER NOT NULL DEFAULT 0,
    report_job TEXT, report_viewers INTEGER NOT NULL DEFAULT 0, client TEXT
);
CREATE TABLE IF NOT EXISTS ads (
    id TEXT PRIMARY KEY, study_id TEXT NOT NULL, position INTEGER NOT NULL, name TEXT NOT NULL,
    file TEXT NOT NULL, media_type TEXT NOT NULL, duration_s REAL NOT NULL, width INTEGER NOT NULL,
    height INTEGER NOT NULL, bytes INTEGER NOT NULL, UNIQUE (study_id, name)
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, study_id TEXT NOT NULL, viewer TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, state TEXT NOT NULL, answers TEXT NOT NULL, ad_order TEXT NOT NULL,
    received INTEGER NOT NULL DEFAULT 0, mime TEXT, timing TEXT, job_id TEXT, reason TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_study ON sessions (study_id, created_at);
CREATE INDEX IF NOT EXISTS ads_by_study ON ads (study_id, position);
"""

_STUDY_COLS = ("id, name, created_at, token, order_mode, keep_recordings, retention_days, closes_at, questions, "
               "options, report_job, report_viewers, client")
_AD_COLS = "id, study_id, position, name, file, media_type, duration_s, width, height, bytes"
_SESSION_COLS = ("id, study_id, viewer, created_at, updated_at, state, answers, ad_order, received, mime, timing, "
                 "job_id, reason")


def _study(row: Sequence[Any], ads: tuple[StudyAd, ...]) -> Study:
    (id_, name, created, token, order, keep, retention, closes, questions, options, report_job, report_viewers,
     client) = row
    qs = tuple(Question(q["key"], q["label"], tuple(q.get("choices") or ()), bool(q.get("required")))
               for q in json.loads(questions))
    return Study(id_, name, created, token, order, bool(keep), int(retention), closes, qs, json.loads(options),
                 report_job, int(report_viewers), ads, client)


def _ad(row: Sequence[Any]) -> StudyAd:
    id_, study, position, name, file, media_type, duration, width, height, size = row
    return StudyAd(id_, study, int(position), name, file, media_type, float(duration), int(width), int(height),
                   int(size))


def _session(row: Sequence[Any]) -> Session:
    (id_, study, viewer, created, updated, state, answers, order, received, mime, timing, job, reason) = row
    return Session(id_, study, viewer, created, updated, SessionState(state), json.loads(answers),
                   tuple(json.loads(order)), int(received), mime, None if timing is None else json.loads(timing),
                   job, reason)


class StudyStore:
    """Studies, ads and sessions under ``root`` (created when missing); thread-safe.

    Raises :class:`~emolens.jobs.models.JobStoreError` (HTTP 500) when the database cannot be
    opened or written."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()
        self.path = self.root / DB_NAME
        self._sql = SqliteDb(self.path, "studies", _SCHEMA)

    def close(self) -> None:
        self._sql.close()

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._sql.connection()

    # -- folders ------------------------------------------------------------------------------

    def study_dir(self, study_id: str) -> Path:
        return self.root / study_id

    def recording_path(self, study_id: str, session_id: str) -> Path:
        return self.study_dir(study_id) / "sessions" / f"{session_id}.webm"

    def frames_dir(self, study_id: str, viewer: str) -> Path:
        """Where the analyses of one viewer lie (named by viewer id: session ids are secrets)."""
        return self.study_dir(study_id) / "frames" / viewer

    # -- studies ------------------------------------------------------------------------------

    def create_study(self, name: str, *, order: str, keep_recordings: bool, retention_days: int,
                     closes_at: float | None, questions: Sequence[Question], options: Mapping[str, Any],
                     client: str | None = None) -> Study:
        study_id = uuid.uuid4().hex
        with self._db() as db:
            db.execute(
                f"INSERT INTO studies ({_STUDY_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (study_id, name, time.time(), secrets.token_urlsafe(24), order, int(keep_recordings),
                 int(retention_days), closes_at, json.dumps([q.to_dict() for q in questions]),
                 json.dumps(dict(options)), None, 0, client),
            )
        self.study_dir(study_id).mkdir(parents=True, exist_ok=True)
        return self.get(study_id)

    def _ads(self, db: sqlite3.Connection, study_id: str) -> tuple[StudyAd, ...]:
        rows = db.execute(f"SELECT {_AD_COLS} FROM ads WHERE study_id = ? ORDER BY position", (study_id,)).fetchall()
        return tuple(_ad(r) for r in rows)

    def get(self, study_id: str, *, client: str | EllipsisType | None = ...) -> Study:
        """The study ``study_id`` with its ads; :class:`StudyNotFound` when there is none, or when
        ``client`` is given and the study is another client's (the same answer)."""
        with self._db() as db:
            row = db.execute(f"SELECT {_STUDY_COLS} FROM studies WHERE id = ?", (study_id,)).fetchone()
            if row is None or (client is not ... and row[-1] != client):
                raise StudyNotFound(f"no study with id {study_id[:64]!r}")
            return _study(row, self._ads(db, study_id))

    def by_token(self, token: str) -> Study:
        """The study whose viewer link carries ``token`` (an indexed lookup: with 192 random bits a
        timing difference tells an attacker nothing usable)."""
        with self._db() as db:
            row = db.execute("SELECT id FROM studies WHERE token = ?", (token[:100],)).fetchone()
        if row is None:
            raise StudyNotFound("this viewer link is not valid: the study does not exist or was deleted")
        return self.get(row[0])

    def list_studies(self, *, client: str | EllipsisType | None = ...) -> list[Study]:
        """Every study (of ``client`` when given), newest first."""
        where, args = ("", []) if client is ... else (" WHERE client IS ?", [client])
        with self._db() as db:
            ids = [r[0] for r in db.execute(f"SELECT id FROM studies{where} ORDER BY created_at DESC, id",
                                            args).fetchall()]
        return [self.get(i) for i in ids]

    def set_report(self, study_id: str, job_id: str, viewers: int) -> bool:
        """Make ``job_id`` the study's report if it covers at least as many viewers as the current one."""
        with self._db() as db:
            return db.execute("UPDATE studies SET report_job = ?, report_viewers = ? WHERE id = ? AND "
                              "report_viewers <= ?", (job_id, viewers, study_id, viewers)).rowcount > 0

    def delete_study(self, study_id: str) -> list[str]:
        """Delete the study, its ads, sessions and files; returns the ids of its analysis jobs."""
        self.get(study_id)
        with self._db() as db:
            jobs = [r[0] for r in db.execute("SELECT job_id FROM sessions WHERE study_id = ? AND job_id IS NOT NULL",
                                             (study_id,)).fetchall()]
            db.execute("DELETE FROM sessions WHERE study_id = ?", (study_id,))
            db.execute("DELETE FROM ads WHERE study_id = ?", (study_id,))
            db.execute("DELETE FROM studies WHERE id = ?", (study_id,))
        shutil.rmtree(self.study_dir(study_id), ignore_errors=True)
        return jobs

    # -- ads ----------------------------------------------------------------------------------

    def add_ad(self, study_id: str, ad_id: str, name: str, file: str, media_type: str, duration_s: float,
               width: int, height: int, size: int) -> StudyAd:
        """Record an ad whose file already lies at ``study_dir/file``; :class:`InvalidInput` for a taken name."""
        from ..errors import InvalidInput

        with self._db() as db:
            if db.execute("SELECT 1 FROM ads WHERE study_id = ? AND name = ?", (study_id, name)).fetchone():
                raise InvalidInput(f"the study already has an ad named {name!r}")
            pos = db.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM ads WHERE study_id = ?",
                             (study_id,)).fetchone()[0]
            db.execute(f"INSERT INTO ads ({_AD_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (ad_id, study_id, pos, name, file, media_type, duration_s, width, height, size))
        ad = self.get(study_id).ad(ad_id)
        assert ad is not None
        return ad

    # -- sessions -----------------------------------------------------------------------------

    def create_session(self, study_id: str, answers: Mapping[str, str], ad_order: Sequence[str]) -> Session:
        """A new session with the next viewer id of the study (``v001``, ``v002`` ...)."""
        session_id = secrets.token_urlsafe(24)
        now = time.time()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("UPDATE studies SET viewer_seq = viewer_seq + 1 WHERE id = ?", (study_id,))
                seq = db.execute("SELECT viewer_seq FROM studies WHERE id = ?", (study_id,)).fetchone()[0]
                db.execute(f"INSERT INTO sessions ({_SESSION_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           (session_id, study_id, f"v{seq:03d}", now, now, SessionState.CONSENTED.value,
                            json.dumps(dict(answers)), json.dumps(list(ad_order)), 0, None, None, None, None))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return self.session(study_id, session_id)

    def session(self, study_id: str, session_id: str) -> Session:
        with self._db() as db:
            row = db.execute(f"SELECT {_SESSION_COLS} FROM sessions WHERE id = ? AND study_id = ?",
                             (session_id, study_id)).fetchone()
        if row is None:
            raise SessionNotFound("no such session in this study (it may have been deleted)")
        return _session(row)

    def sessions(self, study_id: str) -> list[Session]:
        """The study's sessions, oldest first."""
        with self._db() as db:
            rows = db.execute(f"SELECT {_SESSION_COLS} FROM sessions WHERE study_id = ? ORDER BY created_at, viewer",
                              (study_id,)).fetchall()
        return [_session(r) for r in rows]

    def update_session(self, study_id: str, session_id: str, *, expect: Sequence[SessionState] | None = None,
                       **fields: Any) -> bool:
        """Set ``fields`` (state, received, mime, timing, job_id, reason, answers) if the session is in one of
        ``expect`` (any state when None); True if it took effect."""
        sets: list[str] = ["updated_at = ?"]
        args: list[Any] = [time.time()]
        for key, value in fields.items():
            if key not in ("state", "received", "mime", "timing", "job_id", "reason", "answers"):
                raise ValueError(key)
            sets.append(f"{key} = ?")
            if isinstance(value, SessionState):
                value = value.value
            elif key in ("timing", "answers") and value is not None:
                value = json.dumps(value)
            args.append(value)
        sql = f"UPDATE sessions SET {', '.join(sets)} WHERE id = ? AND study_id = ?"
        args += [session_id, study_id]
        if expect is not None:
            sql += f" AND state IN ({','.join('?' for _ in expect)})"
            args += [s.value for s in expect]
        with self._db() as db:
            return db.execute(sql, args).rowcount > 0
