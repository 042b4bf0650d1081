"""Campaign jobs over REST with the campaign tests' fake analyser: upload -> poll -> result -> report;
manifest and file-name checks; limits; the data root (inside, outside, symlinks, none); the shared
cache; and no server path in any answer.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from emolens.api.app import create_app
from emolens.api.jobs_routes import JobService
from tests.campaign.fakes import FakeAnalyser

from ..jobs.test_campaign_job import VIEWERS, fake_analyser, manifest_text, rec_line, recording_files, write_campaign
from .conftest import FakeFactory, make_settings
from .test_routes import assert_error

WAIT = 60.0
FAST = {"bootstrap": "50", "seed": "3"}


class HoldingFake(FakeAnalyser):
    """Holds in its first video until released (to look at a job while it runs)."""

    def __init__(self, base: FakeAnalyser) -> None:
        super().__init__(base.rows)
        self.holding, self.release = threading.Event(), threading.Event()

    def analyse_video(self, path: Path, start_s: float, end_s: float) -> Any:
        self.holding.set()
        self.release.wait(WAIT)
        return super().analyse_video(path, start_s, end_s)


class Api:
    """A client of an app whose campaign jobs use ``fake``; remembers every response body."""

    def __init__(self, tmp_path: Path, fake: FakeAnalyser, **settings: Any) -> None:
        self.tmp_path, self.fake = tmp_path, fake
        config = make_settings(jobs_dir=tmp_path / "jobs", **settings)
        app = create_app(config, analyzer_factory=FakeFactory())
        app.state.jobs = JobService(config, app.state.engine, campaign_analyser=lambda _s: self.fake)
        self.client = TestClient(app)
        self.bodies: list[str] = []

    def call(self, method: str, url: str, **kw: Any) -> Any:
        r = self.client.request(method, url, **kw)
        self.bodies.append(f"{r.headers}\n{r.text}")
        return r

    def upload(self, files: dict[str, bytes] | None = None, manifest: str | None = None, name: str = "campaign.yaml",
               **form: str) -> Any:
        files = recording_files() if files is None else files
        parts = [("manifest", (name, (manifest or manifest_text()).encode(), "application/x-yaml"))]
        parts += [("files", (rel, data, "application/octet-stream")) for rel, data in files.items()]
        return self.call("POST", "/v1/campaigns", files=parts, data={**FAST, **form})

    def wait(self, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT
        while True:
            body: dict[str, Any] = self.call("GET", f"/v1/jobs/{job_id}").json()
            if body["state"] in ("succeeded", "failed") or time.monotonic() > deadline:
                return body
            time.sleep(0.02)

    def assert_no_server_path(self) -> None:
        for body in self.bodies:
            assert str(self.tmp_path) not in body
            assert '"_work"' not in body and '"_root"' not in body and '"_manifest"' not in body


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[Any]:
    made: list[Api] = []

    def make(fake: FakeAnalyser | None = None, **settings: Any) -> Api:
        a = Api(tmp_path, fake or fake_analyser(), **settings)
        a.client.__enter__()
        made.append(a)
        return a

    yield make
    for a in made:
        a.client.__exit__(None, None, None)


def uploads_left(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "jobs" / "uploads"
    return list(folder.iterdir()) if folder.is_dir() else []


def test_upload_poll_result_report_and_files(api: Any, tmp_path: Path) -> None:
    a = api()
    r = a.upload()
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["state"], body["campaign"], body["recordings"], body["ads"]) == ("queued", "spring", 5, ["A", "B"])
    assert r.headers["Location"] == body["links"]["self"] == f"/v1/jobs/{body['job_id']}"
    job = a.wait(body["job_id"])
    assert job["state"] == "succeeded", job
    assert job["kind"] == "campaign" and job["details"]["recordings_done"] == 5
    assert job["params"]["manifest"] == "campaign.yaml" and job["params"]["options"]["bootstrap"] == 50
    result = a.call("GET", body["links"]["result"]).json()
    summary = result["result"]["summary"]
    assert summary["settings"]["bootstrap"] == 50 and summary["settings"]["seed"] == 3
    assert summary["ads"][0]["kpis"]["positive_share"]["value"] == pytest.approx(0.5)  # v1 happy, v2 angry
    assert {q["recording"] for q in summary["qc"]} == {rec for _, rec, _, _ in VIEWERS.values()}
    names = {f["name"]: f for f in result["files"]}
    assert {"series.csv", "summary.json", "kpis.csv", "qc.csv", "report.html"} <= set(names)
    series = a.call("GET", names["series.csv"]["url"])
    assert series.text.startswith("ad,second,emotion,mean,ci_low,ci_high,share_expressing,n_viewers")
    assert "recordings/v2.mp4" in a.call("GET", names["qc.csv"]["url"]).text
    report = a.call("GET", body["links"]["report"])
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "sandbox" in report.headers["content-security-policy"]
    assert "<html" in report.text and "spring" in report.text
    # the report's relative links (series.csv, kpis.csv, ...) resolve beside it, to the job's own files
    import re
    from urllib.parse import urljoin

    linked = sorted(set(re.findall(r'href="([\w./-]+\.(?:csv|json|parquet))"', report.text)))
    assert "series.csv" in linked
    for href in linked:
        got = a.call("GET", urljoin(body["links"]["report"], href))
        assert got.status_code == 200, href
    assert_error(a.call("GET", urljoin(body["links"]["report"], "nope.csv")), 404, "JobFileNotFound")
    assert a.call("GET", body["links"]["report"].replace("/report", "/..%2F..%2Fsummary.json")).status_code == 404
    a.call("GET", names["summary.json"]["url"])
    a.assert_no_server_path()
    assert uploads_left(tmp_path) == []  # uploads deleted once the job ended


def test_report_is_409_while_running_and_404_for_unknown_jobs(api: Any) -> None:
    fake = HoldingFake(fake_analyser())
    a = api(fake)
    try:
        job_id = a.upload().json()["job_id"]
        assert fake.holding.wait(WAIT)
        assert_error(a.call("GET", f"/v1/campaigns/{job_id}/report"), 409, "JobNotFinished", job_id)
        running = a.call("GET", f"/v1/jobs/{job_id}").json()
        assert running["state"] == "running" and running["message"] in ("checking the manifest", "0/5 recordings")
    finally:
        fake.release.set()
    assert a.wait(job_id)["state"] == "succeeded"
    assert a.call("GET", f"/v1/campaigns/{job_id}/report").status_code == 200
    assert_error(a.call("GET", "/v1/campaigns/nope/report"), 404, "JobNotFound")


def test_a_manifest_error_is_422_naming_the_line_and_creates_no_job(api: Any, tmp_path: Path) -> None:
    a = api()
    bad = manifest_text(extra="  - {viewer: v9, ad: C, recording: recordings/v1.mp4}\n")
    msg = assert_error(a.upload(manifest=bad), 422, "ManifestError", "campaign.yaml: 1 problem(s)", "line 11",
                       "unknown ad 'C'")
    assert str(tmp_path) not in msg
    assert a.call("GET", "/v1/jobs").json()["total"] == 0
    assert uploads_left(tmp_path) == []
    assert_error(a.upload(name="campaign.txt"), 422, "InvalidInput", "campaign.txt", ".yaml, .yml or .csv")


def test_a_file_the_manifest_names_but_was_not_uploaded_is_422_naming_it(api: Any, tmp_path: Path) -> None:
    a = api()
    files = recording_files()
    del files["recordings/v2.mp4"]
    assert_error(a.upload(files), 422, "ManifestError", "line 7", "recordings/v2.mp4", "not uploaded")
    escaping = manifest_text(extra="  - {viewer: v9, ad: A, recording: ../../v1.mp4}\n")
    assert_error(a.upload(manifest=escaping), 422, "InvalidInput", "outside the upload", "line 11", "../../v1.mp4")
    a.assert_no_server_path()
    assert uploads_left(tmp_path) == []


@pytest.mark.parametrize(("name", "words"), [
    ("../v1.mp4", "'..' is not allowed"),
    ("recordings/../../v1.mp4", "'..' is not allowed"),
    ("/etc/v1.mp4", "not an absolute path"),
    ("recordings\\v1.mp4", "backslash"),
    ("recordings//v1.mp4", "empty folder name"),
    ("recordings/v1.mp4", "given twice"),
    ("recordings", "both a file and a folder"),
    ("campaign.yaml", "given twice"),
])
def test_unsafe_or_clashing_file_names_are_422_naming_the_file(api: Any, tmp_path: Path, name: str, words: str) -> None:
    a = api()
    parts = [("manifest", ("campaign.yaml", manifest_text().encode(), "application/x-yaml"))]
    parts += [("files", (rel, data, "video/mp4")) for rel, data in recording_files().items()]
    parts.append(("files", (name, b"x", "video/mp4")))
    r = a.call("POST", "/v1/campaigns", files=parts, data=FAST)
    assert_error(r, 422, "InvalidInput", words, name.split("/")[0].split("\\")[0])
    assert uploads_left(tmp_path) == [] and not (tmp_path / "etc").exists()


def test_limits_on_files_bytes_and_options(api: Any) -> None:
    assert_error(api(max_campaign_files=3).upload(), 413, "MediaTooLarge", "more than 3 files", "limit is 3")
    small = api(max_campaign_bytes=200)
    assert_error(small.upload(), 413, "MediaTooLarge", "limit of 200 bytes")
    a = api()
    assert_error(a.upload(sample_fps="0"), 422, "InvalidInput", "sample_fps")
    assert_error(a.upload(bootstrap="5"), 422, "InvalidInput", "bootstrap")
    assert_error(a.upload(min_face_rate="1.5"), 422, "InvalidInput", "min_face_rate")


def test_resubmitting_with_one_more_viewer_analyses_only_that_viewer(api: Any) -> None:
    a = api()
    first = a.wait(a.upload().json()["job_id"])
    assert first["state"] == "succeeded"
    more = {**VIEWERS, "v6": ("A", "recordings/v6.mp4", "sadness", "young")}
    a.fake.rows.update(fake_analyser(more).rows)
    job_id = a.upload(recording_files(more), manifest_text(more)).json()["job_id"]
    assert a.wait(job_id)["state"] == "succeeded"
    result = a.call("GET", f"/v1/jobs/{job_id}/result").json()["result"]
    assert (result["recordings"], result["analysed"], result["from_cache"]) == (6, 1, 5)
    assert a.fake.calls == {"v1.mp4": 1, "v2.mp4": 1, "v3.mp4": 1, "v4.mp4": 1, "v5": 1, "v6.mp4": 1}


# ------------------------------------------------------------------ paths inside the data root


def from_path(a: Api, manifest_path: str, **options: Any) -> Any:
    return a.call("POST", "/v1/campaigns/from-path",
                  json={"manifest_path": manifest_path, "options": {"bootstrap": 50, **options}})


def test_a_campaign_inside_the_data_root_runs(api: Any, tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_campaign(root / "spring")
    a = api(data_root=root)
    r = from_path(a, "spring/campaign.yaml", seed=4)
    assert r.status_code == 202, r.text
    job = a.wait(r.json()["job_id"])
    assert job["state"] == "succeeded", job
    assert job["params"] == {"source": "data_root", "manifest": "spring/campaign.yaml", "campaign": "spring",
                             "recordings": 5, "ads": ["A", "B"], "options": job["params"]["options"]}
    summary = a.call("GET", f"/v1/jobs/{job['job_id']}/result").json()["result"]["summary"]
    assert summary["settings"]["seed"] == 4
    assert "recordings/v1.mp4" in {q["recording"] for q in summary["qc"]}  # relative to the manifest
    assert a.call("GET", r.json()["links"]["report"]).status_code == 200
    a.assert_no_server_path()
    assert (root / "spring" / "recordings" / "v1.mp4").is_file()  # the data root is never cleaned up


def test_paths_outside_the_data_root_are_403(api: Any, tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_campaign(root / "c")
    (tmp_path / "outside.mp4").write_bytes(b"secret")
    (tmp_path / "outside.yaml").write_text(manifest_text())
    os.symlink(tmp_path / "outside.mp4", root / "c" / "recordings" / "link.mp4")
    os.symlink(tmp_path / "outside.yaml", root / "c" / "link.yaml")
    a = api(data_root=root)
    for rec in ("../../outside.mp4", "recordings/link.mp4", "/etc/hostname"):
        (root / "c" / "campaign.yaml").write_text(manifest_text(extra=rec_line("v9", "A", rec)))
        assert_error(from_path(a, "c/campaign.yaml"), 403, "OutsideDataRoot", "c/campaign.yaml", "line 11", "outside")
    assert_error(from_path(a, "../outside.yaml"), 403, "OutsideDataRoot", "leads outside")
    assert_error(from_path(a, "c/link.yaml"), 403, "OutsideDataRoot", "leads outside")
    assert_error(from_path(a, str(root / "c" / "campaign.yaml")), 422, "InvalidInput", "relative to the data root")
    assert_error(from_path(a, "c/nothing.yaml"), 422, "InvalidInput", "no such file")
    assert_error(from_path(a, "c/campaign.yaml", sample_fps=-1), 422, "InvalidInput", "sample_fps")
    r = a.call("POST", "/v1/campaigns/from-path", json={"manifest_path": "c/campaign.yaml", "colour": "red"})
    assert_error(r, 422, "InvalidInput", "colour")
    assert a.call("GET", "/v1/jobs").json()["total"] == 0
    a.bodies = [b.replace(str(root / "c" / "campaign.yaml"), "") for b in a.bodies]  # the one path we sent
    a.assert_no_server_path()


def test_without_a_data_root_paths_are_403(api: Any) -> None:
    a = api()
    assert_error(from_path(a, "c/campaign.yaml"), 403, "Forbidden", "no data root", "POST /v1/campaigns")


def test_the_data_root_setting_reads_emolens_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from emolens.api.settings import Settings

    monkeypatch.setenv("EMOLENS_DATA_ROOT", str(tmp_path))
    assert Settings().data_root == tmp_path
    monkeypatch.setenv("EMOLENS_DATA_ROOT", "")
    assert Settings().data_root is None


# ------------------------------------------------------------------ the real engine


def real_upload(client: TestClient, videos: dict[str, bytes], duration_s: float) -> dict[str, Any]:
    """Upload one ad watched by each video (viewer = file stem) and wait for the job's result."""
    lines = [f"ads: [{{name: A, duration_s: {duration_s:g}}}]", "recordings:"]
    lines += [f"  - {{viewer: {Path(n).stem}, ad: A, recording: rec/{n}}}" for n in videos]
    parts = [("manifest", ("c.yaml", "\n".join(lines).encode(), "application/x-yaml"))]
    parts += [("files", (f"rec/{n}", data, "video/mp4")) for n, data in videos.items()]
    r = client.post("/v1/campaigns", files=parts, data={"sample_fps": "2", "bootstrap": "50"})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 300
    while (job := client.get(f"/v1/jobs/{job_id}").json())["state"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job["state"] == "succeeded", job
    result: dict[str, Any] = client.get(f"/v1/jobs/{job_id}/result").json()["result"]
    return result


def test_the_servers_own_analyzer_runs_campaigns(tmp_path: Path) -> None:
    """No fake: the default campaign analyser wraps the app's analyzer (a tiny generated model)."""
    modelfactory = pytest.importorskip("tests.inference.modelfactory", reason="needs onnx (dev dependency)")
    from tests.video.synth import write_video

    model = modelfactory.make_model(tmp_path / "tiny.onnx")
    video = write_video(tmp_path / "v1.avi", 30, fps=10.0).read_bytes()
    app = create_app(make_settings(model=str(model), detector="haar", jobs_dir=tmp_path / "jobs"))
    with TestClient(app) as client:
        result = real_upload(client, {"v1.avi": video}, 2.0)
    (qc,) = result["summary"]["qc"]
    assert (qc["recording"], qc["status"], qc["seconds"]) == ("rec/v1.avi", "excluded", 2)  # grey frames: no face
    assert "face" in qc["reason"] and result["analysed"] == 1


def test_real_clips_with_the_shipped_model(shared_data: Path, tmp_path: Path) -> None:
    clips = [shared_data / "media" / "videos" / n for n in ("fer_test.mp4", "fer_woman2.mp4")]
    if not all(c.is_file() for c in clips):
        pytest.skip("clips missing from shared/data/media/videos")
    app = create_app(make_settings(jobs_dir=tmp_path / "jobs"))
    with TestClient(app) as client:
        result = real_upload(client, {c.name: c.read_bytes() for c in clips}, 3.0)
    summary = result["summary"]
    assert {q["viewer"] for q in summary["qc"]} == {"fer_test", "fer_woman2"}
    assert max(q["face_found_rate"] for q in summary["qc"]) > 0.5
    assert str(tmp_path) not in str(result) and str(shared_data) not in str(result)
