"""Video jobs over REST with a fake analyzer: upload -> poll -> result -> files; limits; restarts.

The fake's ``iter_video`` yields synthetic frame results (one tracked face per frame) and reports
progress like the real stream; it can fail mid-way (UnsupportedMedia) or hold until released. The
fake recorder writes small CSV/PNG files and returns a summary, as VideoRecorder does. Uploads are
real tiny videos, so the server's probe (OpenCV) runs for real.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from emolens.api.app import create_app
from emolens.api.jobs_routes import JobService
from emolens.errors import UnsupportedMedia
from emolens.jobs.models import RESTARTED, SHUT_DOWN, JobState
from emolens.jobs.store import JobStore
from emolens.results import FaceResult, FrameResult
from emolens.video.stream import VideoProgress

from ..jobs.test_runner import dead_owner
from .conftest import PROBS, FakeAnalyzer, make_settings
from .test_routes import assert_error

WAIT = 30.0


class FakeStream:
    """What iter_video returns: frame results, optionally with RGB frames; reports progress."""

    def __init__(self, owner: VideoFake, source: Path, progress: Callable[[VideoProgress], None] | None) -> None:
        self.owner, self.source, self.callback = owner, source, progress
        self.closed = False

    def _report(self, done: int) -> None:
        if self.callback is not None:
            n = self.owner.frames
            self.callback(VideoProgress(done, n, done / 10, done / 100, 100.0, (n - done) / 100, 0))

    def __iter__(self) -> Iterator[FrameResult]:
        for result, _ in self.with_frames():
            yield result

    def with_frames(self) -> Iterator[tuple[FrameResult, np.ndarray]]:
        for i in range(self.owner.frames):
            if i == self.owner.hold_at:
                self.owner.holding.set()
                while not self.owner.release.wait(0.01):
                    self._report(i)  # a real stream keeps reporting; a shutdown interrupts it here
            if i == self.owner.fail_at:
                raise UnsupportedMedia(f"{self.source}: frame {i} cannot be decoded")
            face = FaceResult((4, 4, 20, 20), 0.9, "happiness", PROBS, track_id=1)
            yield FrameResult(i, i / 10, 64, 48, (face,)), np.zeros((48, 64, 3), np.uint8)
            self._report(i + 1)

    def close(self) -> None:
        self.closed = True


class VideoFake(FakeAnalyzer):
    """The API tests' fake analyzer plus ``iter_video``."""

    def __init__(self, frames: int = 6, fail_at: int | None = None, hold_at: int | None = None) -> None:
        super().__init__()
        self.frames, self.fail_at, self.hold_at = frames, fail_at, hold_at
        self.holding, self.release = threading.Event(), threading.Event()
        self.videos: list[dict[str, Any]] = []

    def iter_video(self, source: Any, options: Any = None, progress: Any = None) -> FakeStream:
        path = Path(source)
        self.videos.append({"source": path, "exists": path.is_file(), "options": options})
        return FakeStream(self, path, progress)


class FakeRecorder:
    """Writes frames.csv as frames arrive, tracks.csv and a timeline PNG on close."""

    made: ClassVar[list[FakeRecorder]] = []

    def __init__(self, out_dir: Path, labels: Any, *, annotate_mp4: bool = False, blur_faces: bool = False) -> None:
        self.out_dir, self.labels = out_dir, tuple(labels)
        self.annotate, self.blur = annotate_mp4, blur_faces
        self.rows: list[tuple[int, float, int, str]] = []
        self.rgb_frames = 0
        FakeRecorder.made.append(self)

    def add(self, frame: FrameResult, rgb: Any = None) -> None:
        self.rgb_frames += rgb is not None
        self.rows += [(frame.index, frame.time_s, f.track_id or 0, f.emotion) for f in frame.faces]

    def close(self, stream: Any = None) -> Any:
        self.stream = stream
        with (self.out_dir / "frames.csv").open("w", newline="") as f:
            csv.writer(f).writerows([("frame", "time_s", "track_id", "emotion"), *self.rows])
        (self.out_dir / "tracks.csv").write_text(f"track_id,frames\n1,{len(self.rows)}\n")
        (self.out_dir / "timeline_track1.png").write_bytes(b"\x89PNG fake")
        if self.annotate:
            (self.out_dir / "annotated.mp4").write_bytes(b"fake mp4")
        return {"frames": len(self.rows), "tracks": [{"track_id": 1, "top": "happiness"}]}


