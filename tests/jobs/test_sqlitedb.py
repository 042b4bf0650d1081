"""SqliteDb: the shared opening of the job and study databases, its lock and its named errors."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from emolens.jobs.models import JobStoreError
from emolens.jobs.sqlitedb import SqliteDb

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL);"


def test_opens_migrates_and_serialises_threads(tmp_path: Path):
    seen = []
    db = SqliteDb(tmp_path / "sub" / "x.sqlite3", "things", SCHEMA, migrate=lambda c: seen.append(c))
    assert (tmp_path / "sub" / "x.sqlite3").is_file() and len(seen) == 1

    def add(n: int) -> None:
        for i in range(50):
            with db.connection() as c:
                c.execute("INSERT INTO t (v) VALUES (?)", (f"{n}-{i}",))

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.connection() as c:
        assert c.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 200
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    db.close()  # twice is fine
    with pytest.raises(JobStoreError, match=r"the things database .* is closed"), db.connection():
        pass


def test_sqlite_errors_are_named(tmp_path: Path):
    bad = tmp_path / "x.sqlite3"
    bad.write_bytes(b"this is not a database, just text" * 100)
    with pytest.raises(JobStoreError, match="cannot open the things database"):
        SqliteDb(bad, "things", SCHEMA)
    db = SqliteDb(tmp_path / "ok.sqlite3", "things", SCHEMA)
    with pytest.raises(JobStoreError, match=r"things database .*: NOT NULL constraint"), db.connection() as c:
        c.execute("INSERT INTO t (v) VALUES (NULL)")
    db.close()
