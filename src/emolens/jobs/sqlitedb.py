"""One SQLite file shared by the threads of a process: the job store's and the study store's database.

WAL journal (readers never wait for the writer), a busy timeout for other processes, autocommit
(``isolation_level=None``: each statement commits unless a ``BEGIN`` opens a transaction), one lock
around the connection, and every SQLite or file-system error raised as the named
:class:`~emolens.jobs.models.JobStoreError` (HTTP 500), naming the database.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .models import JobStoreError

BUSY_TIMEOUT_MS = 10_000


class SqliteDb:
    """``path`` opened (its folder created), ``schema`` applied, then ``migrate(connection)`` when given.
    ``what`` names the database in errors ("jobs", "studies")."""

    def __init__(self, path: Path, what: str, schema: str, *, synchronous_normal: bool = False,
                 migrate: Callable[[sqlite3.Connection], None] | None = None) -> None:
        self.path, self.what = path, what
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            if synchronous_normal:  # WAL + NORMAL: durable at checkpoints, never corrupt
                self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.executescript(schema)
            if migrate is not None:
                migrate(self._conn)
        except (OSError, sqlite3.Error) as e:
            raise JobStoreError(f"cannot open the {what} database {path}: {e}") from e
        self._closed = False

    def close(self) -> None:
        """Close the database (later use raises JobStoreError). Closing twice is fine."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; SQLite errors inside become JobStoreError."""
        with self._lock:
            if self._closed:
                raise JobStoreError(f"the {self.what} database {self.path} is closed")
            try:
                yield self._conn
            except sqlite3.Error as e:
                raise JobStoreError(f"{self.what} database {self.path}: {e}") from e
