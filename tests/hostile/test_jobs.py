"""The job system under hostile use: a store written by an older emolens, a job deleted while it
runs or waits, warnings that never grow without bound (issue 16, items 7 and 9)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from emolens.jobs.models import JobState
from emolens.jobs.runner import CANCELLED, MAX_WARNINGS, JobContext, JobKind, JobRunner
from emolens.jobs.store import JobStore

V1_SCHEMA = """
CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, started_at REAL, finished_at REAL,
    params TEXT NOT NULL DEFAULT '{}', details TEXT NOT NULL DEFAULT '{}', result TEXT,
    files TEXT NOT NULL DEFAULT '[]', error TEXT, error_type TEXT, owner TEXT, heartbeat_at REAL);
INSERT INTO jobs (id, kind, state, created_at, finished_at, result) VALUES ('old', 'video', 'succeeded', 1, 2, '{}');
"""


def test_a_store_from_before_clients_and_warnings_opens_and_its_jobs_stay_public(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "jobs.sqlite3")
    con.executescript(V1_SCHEMA)
    con.close()
    with JobStore(tmp_path) as store:
        old = store.get("old", client="public")
        assert old.client is None and old.warnings == () and old.state is JobState.SUCCEEDED
        assert store.count(client="public") == 1 and store.count(client="key-x") == 0
        new = store.create("video", client="key-x")
        assert store.get(new.id, client="key-x").client == "key-x"


def _runner(tmp_path: Path, run: Any) -> JobRunner:
    runner = JobRunner(JobStore(tmp_path), [JobKind("slow", run)], max_workers=1, throttle_s=0.0)
    runner.start()
    return runner


def test_deleting_a_running_job_cancels_it_then_removes_it(tmp_path: Path) -> None:
    started, seen_cancel = threading.Event(), threading.Event()

    def run(ctx: JobContext) -> dict[str, Any]:
        (ctx.out_dir / "partial.csv").write_text("a\n")
        started.set()
        for _ in range(2000):
            try:
                ctx.report(0.5, "working")
            except BaseException:
                seen_cancel.set()
                raise
            threading.Event().wait(0.01)
        return {}

    runner = _runner(tmp_path, run)
    try:
        running = runner.submit("slow", client="c")
        waiting = runner.submit("slow", client="c")
        assert started.wait(10)
        assert runner.delete(waiting.id) is JobState.QUEUED  # never ran: gone at once
        assert runner.store.count() == 1
        assert runner.delete(running.id) is JobState.RUNNING
        assert seen_cancel.wait(10)  # it stops at its next report, then its record and files go
        deadline = time.monotonic() + 10
        while runner.store.count() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        runner.close()
    assert runner.store.count() == 0
    assert not runner.store.job_dir(running.id).exists()
    runner.store.close()


def test_warnings_are_capped_and_counted(tmp_path: Path) -> None:
    def run(ctx: JobContext) -> dict[str, Any]:
        for i in range(10_000):
            ctx.warn(f"frame {i} could not be decoded " + "x" * 2000)
        return {"frames": 1}

    runner = _runner(tmp_path, run)
    try:
        job = runner.wait_for(runner.submit("slow").id, timeout=30)
    finally:
        runner.close()
    assert job.state is JobState.PARTIAL
    assert len(job.warnings) == MAX_WARNINGS + 1
    assert job.warnings[-1] == f"... and {10_000 - MAX_WARNINGS} more warnings"
    assert all(len(w) <= 500 for w in job.warnings) and job.result is not None and job.result["frames"] == 1
    assert CANCELLED not in job.warnings
    runner.store.close()


def test_a_job_failing_on_a_full_disk_names_the_reason_not_the_path(tmp_path: Path) -> None:
    import errno

    def run(ctx: JobContext) -> dict[str, Any]:
        raise OSError(errno.ENOSPC, "No space left on device", str(ctx.out_dir / "frames.csv"))

    runner = _runner(tmp_path, run)
    try:
        job = runner.wait_for(runner.submit("slow").id, timeout=30)
    finally:
        runner.close()
    assert job.state is JobState.FAILED and job.error_type == "OutputError"
    assert job.error is not None and "the disk is full" in job.error and str(tmp_path) not in job.error
    runner.store.close()
