"""The ``video`` job end to end on the real video core: probe, analysis, recorder outputs, REST flow.

Generated clips of bright squares with a tiny ONNX model and a square detector run the whole real
stack in a second; one test runs a real clip from ../shared/data/media/videos through the API with
the shipped model (skipped when either is missing).
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from emolens.errors import MediaTooLarge, UnsupportedMedia
from emolens.jobs.models import JobState
from emolens.jobs.runner import JobRunner
from emolens.jobs.store import JobStore
from emolens.jobs.video import VideoProbe, _public_summary, check_duration, probe_video, video_kind

pytest.importorskip("emolens.video.outputs", reason="the video core (emolens.video) is not in this checkout")

from emolens.inference.analyzer import Analyzer
from tests.inference.modelfactory import make_model
from tests.video.synth import SquareDetector, write_video

WAIT = 60.0


def faces_moving(n: int = 20) -> list[Any]:
    """A left-lit square (anger for the tiny model) moving right, and a right-lit one (disgust)."""
    return [[(10 + 2 * i, 20, 30, "left"), (120 - 2 * i, 70, 30, "right")] for i in range(n)]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("jobs-model") / "tiny.onnx")


@pytest.fixture()
def analyzer(tiny_model: Path) -> Analyzer:
    return Analyzer(tiny_model, detector=SquareDetector(), align=False, min_face=8)  # type: ignore[arg-type]


@pytest.fixture()
def runner(tmp_path: Path, analyzer: Analyzer) -> Iterator[JobRunner]:
    store = JobStore(tmp_path / "jobs")
    job_runner = JobRunner(store, [video_kind(lambda: analyzer)])
    job_runner.start()
    yield job_runner
    job_runner.close()
    store.close()


def test_probe_reads_size_rate_and_length(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", 25, fps=25.0, size=(120, 160))
    assert probe_video(path, "clip.avi") == VideoProbe(160, 120, 25.0, 25, 1.0)
    with pytest.raises(MediaTooLarge, match=re.escape("my.avi: frames of 160x120 exceed the limit of 100 pixels")):
        probe_video(path, "my.avi", max_pixels=100)


@pytest.mark.parametrize("content", [b"", b"just some text, not a video"])
def test_probe_refuses_what_is_not_a_video_naming_the_clients_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "server-side-name.mp4"
    path.write_bytes(content)
    with pytest.raises(UnsupportedMedia, match=r"^ad\.mp4: ") as err:
        probe_video(path, "ad.mp4")
    assert str(tmp_path) not in str(err.value)


def test_check_duration() -> None:
    probe = VideoProbe(64, 48, 10.0, 100, 10.0)
    check_duration(probe, 10.0, "a.mp4")
    check_duration(probe, None, "a.mp4")
    check_duration(VideoProbe(64, 48, None, None, None), 1.0, "a.mp4")  # unknown: the job enforces it
    with pytest.raises(MediaTooLarge, match=re.escape("a.mp4: the video lasts 10.0 s; the limit is 9.5 s")):
        check_duration(probe, 9.5, "a.mp4")


def test_public_summary_names_files_inside_the_job_folder_only(tmp_path: Path) -> None:
    summary = {"frames": 3, "files": {"csv": str(tmp_path / "frames.csv"), "png": str(tmp_path / "t" / "1.png"),
                                      "elsewhere": "/etc/passwd"}}  # fmt: skip
    assert _public_summary(summary, tmp_path) == {"frames": 3, "files": {"csv": "frames.csv", "png": "t/1.png"}}


def submit(runner: JobRunner, video: Path, **options: Any) -> str:
    params = {"source": "viewer.avi", "options": {"every": 1, "smoothing": 0.0, **options}, "_upload": str(video)}
    params["max_seconds"] = options.pop("max_seconds", None)
    return runner.submit("video", params).id


def test_a_video_job_writes_every_output(tmp_path: Path, runner: JobRunner) -> None:
    video = write_video(tmp_path / "two.avi", faces_moving(20), fps=25.0, size=(120, 160))
    job = runner.wait_for(submit(runner, video, every=2, annotate=True), WAIT)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.details["frames_done"] == 20 and job.details["frames_total"] == 20 and job.progress == 1.0
    assert {"frames.csv", "frames.parquet", "tracks.csv", "summary.json", "annotated.mp4"} <= set(job.files)
    assert sum(name.startswith("timelines/") and name.endswith(".png") for name in job.files) == 2
    assert job.result is not None
    summary = job.result["summary"]
    assert (job.result["frames"], summary["frames"], summary["tracks_count"]) == (20, 20, 2)
    assert summary["classified_frames"] == 10
    assert {t["track_id"]: t["top_emotion"] for t in summary["tracks"]} == {1: "anger", 2: "disgust"}
    assert summary["files"]["frames_csv"] == "frames.csv"  # names, not server paths
    folder = runner.store.job_dir(job.id)
    assert str(tmp_path) not in (folder / "summary.json").read_text()
    with (folder / "frames.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 40 and {r["emotion"] for r in rows if r["track_id"] == "1"} == {"anger"}
    assert not video.exists()  # the upload is deleted once the job has ended


def test_a_video_over_the_time_limit_fails_the_job(tmp_path: Path, runner: JobRunner) -> None:
    video = write_video(tmp_path / "long.avi", faces_moving(20), fps=10.0, size=(120, 160))
    job = runner.wait_for(submit(runner, video, max_seconds=1.0), WAIT)
    assert (job.state, job.error_type) == (JobState.FAILED, "MediaTooLarge")
    assert job.error == "viewer.avi: the video is longer than the limit of 1 s"
    assert not runner.store.job_dir(job.id).exists()


def test_a_video_with_no_faces_succeeds_with_empty_results(tmp_path: Path, runner: JobRunner) -> None:
    video = write_video(tmp_path / "empty.avi", 10, fps=25.0, size=(120, 160))
    job = runner.wait_for(submit(runner, video), WAIT)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result is not None and job.result["summary"]["tracks_count"] == 0
    assert job.result["summary"]["face_rows"] == 0 and "frames.csv" in job.files


def wait_finished(client: TestClient, job_id: str, timeout: float = WAIT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (body := client.get(f"/v1/jobs/{job_id}").json())["state"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    return dict(body)


def api_client(tmp_path: Path, factory: Callable[[Any], Any] | None) -> TestClient:
    from emolens.api.app import create_app
    from tests.api.conftest import make_settings

    return TestClient(create_app(make_settings(jobs_dir=tmp_path / "jobs"), analyzer_factory=factory))


def test_rest_flow_on_the_real_video_core(tmp_path: Path, analyzer: Analyzer) -> None:
    video = write_video(tmp_path / "two.avi", faces_moving(12), fps=25.0, size=(120, 160))
    with api_client(tmp_path, lambda _s: analyzer) as client:
        r = client.post("/v1/videos", files={"file": ("two.avi", video.read_bytes())}, data={"smoothing": "0.5"})
        assert r.status_code == 202, r.text
        job = wait_finished(client, r.json()["job_id"])
        assert job["state"] == "succeeded", job
        result = client.get(job["links"]["result"]).json()
        files = {f["name"]: f for f in result["files"]}
        assert files["frames.parquet"]["media_type"] == "application/vnd.apache.parquet"
        parquet = client.get(files["frames.parquet"]["url"])
        assert parquet.status_code == 200 and parquet.content[:4] == b"PAR1"
        png = next(f for name, f in files.items() if name.startswith("timelines/"))
        assert client.get(png["url"]).content[:4] == b"\x89PNG"
        assert result["result"]["summary"]["tracks_count"] == 2


@pytest.mark.shared
def test_a_real_clip_through_the_api_with_the_shipped_model(tmp_path: Path, shared_data: Path) -> None:
    clip = shared_data / "media" / "videos" / "huimiang_1543684773_anger.avi"
    if not clip.is_file():
        pytest.skip(f"{clip} not found")
    try:
        from emolens.inference.shipped import default_model_path

        default_model_path()
    except Exception as e:
        pytest.skip(f"no shipped model: {e}")
    with api_client(tmp_path, None) as client:
        r = client.post("/v1/videos", files={"file": (clip.name, clip.read_bytes())}, data={"every": "3"})
        assert r.status_code == 202, r.text
        job = wait_finished(client, r.json()["job_id"], timeout=300.0)
        assert job["state"] == "succeeded", job
        assert job["frames_done"] == job["params"]["video"]["frames"] > 50
        result = client.get(job["links"]["result"]).json()["result"]
        assert result["summary"]["tracks_count"] >= 1
        longest = max(result["summary"]["tracks"], key=lambda t: t["on_screen_s"])
        assert longest["on_screen_s"] > 1.5  # one face through (nearly) the whole 2.2 s clip
        rows = list(csv.DictReader(io.StringIO(client.get(f"/v1/jobs/{job['job_id']}/files/frames.csv").text)))
        assert len(rows) >= job["frames_done"] * 0.9
