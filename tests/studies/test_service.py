"""Studies end to end below the HTTP layer: a real job runner analyses a real MediaRecorder WebM.

Covers the study store, chunked resumable uploads (resend, gap, limit), finishing with the page's
timing, the ``study`` job (analysis in ad time, raw recording deleted, report rebuilt over every
viewer), abandoned sessions, a truncated upload, a corrupt one, a non-video ad, retention.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from emolens.errors import InvalidInput, MediaTooLarge, UnsupportedMedia
from emolens.jobs.runner import JobRunner
from emolens.jobs.store import JobStore
from emolens.studies.models import (
    Question,
    SessionState,
    SessionStateError,
    StudyClosed,
    StudyNotFound,
    UploadOffsetMismatch,
)
from emolens.studies.service import StudyService
from emolens.studies.settings import StudySettings

from .fakes import WEBM, DecodingFake

FAST = {"bootstrap": 20, "sample_fps": 5.0}


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[tuple[StudyService, JobRunner, DecodingFake]]:
    fake = DecodingFake()
    store = JobStore(tmp_path / "jobs")
    holder: dict[str, JobRunner] = {}
    service = StudyService(tmp_path / "studies", StudySettings(max_session_bytes=200_000), lambda: holder["r"])
    runner = JobRunner(store, [service.job_kind(lambda _s: fake)], max_workers=1)
    holder["r"] = runner
    runner.start()
    yield service, runner, fake
    runner.close()
    store.close()
    service.close()


def wait_job(runner: JobRunner, job_id: str) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = runner.store.get(job_id)
        if job.finished:
            return job
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def study_with_ads(service: StudyService, **kw: Any) -> Any:
    questions = (Question("segment", "Your age", ("18-34", "35+"), required=True),)
    study = service.create_study("Spring", questions=questions, options=FAST, **kw)
    data = WEBM.read_bytes()
    service.add_ad(study.id, "spot_a", "a.webm", [data[:1000], data[1000:]])
    service.add_ad(study.id, "spot_b", "b.webm", [data])
    return service.get(study.id)


def upload_all(service: StudyService, token: str, sid: str, data: bytes, size: int = 16_000) -> int:
    received = 0
    for start in range(0, len(data), size):
        received = service.upload(token, sid, start, [data[start:start + size]])
    return received


def timing_for(session: Any, study: Any) -> list[dict[str, Any]]:
    """Ad 1 plays 0.2-1.4 s of the recording, ad 2 1.5-2.7 s (the fixture is 3 s long)."""
    spans = [(0.2, 1.4), (1.5, 2.7)]
    return [{"ad_id": ad_id, "completed": True, "segments": [[a, b, 0.0, b - a]]}
            for ad_id, (a, b) in zip(session.ad_order, spans, strict=True)]


def test_a_study_with_two_viewers_gets_a_report(world: Any) -> None:
    service, runner, fake = world
    study = study_with_ads(service)
    assert [a.name for a in study.ads] == ["spot_a", "spot_b"]
    assert study.ads[0].duration_s == pytest.approx(3.0, abs=0.06)  # measured: the WebM says no duration
    data = WEBM.read_bytes()
    jobs = []
    for answer in ("18-34", "35+"):
        _, session = service.open_session(study.token, {"segment": answer})
        assert upload_all(service, study.token, session.id, data) == len(data)
        done = service.finish(study.token, session.id, timing_for(session, study), "video/webm;codecs=vp8")
        assert done.state is SessionState.ANALYSING
        jobs.append(wait_job(runner, done.job_id))
    assert [j.state.value for j in jobs] == ["succeeded", "succeeded"], [j.error for j in jobs]
    sessions = service.store.sessions(study.id)
    assert [s.state for s in sessions] == [SessionState.ANALYSED] * 2
    assert [s.viewer for s in sessions] == ["v001", "v002"]
    # the analyser saw each ad's stretch of the recording; the raw recordings are gone
    assert sorted((round(a, 1), round(b, 1)) for _, a, b in fake.windows) == [(0.2, 1.4), (0.2, 1.4), (1.5, 2.7),
                                                                            (1.5, 2.7)]
    assert not list((service.store.study_dir(study.id) / "sessions").glob("*.webm"))
    frames = pd.read_parquet(service.store.frames_dir(study.id, "v001") / f"{study.ads[1].id}.parquet")
    assert frames["t"].min() >= 0.0 and frames["t"].max() < 1.2  # ad time, not recording time
    summary = jobs[1].result["summary"]
    assert [a["name"] for a in summary["ads"]] == ["spot_a", "spot_b"]
    assert {(q["viewer"], q["ad"], q["status"]) for q in summary["qc"]} == {
        (v, a, "kept") for v in ("v001", "v002") for a in ("spot_a", "spot_b")}
    happy = summary["ads"][0]["kpis"]["positive_share"]["value"]
    assert happy == pytest.approx(1.0)
    assert jobs[1].result["viewers_in_report"] == 2
    latest = service.get(study.id)
    assert latest.report_job == jobs[1].id and latest.report_viewers == 2
    report = service.report_dir(study.id)
    assert (report / "report.html").is_file() and (report / "kpis.csv").is_file()
    assert json.loads((report / "summary.json").read_text())["campaign"] == "Spring"
    assert "segment" in (report / "kpis.csv").read_text().splitlines()[0]


def test_uploads_resume_after_a_drop_and_refuse_gaps(world: Any) -> None:
    service, _, _ = world
    study = study_with_ads(service)
    _, s = service.open_session(study.token, {"segment": "35+"})
    assert service.upload(study.token, s.id, 0, [b"a" * 100]) == 100
    assert service.upload(study.token, s.id, 50, [b"a" * 50 + b"b" * 50]) == 150  # resend overlapping: fine
    with pytest.raises(UploadOffsetMismatch) as err:
        service.upload(study.token, s.id, 400, [b"c"])
    assert err.value.received == 150
    with pytest.raises(MediaTooLarge):
        service.upload(study.token, s.id, 150, [b"d" * 300_000])
    assert service.store.session(study.id, s.id).received == 150
    assert service.store.session(study.id, s.id).state is SessionState.RECORDING


def test_abandoned_session_keeps_the_rest_of_the_study(world: Any) -> None:
    service, runner, _ = world
    study = study_with_ads(service)
    _, gone = service.open_session(study.token, {"segment": "35+"})
    service.upload(study.token, gone.id, 0, [WEBM.read_bytes()[:20_000]])
    left = service.abandon(study.token, gone.id, "the viewer closed the page")
    assert left.state is SessionState.ABANDONED and left.reason == "the viewer closed the page"
    assert left.answers == {}  # never analysed: the answers go with the recording
    assert not service.store.recording_path(study.id, gone.id).exists()
    with pytest.raises(SessionStateError, match="abandoned"):
        service.upload(study.token, gone.id, 20_000, [b"x"])
    _, ok = service.open_session(study.token, {"segment": "18-34"})
    upload_all(service, study.token, ok.id, WEBM.read_bytes())
    job = wait_job(runner, service.finish(study.token, ok.id, timing_for(ok, study), None).job_id)
    assert job.state.value == "succeeded"
    assert {q["viewer"] for q in job.result["summary"]["qc"]} == {"v002"}


def test_truncated_and_corrupt_uploads_are_excluded_with_the_reason(world: Any) -> None:
    service, runner, _ = world
    study = study_with_ads(service)
    data = WEBM.read_bytes()
    _, cut = service.open_session(study.token, {"segment": "35+"})
    upload_all(service, study.token, cut.id, data[: len(data) // 3])  # about the first second only
    job1 = wait_job(runner, service.finish(study.token, cut.id, timing_for(cut, study), None).job_id)
    _, bad = service.open_session(study.token, {"segment": "35+"})
    upload_all(service, study.token, bad.id, b"\x1aE\xdf\xa3 not a webm at all" * 100)
    job2 = wait_job(runner, service.finish(study.token, bad.id, timing_for(bad, study), None).job_id)
    assert job1.state.value == job2.state.value == "succeeded", (job1.error, job2.error)
    qc = {(q["viewer"], q["ad"]): q for q in job2.result["summary"]["qc"]}
    second = study.ad(cut.ad_order[1]).name
    assert qc[("v001", second)]["status"] == "excluded"
    assert "incomplete or damaged" in qc[("v001", second)]["reason"]
    assert all(qc[("v002", a)]["status"] == "excluded" for a in ("spot_a", "spot_b"))
    assert "no frame that can be decoded" in qc[("v002", "spot_a")]["reason"]


def test_bad_input_is_named(world: Any, tmp_path: Path) -> None:
    service, _, _ = world
    study = study_with_ads(service)
    with pytest.raises(UnsupportedMedia, match=r"notes\.webm"):
        service.add_ad(study.id, "spot_c", "notes.webm", [b"just some text, not a video"])
    with pytest.raises(UnsupportedMedia, match="video file"):
        service.add_ad(study.id, "spot_c", "notes.txt", [b"text"])
    with pytest.raises(InvalidInput, match="already has an ad"):
        service.add_ad(study.id, "spot_a", "a.webm", [WEBM.read_bytes()])
    assert [a.name for a in service.get(study.id).ads] == ["spot_a", "spot_b"]  # nothing lost
    assert sorted(p.name for p in (service.store.study_dir(study.id) / "ads").iterdir()) == sorted(
        Path(a.file).name for a in study.ads)
    with pytest.raises(StudyNotFound):
        service.open_session("wrong-token", {})
    with pytest.raises(InvalidInput, match="please answer"):
        service.open_session(study.token, {})
    with pytest.raises(InvalidInput, match="not one of"):
        service.open_session(study.token, {"segment": "99"})
    with pytest.raises(InvalidInput, match="unknown question"):
        service.open_session(study.token, {"segment": "35+", "salary": "1"})
    _, s = service.open_session(study.token, {"segment": "35+"})
    with pytest.raises(SessionStateError, match="no recording"):
        service.finish(study.token, s.id, [], None)
    with pytest.raises(InvalidInput, match="sample_fps"):
        service.create_study("x", options={"sample_fps": 0})


def test_a_closed_study_refuses_viewers(world: Any) -> None:
    service, _, _ = world
    study = study_with_ads(service, closes_at=time.time() + 0.2)
    time.sleep(0.3)
    with pytest.raises(StudyClosed):
        service.open_session(study.token, {"segment": "35+"})


def test_housekeeping_abandons_silent_sessions_and_applies_retention(world: Any) -> None:
    service, _, _ = world
    study = study_with_ads(service, keep_recordings=True, retention_days=1)
    _, silent = service.open_session(study.token, {"segment": "35+"})
    service.upload(study.token, silent.id, 0, [b"x" * 10])
    service.housekeeping(study, now=time.time() + 3600)
    s = service.store.session(study.id, silent.id)
    assert s.state is SessionState.ABANDONED and "sent nothing for 30 min" in (s.reason or "")
    assert not service.store.recording_path(study.id, silent.id).exists()
    _, kept = service.open_session(study.token, {"segment": "35+"})
    upload_all(service, study.token, kept.id, WEBM.read_bytes())
    service.store.update_session(study.id, kept.id, state=SessionState.ANALYSED)
    path = service.store.recording_path(study.id, kept.id)
    service.housekeeping(study, now=time.time() + 3600)
    assert path.exists()  # kept: within the retention
    service.housekeeping(study, now=time.time() + 2 * 86400)
    assert not path.exists()


def test_delete_removes_the_study_and_its_files(world: Any) -> None:
    service, runner, _ = world
    study = study_with_ads(service)
    _, s = service.open_session(study.token, {"segment": "35+"})
    upload_all(service, study.token, s.id, WEBM.read_bytes())
    job = wait_job(runner, service.finish(study.token, s.id, timing_for(s, study), None).job_id)
    folder = service.store.study_dir(study.id)
    assert folder.is_dir()
    service.delete(study.id)
    assert not folder.exists()
    with pytest.raises(StudyNotFound):
        service.get(study.id)
    assert not runner.store.job_dir(job.id).exists()


def test_an_unusable_study_folder_is_a_named_error_without_its_path(tmp_path: Path) -> None:
    from emolens.jobs.models import JobStoreError

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the studies folder should be")
    service = StudyService(blocker / "studies", StudySettings(), lambda: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(JobStoreError) as err:
        service.create_study("x")
    assert str(tmp_path) not in str(err.value) and "unavailable" in str(err.value)


def test_an_ad_that_did_not_play_to_its_end_is_excluded_with_the_reason(world: Any) -> None:
    service, runner, _ = world
    study = study_with_ads(service)
    _, s = service.open_session(study.token, {"segment": "35+"})
    upload_all(service, study.token, s.id, WEBM.read_bytes())
    timing = timing_for(s, study)
    timing[1]["completed"] = False
    job = wait_job(runner, service.finish(study.token, s.id, timing, None).job_id)
    qc = {q["ad"]: q for q in job.result["summary"]["qc"]}
    assert qc[study.ad(s.ad_order[0]).name]["status"] == "kept"
    second = qc[study.ad(s.ad_order[1]).name]
    assert second["status"] == "excluded" and "did not play to its end" in second["reason"]


def test_too_many_viewers_at_once_are_asked_to_come_back(tmp_path: Path) -> None:
    from emolens.studies.models import TooManyViewers

    service = StudyService(tmp_path / "studies", StudySettings(max_open_sessions=2), lambda: None)  # type: ignore[arg-type,return-value]
    study = study_with_ads(service)
    first = service.open_session(study.token, {"segment": "35+"})[1]
    service.open_session(study.token, {"segment": "35+"})
    with pytest.raises(TooManyViewers, match="try again later"):
        service.open_session(study.token, {"segment": "35+"})
    service.abandon(study.token, first.id, "camera access refused")
    assert service.open_session(study.token, {"segment": "35+"})[1].viewer == "v003"  # a refusal takes no id
    service.close()
