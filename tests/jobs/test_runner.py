"""The job runner: bounded pool, results and failures recorded, restarts and shutdowns never lose a job."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emolens.errors import InvalidInput, UnsupportedMedia
from emolens.jobs.models import RESTARTED, SHUT_DOWN, JobRecord, JobState
from emolens.jobs.runner import (
    JobContext,
    JobKind,
    JobQueueFull,
    JobRunner,
    list_files,
    owner_alive,
)
from emolens.jobs.store import JobStore

WAIT = 30.0  # generous: only a hung runner takes this long


def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait until ``predicate()`` holds (a hang fails the test, slowness does not)."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def dead_owner() -> str:
    """The owner token of a process that has exited."""
    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return f"{socket.gethostname()}:{int(out.stdout)}:gone"


def orphan(store: JobStore, kind: str, state: JobState, params: dict[str, Any] | None = None) -> str:
    """A job left ``state`` by a server that died."""
    owner = dead_owner()
    job = store.create(kind, params, owner=owner)
    if state is JobState.RUNNING:
        assert store.start(job.id, owner)
    return job.id


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[JobStore]:
    with JobStore(tmp_path / "jobs") as s:
        yield s


@pytest.fixture()
def runners(store: JobStore) -> Iterator[Callable[..., JobRunner]]:
    made: list[JobRunner] = []

    def make(*kinds: JobKind, **kw: Any) -> JobRunner:
        runner = JobRunner(store, kinds, **kw)
        made.append(runner)
        return runner

    yield make
    for r in made:
        r.close(timeout=WAIT)


def writes_files(ctx: JobContext) -> dict[str, Any]:
    (ctx.out_dir / "frames.csv").write_text("a,b\n1,2\n")
    (ctx.out_dir / "plots").mkdir()
    (ctx.out_dir / "plots" / "track_1.png").write_bytes(b"png")
    ctx.report(0.5, "half way", frames_done=5)
    return {"n": ctx.params["n"] * 2}


def test_a_job_runs_and_records_result_and_files(store: JobStore, runners: Callable[..., JobRunner]) -> None:
    runner = runners(JobKind("double", writes_files))
    runner.start()
    job = runner.submit("double", {"n": 21})
    assert job.state is JobState.QUEUED
    done = runner.wait_for(job.id, WAIT)
    assert done.state is JobState.SUCCEEDED, done.error
    assert done.result == {"n": 42} and done.progress == 1.0
    assert done.files == ("frames.csv", "plots/track_1.png")
    assert done.details == {"frames_done": 5}
    assert done.started_at is not None and done.finished_at is not None
    assert done.created_at <= done.started_at <= done.finished_at


def test_failures_are_recorded_with_their_reason(store: JobStore, runners: Callable[..., JobRunner]) -> None:
    seen: list[JobRecord] = []

    def bad_media(ctx: JobContext) -> None:
        (ctx.out_dir / "partial.csv").write_text("x")
        raise UnsupportedMedia("clip.mp4: frame 40 cannot be decoded")

    def bug(ctx: JobContext) -> None:
        raise KeyError("secret server detail")

    runner = runners(JobKind("media", bad_media, cleanup=seen.append), JobKind("bug", bug))
    runner.start()
    media = runner.wait_for(runner.submit("media").id, WAIT)
    assert (media.state, media.error, media.error_type) == (
        JobState.FAILED, "clip.mp4: frame 40 cannot be decoded", "UnsupportedMedia",
    )  # fmt: skip
    assert media.files == () and not store.job_dir(media.id).exists()  # partial files are not kept
    until(lambda: len(seen) == 1, "the cleanup")
    assert seen[0].state is JobState.FAILED  # cleanup sees how the job ended
    crash = runner.wait_for(runner.submit("bug").id, WAIT)
    assert crash.state is JobState.FAILED and crash.error_type == "InternalError"
    assert "KeyError" in (crash.error or "") and "secret" not in (crash.error or "")


def test_unknown_kinds_are_refused(runners: Callable[..., JobRunner]) -> None:
    runner = runners(JobKind("a", writes_files))
    with pytest.raises(InvalidInput, match="unknown job kind 'b'; this server runs a"):
        runner.submit("b")
    with pytest.raises(InvalidInput, match="max_workers"):
        JobRunner(runner.store, max_workers=0)


def test_at_most_max_workers_jobs_run_at_once(store: JobStore, runners: Callable[..., JobRunner]) -> None:
    gate = threading.Event()
    lock = threading.Lock()
    running: list[int] = [0, 0]  # now, peak

    def slow(ctx: JobContext) -> None:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        try:
            assert gate.wait(WAIT)
        finally:
            with lock:
                running[0] -= 1

    runner = runners(JobKind("slow", slow), max_workers=2)
    runner.start()
    ids = [runner.submit("slow").id for _ in range(5)]
    until(lambda: running[0] == 2 and store.count(state=JobState.RUNNING) == 2, "two running jobs")
    assert store.count(state=JobState.QUEUED) == 3
    gate.set()
    assert all(runner.wait_for(i, WAIT).state is JobState.SUCCEEDED for i in ids)
    assert running[1] == 2


def test_a_full_queue_refuses_new_jobs(store: JobStore, runners: Callable[..., JobRunner]) -> None:
    gate = threading.Event()
    runner = runners(JobKind("wait", lambda ctx: {"ok": gate.wait(WAIT)}), max_queued=2)
    runner.start()
    first = runner.submit("wait")
    runner.submit("wait")
    with pytest.raises(JobQueueFull, match="limit is 2"):
        runner.submit("wait")
    gate.set()
    assert runner.wait_for(first.id, WAIT).state is JobState.SUCCEEDED


def test_progress_writes_are_throttled(store: JobStore, runners: Callable[..., JobRunner]) -> None:
    step = threading.Event()
    go_on = threading.Event()

    def reporting(ctx: JobContext) -> None:
        ctx.report(0.1, "first", frames_done=1)  # written: the first report always is
        ctx.report(0.2, "second", frames_done=2)  # within the throttle interval: kept for later
        step.set()
        assert go_on.wait(WAIT)
        ctx.report(None, "forced", force=True)  # written, with the latest details

    runner = runners(JobKind("r", reporting), throttle_s=3600.0)
    runner.start()
    job = runner.submit("r")
    assert step.wait(WAIT)
    mid = store.get(job.id)
    assert (mid.progress, mid.message, mid.details) == (0.1, "first", {"frames_done": 1})
    go_on.set()
    until(lambda: store.get(job.id).finished, "the job to end")
    assert runner.wait_for(job.id).state is JobState.SUCCEEDED


def test_on_start_orphans_are_failed_or_resumed(store: JobStore, runners: Callable[..., JobRunner]) -> None:
    cleaned: list[JobRecord] = []
    running_id = orphan(store, "double", JobState.RUNNING, {"n": 1})
    queued_id = orphan(store, "double", JobState.QUEUED, {"n": 5})
    stranger_id = orphan(store, "campaign", JobState.QUEUED)
    # a live server's jobs (fresh heartbeat, a process that exists) are left alone
    live = store.create("double", {"n": 1}, owner=f"{socket.gethostname()}:{os.getpid()}:other")
    store.start(live.id, live.owner)

    runner = runners(JobKind("double", writes_files, cleanup=cleaned.append))
    recovery = runner.start()
    assert (recovery.failed, recovery.resumed) == (2, 1)
    failed = store.get(running_id)
    assert (failed.state, failed.error, failed.error_type) == (JobState.FAILED, RESTARTED, "ServerRestarted")
    assert [r.id for r in cleaned][:1] == [running_id]
    resumed = runner.wait_for(queued_id, WAIT)
    assert resumed.state is JobState.SUCCEEDED and resumed.result == {"n": 10}
    stranger = store.get(stranger_id)
    assert stranger.state is JobState.FAILED and stranger.error_type == "UnknownJobKind"
    assert store.get(live.id).state is JobState.RUNNING
    assert runner.recover() == type(recovery)(0, 0)  # nothing left to do


def test_stale_heartbeats_count_as_dead() -> None:
    me = f"{socket.gethostname()}:{os.getpid()}:x"
    assert owner_alive(me, heartbeat_at=100.0, stale_s=60.0, now=150.0)
    assert not owner_alive(me, heartbeat_at=100.0, stale_s=60.0, now=170.0)
    assert not owner_alive(None, heartbeat_at=100.0, stale_s=60.0, now=100.0)
    assert not owner_alive(dead_owner(), heartbeat_at=100.0, stale_s=60.0, now=100.0)
    assert owner_alive("elsewhere:1:x", heartbeat_at=100.0, stale_s=60.0, now=100.0)


def test_a_running_server_picks_up_orphans_at_its_heartbeat(store: JobStore, runners: Callable[..., JobRunner]) -> None:
    runner = runners(JobKind("double", writes_files), heartbeat_s=0.05)
    runner.start()
    job_id = orphan(store, "double", JobState.QUEUED, {"n": 2})  # left by a worker that died just now
    until(lambda: store.get(job_id).finished, "the heartbeat to resume the orphan")
    assert store.get(job_id).result == {"n": 4}


def test_close_interrupts_running_jobs_and_hands_queued_ones_over(
    store: JobStore, runners: Callable[..., JobRunner]
) -> None:
    started = threading.Event()

    def endless(ctx: JobContext) -> None:
        started.set()
        while True:
            ctx.report(0.5)
            time.sleep(0.01)

    first = runners(JobKind("endless", endless), max_workers=1)
    first.start()
    running = first.submit("endless")
    queued = first.submit("endless", {"n": 3})
    assert started.wait(WAIT)
    first.close(timeout=WAIT)
    stopped = store.get(running.id)
    assert (stopped.state, stopped.error, stopped.error_type) == (JobState.FAILED, SHUT_DOWN, "ServerShutDown")
    waiting = store.get(queued.id)
    assert waiting.state is JobState.QUEUED and waiting.owner is None
    with pytest.raises(Exception, match="shut down"):
        first.submit("endless")

    second = runners(JobKind("endless", writes_files))
    assert second.start().resumed == 1
    assert second.wait_for(queued.id, WAIT).state is JobState.SUCCEEDED


CRASHING_SERVER = """
import os, sys, threading
from emolens.jobs import JobKind, JobRunner, JobStore
store = JobStore(sys.argv[1])
def hang(ctx):
    ctx.report(0.3, "working", force=True)
    print(ctx.job_id, flush=True)
    threading.Event().wait()
runner = JobRunner(store, [JobKind("hang", hang)])
runner.start()
runner.submit("hang")
sys.stdin.readline()
os._exit(1)  # die mid-job: no cleanup, no release
"""


def test_a_server_killed_mid_job_leaves_a_failed_job_not_a_lost_one(
    store: JobStore, runners: Callable[..., JobRunner]
) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", CRASHING_SERVER, str(store.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    job_id = server.stdout.readline().strip()
    assert store.get(job_id).state is JobState.RUNNING
    server.stdin.write("\n")
    server.stdin.flush()
    assert server.wait(WAIT) == 1
    assert store.get(job_id).state is JobState.RUNNING  # as the dead server left it

    runner = runners(JobKind("hang", writes_files))
    assert runner.start().failed == 1
    job = store.get(job_id)
    assert (job.state, job.error, job.progress) == (JobState.FAILED, RESTARTED, 0.3)


def test_list_files_skips_links_and_folders(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.png").write_bytes(b"x")
    (tmp_path / "link.csv").symlink_to(tmp_path / "a.csv")
    assert list_files(tmp_path) == ["a.csv", "sub/b.png"]
    assert list_files(tmp_path / "missing") == []
