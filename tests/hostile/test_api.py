"""Hostile requests to the REST API: each gets its named JSON error (or a result marked partial),
the server stays up after every one (``/healthz``), and nothing is held in memory or read before
the API key is checked (issue 16, items 1-4, 7, 9 and 10)."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from emolens.api.app import create_app
from emolens.api.jobs_routes import JobService
from emolens.api.streamform import FormLimits, Target, stream_form
from emolens.results import FaceResult, FrameResult

from ..api.conftest import FakeAnalyzer, FakeFactory, image_bytes, make_settings
from ..jobs.test_campaign_job import fake_analyser, manifest_text, recording_files, write_campaign

FAST = {"bootstrap": "50", "seed": "3"}


class Server:
    """A started app (fake analyzers, jobs under ``tmp_path``) and the bytes its routes read."""

    def __init__(self, tmp_path: Path, analyzer: Any = None, **settings: Any) -> None:
        config = make_settings(jobs_dir=tmp_path / "jobs", **settings)
        app = create_app(config, analyzer_factory=(lambda _s: analyzer) if analyzer else FakeFactory())
        app.state.jobs = JobService(config, app.state.engine, campaign_analyser=lambda _s: fake_analyser())
        self.read = 0

        async def counting(scope: Any, receive: Any, send: Any) -> None:
            async def counted() -> Any:
                message = await receive()
                self.read += len(message.get("body", b""))
                return message

            await app(scope, counted, send)

        self.app = app
        self.client = TestClient(counting)

    def alive(self) -> None:
        r = self.client.get("/healthz")
        assert r.status_code == 200, r.text

    def error(self, r: Any, status: int, type_: str, *words: str) -> str:
        assert r.status_code == status, r.text
        assert len(r.content) < 20_000, f"a {len(r.content)}-byte error body"
        body = r.json()
        assert body["error"]["type"] == type_, body
        for w in words:
            assert w in body["error"]["message"], body
        self.alive()
        return str(body["error"]["message"])

    def upload(self, manifest: str, files: dict[str, bytes] | None = None, **headers: str) -> Any:
        parts = [("manifest", ("campaign.yaml", manifest.encode(), "application/x-yaml"))]
        parts += [("files", (n, d, "application/octet-stream")) for n, d in (files or recording_files()).items()]
        return self.client.post("/v1/campaigns", files=parts, data=FAST, headers=headers)

    def wait(self, job_id: str, **headers: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            body: dict[str, Any] = self.client.get(f"/v1/jobs/{job_id}", headers=headers).json()
            if body["state"] in ("succeeded", "partial", "failed") or time.monotonic() > deadline:
                return body
            time.sleep(0.02)


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Any]:
    made: list[Server] = []

    def make(analyzer: Any = None, **settings: Any) -> Server:
        s = Server(tmp_path, analyzer, **settings)
        s.client.__enter__()
        made.append(s)
        return s

    yield make
    for s in made:
        s.client.__exit__(None, None, None)


def _ad(duration: str) -> str:
    return manifest_text().replace("{name: A, duration_s: 3}", f"{{name: A, duration_s: {duration}}}")


@pytest.mark.parametrize("duration", ["1e9", "1e6", "true", "1e-300"])
def test_absurd_ad_durations_are_422_before_any_job(server: Any, duration: str) -> None:
    s = server()
    s.error(s.upload(_ad(duration)), 422, "ManifestError", "duration_s of ad 'A'")
    assert s.client.get("/v1/jobs").json()["total"] == 0


def test_alias_bombs_and_deep_nesting_are_short_422s(server: Any) -> None:
    s = server()
    bomb = ['b0: &b0 ["xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx"]']
    bomb += [f"b{i}: &b{i} [" + ",".join([f"*b{i - 1}"] * 10) + "]" for i in range(1, 8)]
    for at in ("duration_s: *b7", "duration_s: 3, video: *b7"):
        text = "\n".join(bomb) + "\n" + _ad("3").replace("duration_s: 3", at, 1)
        s.error(s.upload(text), 422, "ManifestError", "aliases expand")
    s.error(s.upload("ads: " + "[" * 20_000 + "]" * 20_000 + "\n"), 422, "ManifestError", "nested more than")


@pytest.mark.parametrize("path", ["recordings/v1\\0.mp4", "r" * 5000 + ".mp4"])
def test_unusable_paths_in_an_uploaded_manifest_are_422(server: Any, path: str) -> None:
    s = server()
    s.error(s.upload(manifest_text().replace("recordings/v1.mp4", f'"{path}"')), 422, "ManifestError")


def test_from_path_with_nul_long_or_nested_values_is_never_a_500(server: Any, tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_campaign(root)
    s = server(data_root=root)
    for rel in ("campaign.yaml\x00.yaml", "c" * 4000 + ".yaml", "d/" * 1500 + "c.yaml"):
        s.error(s.client.post("/v1/campaigns/from-path", json={"manifest_path": rel}), 422, "InvalidInput")
    s.error(s.client.post("/v1/campaigns/from-path", json={"manifest_path": "x" * 5000}), 422, "InvalidInput")
    nested = '{"manifest_path": ' + "[" * 20_000 + "]" * 20_000 + "}"
    r = s.client.post("/v1/campaigns/from-path", content=nested, headers={"content-type": "application/json"})
    s.error(r, 422, "InvalidInput")
    (root / "long.yaml").write_text(manifest_text().replace("recordings/v1.mp4", "q" * 5000))
    s.error(s.client.post("/v1/campaigns/from-path", json={"manifest_path": "long.yaml"}), 422, "ManifestError",
            "too long")


def test_without_the_key_nothing_of_the_body_is_read(server: Any) -> None:
    s = server(api_key="right")
    big = {f"recordings/f{i}.mp4": b"\0" * 200_000 for i in range(20)}  # 4 MB in 20 parts
    s.error(s.upload(manifest_text(), big), 401, "Unauthorized")
    s.error(s.upload(manifest_text(), big, **{"X-API-Key": "wrong"}), 401, "Unauthorized")
    r = s.client.post("/v1/analyze", files={"file": ("a.png", b"\0" * 3_000_000)})
    s.error(r, 401, "Unauthorized")
    assert s.read == 0
    assert s.upload(manifest_text(), **{"X-API-Key": "right"}).status_code == 202


class _Request(Request):
    """A request whose multipart body is generated chunk by chunk (never held whole)."""


def _multipart(files: int, size: int, boundary: str = "B0UNDARY") -> Iterator[bytes]:
    yield (f'--{boundary}\r\nContent-Disposition: form-data; name="manifest"; filename="m.yaml"\r\n\r\n'
           "ads: []\r\n").encode()
    for i in range(files):
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="f{i}.bin"\r\n'
               "Content-Type: application/octet-stream\r\n\r\n").encode()
        for _ in range(size // 65536):
            yield b"\x07" * 65536
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def test_uploads_stream_to_disk_with_flat_memory(tmp_path: Path) -> None:
    import asyncio

    chunks = _multipart(files=60, size=512 * 1024)  # 30 MB in parts that Starlette would keep in RAM

    async def receive() -> dict[str, Any]:
        chunk = next(chunks, None)
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [
        (b"content-type", b"multipart/form-data; boundary=B0UNDARY")]}

    def place(field: str, name: str, used: int) -> Target:
        return Target(tmp_path / name, 1 << 30, "too large")

    tracemalloc.start()
    try:
        form = asyncio.run(stream_form(Request(scope, receive), place, FormLimits(max_files=100)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(form.files) == 61 and all(f.path.stat().st_size == f.size for f in form.files)
    assert sum(f.size for f in form.files) > 30_000_000
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes of Python memory for a 30 MB upload"


def test_too_many_parts_or_bytes_stop_the_upload(server: Any) -> None:
    s = server(max_campaign_files=5, max_campaign_bytes=100_000)
    many = {f"recordings/f{i}.mp4": b"x" for i in range(50)}
    s.error(s.upload(manifest_text(), many), 413, "MediaTooLarge", "more than 5 files")
    s.error(s.upload(manifest_text(), {"recordings/big.mp4": b"x" * 200_000}), 413, "MediaTooLarge")
    assert not any((Path(s.app.state.settings.jobs_dir) / "uploads").glob("campaign-*"))


@pytest.mark.parametrize("value", ["null", "", "true", "false"])
def test_nullable_form_booleans_accept_null(server: Any, value: str) -> None:
    s = server()
    r = s.client.post("/v1/analyze", files={"file": ("a.png", image_bytes())}, data={"cropped": value, "tta": value})
    assert r.status_code == 200, r.text
    s.alive()


def test_jobs_belong_to_their_client_and_can_be_deleted(server: Any) -> None:
    s = server(api_keys=["key-a", "key-b"])
    a, b = {"X-API-Key": "key-a"}, {"X-API-Key": "key-b"}
    job = s.upload(manifest_text(), **a).json()["job_id"]
    assert s.wait(job, **a)["state"] == "succeeded"
    assert s.client.get("/v1/jobs", headers=a).json()["total"] == 1
    assert s.client.get("/v1/jobs", headers=b).json()["total"] == 0
    for url in (f"/v1/jobs/{job}", f"/v1/jobs/{job}/result", f"/v1/jobs/{job}/files/summary.json",
                f"/v1/campaigns/{job}/report"):
        s.error(s.client.get(url, headers=b), 404, "JobNotFound")
        assert s.client.get(url, headers=a).status_code == 200
    s.error(s.client.delete(f"/v1/jobs/{job}", headers=b), 404, "JobNotFound")
    folder = Path(s.app.state.settings.jobs_dir) / "results" / job
    assert folder.is_dir()
    assert s.client.delete(f"/v1/jobs/{job}", headers=a).status_code == 204
    s.error(s.client.get(f"/v1/jobs/{job}", headers=a), 404, "JobNotFound")
    assert not folder.exists()


def test_finished_jobs_are_pruned_after_the_retention(server: Any) -> None:
    s = server()
    job = s.upload(manifest_text()).json()["job_id"]
    assert s.wait(job)["state"] == "succeeded"
    runner = s.app.state.jobs.runner
    assert runner.prune(3600.0) == 0  # younger than the retention: kept
    assert runner.prune(0.0) == 1
    s.error(s.client.get(f"/v1/jobs/{job}"), 404, "JobNotFound")
    assert not (Path(s.app.state.settings.jobs_dir) / "results" / job).exists()


class _Progress:
    def __init__(self, done: int, broken: int, missing: int) -> None:
        self.frames_done, self.frames_total, self.broken_frames, self.missing_frames = done, 120, broken, missing

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))


class _BrokenStream:
    """120 frames announced; only ``done`` decode (like a file with damaged frames)."""

    def __init__(self, done: int, broken: int, missing: int) -> None:
        self.progress = _Progress(done, broken, missing)

    def __iter__(self) -> Iterator[FrameResult]:
        face = FaceResult(box=(1, 1, 8, 8), detection_score=0.9, emotion="happiness",
                          probabilities={"happiness": 1.0}, track_id=1)
        done = self.progress.frames_done
        return iter([FrameResult(index=i, time_s=i / 10, width=64, height=48, faces=(face,)) for i in range(done)])

    def with_frames(self) -> Iterator[tuple[FrameResult, Any]]:
        return ((f, None) for f in self)

    def close(self) -> None:
        pass


class _VideoFake(FakeAnalyzer):
    def __init__(self, done: int, broken: int, missing: int) -> None:
        super().__init__()
        self.figures = (done, broken, missing)

    def iter_video(self, source: Any, options: Any = None, progress: Any = None) -> _BrokenStream:
        return _BrokenStream(*self.figures)


@pytest.mark.parametrize(("done", "broken", "missing"), [(42, 78, 0), (27, 0, 93), (120, 0, 0)])
def test_a_video_with_unreadable_frames_is_partial_not_succeeded(server: Any, tmp_path: Path, done: int,
                                                                 broken: int, missing: int) -> None:
    from ..api.test_jobs_routes import video_bytes

    s = server(_VideoFake(done, broken, missing))
    r = s.client.post("/v1/videos", files={"file": ("clip.avi", video_bytes(tmp_path))})
    assert r.status_code == 202, r.text
    job = s.wait(r.json()["job_id"])
    result = s.client.get(f"/v1/jobs/{job['job_id']}/result")
    assert result.status_code == 200, result.text
    if broken or missing:
        assert job["state"] == "partial" and job["warnings"], job
        assert str(broken or missing) in json.dumps(job["warnings"])
        assert result.json()["warnings"] == job["warnings"] == result.json()["result"]["warnings"]
    else:
        assert job["state"] == "succeeded" and job["warnings"] == []
    s.alive()


def test_a_campaign_with_an_unreadable_recording_is_partial(tmp_path: Path) -> None:
    broken = fake_analyser()
    broken.broken = {"v2.mp4"}
    config = make_settings(jobs_dir=tmp_path / "jobs")
    app = create_app(config, analyzer_factory=FakeFactory())
    app.state.jobs = JobService(config, app.state.engine, campaign_analyser=lambda _s: broken)
    s = Server.__new__(Server)
    s.app, s.read, s.client = app, 0, TestClient(app)
    with s.client:
        job = s.wait(s.upload(manifest_text()).json()["job_id"])
        assert job["state"] == "partial", job
        (warning,) = job["warnings"]
        assert "'v2'" in warning and "could not be analysed" in warning
        result = s.client.get(f"/v1/jobs/{job['job_id']}/result").json()
        assert result["warnings"] == job["warnings"] and result["state"] == "partial"
        assert s.client.get(f"/v1/campaigns/{job['job_id']}/report").status_code == 200
        s.alive()


@pytest.mark.parametrize("url", ["/v1/videos", "/v1/analyze"])
def test_single_file_routes_refuse_a_flood_of_small_parts(server: Any, url: str) -> None:
    s = server()
    parts = [("file", (f"f{i}.bin", b"x" * 1000, "application/octet-stream")) for i in range(300)]
    s.error(s.client.post(url, files=parts), 422, "InvalidInput", "Too many files")


def test_a_bootstrap_over_the_memory_budget_is_a_422(server: Any) -> None:
    s = server()
    parts = [("manifest", ("campaign.yaml", _ad("3600").encode(), "application/x-yaml"))]
    parts += [("files", (n, d, "application/octet-stream")) for n, d in recording_files().items()]
    r = s.client.post("/v1/campaigns", files=parts, data={"bootstrap": "20000"})
    s.error(r, 422, "InvalidInput", "bootstrap <=")


def test_several_keys_travel_to_worker_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    from emolens.api.settings import Settings

    env = make_settings(api_keys=["key-a", "key-b"], job_retention_s=60).to_env()
    assert json.loads(env["EMOLENS_API_KEYS"]) == ["key-a", "key-b"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    again = Settings()
    assert again.accepted_keys() == ["key-a", "key-b"] and again.job_retention_s == 60