def video_bytes(tmp: Path, frames: int = 10, fps: float = 10.0, size: tuple[int, int] = (48, 64)) -> bytes:
    """A small real MJPEG AVI (``frames`` frames at ``fps``)."""
    path = tmp / f"clip-{frames}-{fps}.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size[1], size[0]))
    for i in range(frames):
        writer.write(np.full((*size, 3), 20 * (i % 10), np.uint8))
    writer.release()
    return path.read_bytes()


@pytest.fixture()
def clip(tmp_path: Path) -> bytes:
    return video_bytes(tmp_path)


@pytest.fixture()
def jobs_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """``jobs_client(analyzer, **settings)``: a started app whose jobs live in ``tmp_path/jobs``."""
    clients: list[TestClient] = []
    FakeRecorder.made.clear()

    def make(analyzer: FakeAnalyzer | None = None, **kw: Any) -> TestClient:
        fake = analyzer or VideoFake()
        kw.setdefault("jobs_dir", tmp_path / "jobs")
        settings = make_settings(uploads_dir=tmp_path / "kept", **kw)
        app = create_app(settings, analyzer_factory=lambda _s: fake)
        app.state.jobs = JobService(settings, app.state.engine, recorder_factory=FakeRecorder)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def post_video(client: TestClient, data: bytes, name: str = "viewer.avi", **form: Any) -> Any:
    return client.post("/v1/videos", files={"file": (name, data, "video/x-msvideo")}, data=form)


