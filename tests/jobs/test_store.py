"""The SQLite job store: records, state changes that cannot race, threads, reopening (restart)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from emolens.jobs.models import JobNotFound, JobState, JobStoreError
from emolens.jobs.store import DB_NAME, JobStore, default_jobs_dir


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[JobStore]:
    with JobStore(tmp_path / "jobs") as s:
        yield s


def test_create_then_get_returns_the_same_job(store: JobStore) -> None:
    job = store.create("video", {"source": "a.mp4", "options": {"every": 3}}, owner="me")
    assert len(job.id) == 32 and job.kind == "video" and job.state is JobState.QUEUED
    assert job.params == {"source": "a.mp4", "options": {"every": 3}}
    assert (job.progress, job.started_at, job.finished_at, job.result, job.files, job.error) == (
        0.0, None, None, None, (), None,
    )  # fmt: skip
    assert job.owner == "me" and job.created_at > 0
    assert store.get(job.id) == job
    assert store.job_dir(job.id) == store.root / "results" / job.id
    assert (store.root / DB_NAME).is_file()


def test_unknown_id_raises_job_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFound, match="no job with id 'nope'"):
        store.get("nope")
    assert JobNotFound.http_status == 404


def test_values_are_stored_as_strict_json(store: JobStore) -> None:
    job = store.create("k", {"nan": math.nan, "np": np.float32(0.5), "path": Path("/x"), "t": (1, 2)})
    assert store.get(job.id).params == {"nan": None, "np": 0.5, "path": "/x", "t": [1, 2]}
    with pytest.raises(TypeError, match="object is not a JSON value"):
        store.create("k", {"bad": object()})


def test_a_job_moves_queued_running_succeeded_once(store: JobStore) -> None:
    job = store.create("k", owner="a")
    assert not store.start(job.id, "b")  # not its owner
    assert store.start(job.id, "a")
    assert not store.start(job.id, "a")  # already running
    assert store.report(job.id, progress=1.7, message="half", details={"frames_done": 5})
    got = store.get(job.id)
    assert (got.state, got.progress, got.message, got.details) == (JobState.RUNNING, 1.0, "half", {"frames_done": 5})
    assert store.report(job.id, progress=-1.0) and store.get(job.id).progress == 0.0
    assert store.report(job.id, progress=math.nan) and store.get(job.id).progress == 0.0  # NaN ignored
    assert store.succeed(job.id, {"n": 3}, ["frames.csv", "plots/a.png"])
    done = store.get(job.id)
    assert done.state is JobState.SUCCEEDED and done.finished and done.progress == 1.0
    assert done.result == {"n": 3} and done.files == ("frames.csv", "plots/a.png")
    assert done.owner is None and done.finished_at is not None and done.started_at is not None
    # a finished job changes no more
    assert not store.report(job.id, progress=0.2)
    assert not store.fail(job.id, "late")
    assert not store.succeed(job.id, {"n": 4})
    assert store.get(job.id) == done


def test_fail_records_the_reason_and_respects_the_owner(store: JobStore) -> None:
    job = store.create("k", owner="a")
    store.start(job.id, "a")
    assert not store.fail(job.id, "x", owner="b")
    assert not store.fail(job.id, "x", states=(JobState.QUEUED,))
    assert store.fail(job.id, "video.mp4: cannot decode frame 12", "UnsupportedMedia", owner="a")
    got = store.get(job.id)
    assert (got.state, got.error, got.error_type, got.owner) == (
        JobState.FAILED, "video.mp4: cannot decode frame 12", "UnsupportedMedia", None,
    )  # fmt: skip


def test_claim_heartbeat_and_release(store: JobStore) -> None:
    a = store.create("k", owner="dead")
    assert not store.claim(a.id, "me", previous="someone-else")
    assert store.claim(a.id, "me", previous="dead")
    assert store.get(a.id).owner == "me"
    b = store.create("k", owner="me")
    store.start(b.id, "me")
    assert store.heartbeat("me") == 2
    assert store.release("me") == 1  # only the queued one is let go
    assert store.get(a.id).owner is None and store.get(b.id).owner == "me"
    assert [j.id for j in store.active()] == [a.id, b.id]


def test_list_pages_newest_first_and_filters(store: JobStore) -> None:
    ids = [store.create("video" if i % 2 else "campaign").id for i in range(7)]
    store.start(ids[0], None)
    assert [j.id for j in store.list_jobs(limit=3)] == ids[::-1][:3]
    assert [j.id for j in store.list_jobs(limit=3, offset=3)] == ids[::-1][3:6]
    assert [j.id for j in store.list_jobs(limit=3, offset=6)] == [ids[0]]
    assert store.list_jobs(limit=3, offset=7) == []
    assert store.count() == 7 and store.count(kind="video") == 3
    assert [j.id for j in store.list_jobs(kind="campaign", state=JobState.RUNNING)] == [ids[0]]
    assert store.count(state=JobState.QUEUED) == 6


def test_concurrent_updates_from_threads(store: JobStore) -> None:
    def work(n: int) -> None:
        for i in range(15):
            job = store.create("k", {"thread": n, "i": i}, owner=f"t{n}")
            assert store.start(job.id, f"t{n}")
            for step in range(4):
                store.report(job.id, progress=step / 4, details={"step": step})
            store.succeed(job.id, {"thread": n, "i": i})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    jobs = store.list_jobs(limit=1000)
    assert len(jobs) == 90 and store.count(state=JobState.SUCCEEDED) == 90
    assert sorted((j.result or {})["thread"] * 100 + (j.result or {})["i"] for j in jobs) == sorted(
        n * 100 + i for n in range(6) for i in range(15)
    )
    assert all(j.details == {"step": 3} for j in jobs)


def test_two_connections_on_one_folder_see_each_other(tmp_path: Path) -> None:
    with JobStore(tmp_path) as a, JobStore(tmp_path) as b:  # two processes would do the same
        job = a.create("k", owner="a")
        a.start(job.id, "a")
        assert b.get(job.id).state is JobState.RUNNING
        assert b.fail(job.id, "from b")
        assert a.get(job.id).error == "from b"


def test_reopening_after_close_keeps_every_job(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    done = store.create("k", {"a": 1})
    store.start(done.id, None)
    store.succeed(done.id, {"ok": True}, ["x.csv"])
    running = store.create("k", owner="gone")
    store.start(running.id, "gone")
    store.report(running.id, progress=0.25)
    before = {j.id: j for j in store.list_jobs()}
    store.close()
    store.close()  # twice is fine
    with pytest.raises(JobStoreError, match="is closed"):
        store.get(done.id)
    with JobStore(tmp_path) as again:
        assert {j.id: j for j in again.list_jobs()} == before
        assert again.get(running.id).state is JobState.RUNNING  # the runner decides what this means


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite " * 100)
    with pytest.raises(JobStoreError, match=DB_NAME):
        JobStore(tmp_path)


def test_default_jobs_dir_follows_emolens_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EMOLENS_CACHE", str(tmp_path))
    assert default_jobs_dir() == tmp_path / "jobs"
    monkeypatch.delenv("EMOLENS_CACHE")
    assert default_jobs_dir() == Path.home() / ".cache" / "emolens" / "jobs"