def wait_until_finished(client: TestClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while True:
        body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if body["state"] in ("succeeded", "failed"):
            return body
        assert time.monotonic() < deadline, f"job {job_id} did not finish: {body}"
        time.sleep(0.02)


def uploads(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "jobs" / "uploads"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_upload_poll_result_download(jobs_client: Any, clip: bytes, tmp_path: Path) -> None:
    fake = VideoFake(frames=6)
    client = jobs_client(fake)
    r = post_video(client, clip, every="3", smoothing="0.5")
    assert r.status_code == 202, r.text
    created = r.json()
    job_id = created["job_id"]
    assert created["state"] in ("queued", "running")
    assert created["links"] == {"self": f"/v1/jobs/{job_id}", "result": f"/v1/jobs/{job_id}/result"}
    assert r.headers["location"] == f"/v1/jobs/{job_id}"

    job = wait_until_finished(client, job_id)
    assert job["state"] == "succeeded" and job["error"] is None, job
    assert (job["progress"], job["frames_done"], job["frames_total"], job["kind"]) == (1.0, 6, 6, "video")
    assert job["params"] == {
        "source": "viewer.avi",
        "options": {"every": 3, "smoothing": 0.5, "annotate": False, "blur": False},
        "video": {"width": 64, "height": 48, "fps": 10.0, "frames": 10, "duration_s": 1.0},
        "max_seconds": 1800.0,
    }  # nothing server-private (the upload's path) shows
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    (seen,) = fake.videos
    assert seen["exists"] and (seen["options"].every, seen["options"].smoothing) == (3, 0.5)
    assert not seen["source"].exists() and uploads(tmp_path) == []  # the upload is gone after the job

    r = client.get(f"/v1/jobs/{job_id}/result")
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["result"]["summary"] == {"frames": 6, "tracks": [{"track_id": 1, "top": "happiness"}]}
    assert (result["result"]["frames"], result["result"]["source"]) == (6, "viewer.avi")
    files = {f["name"]: f for f in result["files"]}
    assert set(files) == {"frames.csv", "tracks.csv", "timeline_track1.png"}
    assert files["frames.csv"]["media_type"] == "text/csv"
    assert files["timeline_track1.png"]["media_type"] == "image/png"

    r = client.get(files["frames.csv"]["url"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert int(r.headers["content-length"]) == files["frames.csv"]["bytes"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["frame", "time_s", "track_id", "emotion"]
    assert [row[0] for row in rows[1:]] == ["0", "1", "2", "3", "4", "5"]
    assert FakeRecorder.made[-1].rgb_frames == 0  # no drawing asked: no frames handed over


def test_annotate_and_blur_reach_the_recorder_with_frames(jobs_client: Any, clip: bytes) -> None:
    client = jobs_client(VideoFake(frames=3))
    job_id = post_video(client, clip, annotate="true", blur="true").json()["job_id"]
    assert wait_until_finished(client, job_id)["state"] == "succeeded"
    recorder = FakeRecorder.made[-1]
    assert (recorder.annotate, recorder.blur, recorder.rgb_frames) == (True, True, 3)
    names = [f["name"] for f in client.get(f"/v1/jobs/{job_id}/result").json()["files"]]
    assert "annotated.mp4" in names
    r = client.get(f"/v1/jobs/{job_id}/files/annotated.mp4")
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4" and r.content == b"fake mp4"


def test_keep_uploads_moves_the_video_aside(jobs_client: Any, clip: bytes, tmp_path: Path) -> None:
    client = jobs_client(VideoFake(frames=2), keep_uploads=True)
    job_id = post_video(client, clip).json()["job_id"]
    assert wait_until_finished(client, job_id)["state"] == "succeeded"
    assert (tmp_path / "kept" / f"{job_id}.avi").read_bytes() == clip
    assert uploads(tmp_path) == []


def test_a_video_that_breaks_mid_way_fails_the_job_with_the_reason(
    jobs_client: Any, clip: bytes, tmp_path: Path
) -> None:
    client = jobs_client(VideoFake(frames=6, fail_at=3))
    job_id = post_video(client, clip, name="broken.avi").json()["job_id"]
    job = wait_until_finished(client, job_id)
    assert job["state"] == "failed"
    assert job["error"] == {"type": "UnsupportedMedia", "message": "broken.avi: frame 3 cannot be decoded"}
    assert str(tmp_path) not in job["error"]["message"]  # no server path leaks
    message = assert_error(client.get(f"/v1/jobs/{job_id}/result"), 409, "JobFailed", "frame 3", "UnsupportedMedia")
    assert job_id in message
    assert_error(client.get(f"/v1/jobs/{job_id}/files/frames.csv"), 404, "JobFileNotFound")
    assert not (tmp_path / "jobs" / "results" / job_id).exists()  # partial outputs are not kept
    assert uploads(tmp_path) == []


def test_result_is_409_while_the_job_runs(jobs_client: Any, clip: bytes) -> None:
    fake = VideoFake(frames=4, hold_at=2)
    client = jobs_client(fake)
    job_id = post_video(client, clip).json()["job_id"]
    assert fake.holding.wait(WAIT)
    deadline = time.monotonic() + WAIT
    while (job := client.get(f"/v1/jobs/{job_id}").json())["frames_done"] != 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert job["state"] == "running" and job["progress"] == 0.5 and job["message"] == "2 frames analysed"
    assert job["details"]["fps"] == 100.0 and job["started_at"] and job["finished_at"] is None
    assert_error(client.get(f"/v1/jobs/{job_id}/result"), 409, "JobNotFinished", "running", "50%")
    assert_error(client.get(f"/v1/jobs/{job_id}/files/frames.csv"), 404, "JobFileNotFound")
    fake.release.set()
    assert wait_until_finished(client, job_id)["state"] == "succeeded"


def test_unknown_jobs_and_files_are_404(jobs_client: Any, clip: bytes, tmp_path: Path) -> None:
    client = jobs_client(VideoFake(frames=2))
    for url in ("/v1/jobs/nope", "/v1/jobs/nope/result", "/v1/jobs/nope/files/frames.csv"):
        assert_error(client.get(url), 404, "JobNotFound", "nope")
    job_id = post_video(client, clip).json()["job_id"]
    wait_until_finished(client, job_id)
    (tmp_path / "jobs" / "results" / job_id / "secret.txt").write_text("not in the listing")
    for name in ("secret.txt", "../../jobs.sqlite3", "..%2F..%2Fjobs.sqlite3", "%2Fetc%2Fpasswd", "frames.csv/"):
        r = client.get(f"/v1/jobs/{job_id}/files/{name}")
        assert r.status_code == 404, (name, r.status_code)
        assert r.json()["error"]["type"] in ("JobFileNotFound", "JobNotFound", "NotFound")  # dot segments may resolve


@pytest.mark.parametrize(
    ("content", "name", "words"),
    [
        (b"hello, I am text", "ad.mp4", ("ad.mp4", "not a video")),
        (b"", "empty.mp4", ("empty.mp4", "empty")),
        (b"\x00" * 5000, "zeros.avi", ("zeros.avi",)),
    ],
)
def test_what_is_not_a_video_is_415(
    jobs_client: Any, tmp_path: Path, content: bytes, name: str, words: tuple[str, ...]
) -> None:
    client = jobs_client()
    message = assert_error(post_video(client, content, name=name), 415, "UnsupportedMedia", *words)
    assert str(tmp_path) not in message
    assert uploads(tmp_path) == [] and client.get("/v1/jobs").json()["total"] == 0


def test_a_truncated_video_is_refused_or_fails_never_crashes(jobs_client: Any, clip: bytes) -> None:
    client = jobs_client(VideoFake(frames=2))
    r = post_video(client, clip[: len(clip) // 3], name="cut.avi")
    if r.status_code == 202:  # the first frames decode: the job runs on what there is
        assert wait_until_finished(client, r.json()["job_id"])["state"] in ("succeeded", "failed")
    else:
        assert_error(r, 415, "UnsupportedMedia", "cut.avi")


def test_size_and_duration_limits_are_413(jobs_client: Any, clip: bytes, tmp_path: Path) -> None:
    client = jobs_client(max_video_bytes=len(clip) - 1, max_video_seconds=0.5)
    assert_error(post_video(client, clip), 413, "MediaTooLarge", "viewer.avi", "limit")
    roomy = jobs_client(max_video_seconds=0.5, jobs_dir=tmp_path / "jobs")
    assert_error(post_video(roomy, clip), 413, "MediaTooLarge", "lasts 1.0 s", "limit is 0.5 s")
    # far over the limit: refused by the body limit before the route reads it
    big = jobs_client(max_video_bytes=1000, jobs_dir=tmp_path / "jobs")
    assert_error(post_video(big, b"\x00" * 200_000), 413, "MediaTooLarge")
    assert uploads(tmp_path) == []


@pytest.mark.parametrize(
    ("form", "field"),
    [({"every": "0"}, "every"), ({"smoothing": "1"}, "smoothing"), ({"annotate": "maybe"}, "annotate")],
)
def test_bad_options_are_422(jobs_client: Any, clip: bytes, form: dict[str, str], field: str) -> None:
    assert_error(post_video(jobs_client(), clip, **form), 422, "InvalidInput", field)


def test_a_full_queue_is_503(jobs_client: Any, clip: bytes, tmp_path: Path) -> None:
    fake = VideoFake(frames=2, hold_at=0)
    client = jobs_client(fake, max_queued_jobs=1)
    first = post_video(client, clip).json()["job_id"]
    assert fake.holding.wait(WAIT)
    assert_error(post_video(client, clip), 503, "JobQueueFull", "limit is 1")
    assert len(uploads(tmp_path)) == 1  # only the running job's upload
    fake.release.set()
    assert wait_until_finished(client, first)["state"] == "succeeded"


def test_jobs_are_listed_newest_first_a_page_at_a_time(jobs_client: Any, clip: bytes) -> None:
    client = jobs_client(VideoFake(frames=1))
    ids = [post_video(client, clip, name=f"v{i}.avi").json()["job_id"] for i in range(5)]
    for job_id in ids:
        wait_until_finished(client, job_id)
    page = client.get("/v1/jobs", params={"limit": 2}).json()
    assert [j["job_id"] for j in page["jobs"]] == ids[::-1][:2]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 0)
    assert page["next"] == "/v1/jobs?limit=2&offset=2"
    last = client.get("/v1/jobs", params={"limit": 2, "offset": 4}).json()
    assert [j["job_id"] for j in last["jobs"]] == [ids[0]] and last["next"] is None
    assert client.get("/v1/jobs", params={"state": "failed"}).json()["total"] == 0
    assert client.get("/v1/jobs", params={"kind": "campaign"}).json()["jobs"] == []
    assert_error(client.get("/v1/jobs", params={"state": "lost"}), 422, "InvalidInput", "state")
    assert_error(client.get("/v1/jobs", params={"limit": 0}), 422, "InvalidInput", "limit")


def test_a_restarted_server_reports_the_dead_servers_jobs(jobs_client: Any, clip: bytes, tmp_path: Path) -> None:
    jobs_dir = tmp_path / "jobs"
    first = jobs_client(VideoFake(frames=2))  # server A
    done_id = post_video(first, clip).json()["job_id"]
    wait_until_finished(first, done_id)
    # A's process dies: one job mid-run, one waiting with its upload on disk
    waiting_upload = jobs_dir / "uploads" / "left.avi"
    waiting_upload.write_bytes(clip)
    with JobStore(jobs_dir) as store:
        owner = dead_owner()
        running = store.create(
            "video", {"source": "a.avi", "_upload": str(jobs_dir / "uploads" / "gone.avi")}, owner=owner
        )
        store.start(running.id, owner)
        store.report(running.id, progress=0.4, details={"frames_done": 40})
        queued = store.create(
            "video", {"source": "b.avi", "options": {"every": 1}, "_upload": str(waiting_upload)}, owner=owner
        )

    second = jobs_client(VideoFake(frames=3))  # server B on the same folder
    job = second.get(f"/v1/jobs/{running.id}").json()
    assert (job["state"], job["error"]) == ("failed", {"type": "ServerRestarted", "message": RESTARTED})
    assert (job["progress"], job["frames_done"]) == (0.4, 40)  # how far it got
    assert_error(second.get(f"/v1/jobs/{running.id}/result"), 409, "JobFailed", RESTARTED)
    resumed = wait_until_finished(second, queued.id)  # never started: B runs it
    assert resumed["state"] == "succeeded" and resumed["frames_done"] == 3
    assert not waiting_upload.exists()
    assert second.get(f"/v1/jobs/{done_id}/result").status_code == 200  # A's results are still served
    assert second.get("/v1/jobs").json()["total"] == 3


def test_a_clean_shutdown_fails_the_running_job_with_the_reason(jobs_client: Any, clip: bytes, tmp_path: Path) -> None:
    fake = VideoFake(frames=4, hold_at=1)
    client = jobs_client(fake)
    job_id = post_video(client, clip).json()["job_id"]
    assert fake.holding.wait(WAIT)
    client.__exit__(None, None, None)  # lifespan shutdown while the job runs
    with JobStore(tmp_path / "jobs") as store:
        job = store.get(job_id)
    assert (job.state, job.error, job.error_type) == (JobState.FAILED, SHUT_DOWN, "ServerShutDown")
    assert uploads(tmp_path) == []


def test_without_a_usable_jobs_folder_images_still_work(jobs_client: Any, clip: bytes, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the jobs folder should be")
    client = jobs_client(jobs_dir=blocker)
    message = assert_error(client.get("/v1/jobs"), 500, "JobStoreError", "unavailable")
    assert str(blocker) not in message
    assert_error(post_video(client, clip), 500, "JobStoreError")
    assert client.get("/healthz").status_code == 200
