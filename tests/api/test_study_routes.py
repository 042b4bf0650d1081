"""Study routes over HTTP with a decoding fake analyser: the marketer creates a study and uploads ads,
viewers run sessions (chunked resumable upload, finish, abandon), the study shows progress, QC and
the report; bad input gets named errors and leaves the rest of the study intact."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from emolens.api.app import create_app
from emolens.api.jobs_routes import JobService
from tests.studies.fakes import WEBM, DecodingFake

from .conftest import FakeFactory, image_bytes, make_settings

FAST = {"bootstrap": 20, "sample_fps": 5.0}
ENDED = ("succeeded", "partial", "failed")
KEY = {"X-API-Key": "sesame"}


def make_client(tmp_path: Path, fake: DecodingFake, **settings: Any) -> TestClient:
    config = make_settings(jobs_dir=tmp_path / "jobs", **settings)
    app = create_app(config, analyzer_factory=FakeFactory())
    jobs = JobService(config, app.state.engine, campaign_analyser=lambda _s: fake)
    jobs.extra_kinds = (app.state.studies.job_kind(lambda s: jobs.campaign_analyser(s)),)
    app.state.jobs = jobs
    return TestClient(app)


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, DecodingFake(), api_key="sesame") as c:
        yield c


def create_study(client: TestClient, **extra: Any) -> dict[str, Any]:
    body = {"name": "Spring launch", "questions": [{"key": "segment", "label": "Age", "choices": ["young", "old"]}],
            "options": FAST, **extra}
    r = client.post("/v1/studies", json=body, headers=KEY)
    assert r.status_code == 201, r.text
    study: dict[str, Any] = r.json()
    for name in ("spot_a", "spot_b"):
        r = client.post(f"/v1/studies/{study['id']}/ads", params={"name": name, "filename": f"{name}.webm"},
                        content=WEBM.read_bytes(), headers=KEY)
        assert r.status_code == 201, r.text
    return dict(client.get(f"/v1/studies/{study['id']}", headers=KEY).json())


def token_of(study: dict[str, Any]) -> str:
    return str(study["viewer_url"].rsplit("/", 1)[1])


def run_viewer(client: TestClient, token: str, answer: str, data: bytes | None = None) -> dict[str, Any]:
    r = client.post(f"/v1/watch/{token}/sessions", json={"answers": {"segment": answer}})
    assert r.status_code == 201, r.text
    start = r.json()
    base = f"/v1/watch/{token}/sessions/{start['session_id']}"
    data = WEBM.read_bytes() if data is None else data
    for offset in range(0, len(data), 20_000):
        r = client.post(f"{base}/recording", params={"offset": offset}, content=data[offset:offset + 20_000])
        assert r.status_code == 200, r.text
    timing = [{"ad_id": ad["id"], "completed": True, "segments": [[a, a + 1.2, 0.0, 1.2]]}
              for ad, a in zip(start["ads"], (0.2, 1.5), strict=True)]
    r = client.post(f"{base}/finish", json={"timing": timing, "mime": "video/webm;codecs=vp8"})
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "analysing"
    return {"base": base, **start}


def wait_analysed(client: TestClient, study_id: str, n: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        study: dict[str, Any] = client.get(f"/v1/studies/{study_id}", headers=KEY).json()
        jobs_done = all(s["analysis"]["state"] in ENDED for s in study["sessions"] if s["analysis"])
        counted = study["counts"]["analysed"] + study["counts"]["failed"]
        if counted >= n and study["report"]["viewers"] >= n and jobs_done:
            return study
        time.sleep(0.05)
    raise AssertionError(f"not analysed: {study}")


def test_two_viewers_fill_the_report(client: TestClient) -> None:
    study = create_study(client)
    assert [a["name"] for a in study["ads"]] == ["spot_a", "spot_b"]
    assert study["report"]["available"] is False
    token = token_of(study)
    page = client.get(f"/watch/{token}")
    assert page.status_code == 200 and "camera=(self)" in page.headers["permissions-policy"]
    info = client.get(f"/v1/watch/{token}").json()
    assert info["ads"] == 2 and "deleted as soon as it has been analysed" in info["consent"]["recorded"]
    run_viewer(client, token, "young")
    run_viewer(client, token, "old")
    done = wait_analysed(client, study["id"], 2)
    assert done["counts"]["analysed"] == 2 and done["counts"]["excluded"] == 0
    assert [s["viewer"] for s in done["sessions"]] == ["v001", "v002"]
    assert all(s["analysis"]["state"] == "succeeded" for s in done["sessions"])
    assert {q["status"] for s in done["sessions"] for q in s["qc"]} == {"kept"}
    assert [a["name"] for a in done["report"]["ads"]] == ["spot_a", "spot_b"]
    assert done["report"]["ads"][0]["kpis"]["positive_share"] == pytest.approx(1.0)
    report = client.get(done["report"]["url"], headers=KEY)
    assert report.status_code == 200 and "text/html" in report.headers["content-type"]
    kpis = client.get(done["report"]["files"]["kpis.csv"], headers=KEY)
    assert kpis.status_code == 200 and kpis.text.splitlines()[0].endswith("segment")
    listed = client.get("/v1/studies", headers=KEY).json()["studies"]
    assert [s["id"] for s in listed] == [study["id"]] and listed[0]["counts"]["analysed"] == 2


def test_resume_after_a_drop_and_refuse_a_gap(client: TestClient) -> None:
    token = token_of(create_study(client))
    start = client.post(f"/v1/watch/{token}/sessions", json={"answers": {}}).json()
    base = f"/v1/watch/{token}/sessions/{start['session_id']}"
    assert client.post(f"{base}/recording", params={"offset": 0}, content=b"x" * 500).json() == {"received": 500}
    gap = client.post(f"{base}/recording", params={"offset": 900}, content=b"y")
    assert gap.status_code == 409 and gap.json()["error"]["type"] == "UploadOffsetMismatch"
    assert client.get(base).json() == {"state": "recording", "received": 500, "reason": None}
    resend = client.post(f"{base}/recording", params={"offset": 400}, content=b"x" * 100 + b"z" * 50)
    assert resend.json() == {"received": 550}


def test_abandon_and_camera_refused_leave_a_clear_state(client: TestClient) -> None:
    study = create_study(client)
    token = token_of(study)
    start = client.post(f"/v1/watch/{token}/sessions", json={"answers": {"segment": "old"}}).json()
    base = f"/v1/watch/{token}/sessions/{start['session_id']}"
    r = client.post(f"{base}/abandon", json={"reason": "camera access refused"})
    assert r.json() == {"state": "abandoned", "received": 0, "reason": "camera access refused"}
    late = client.post(f"{base}/recording", params={"offset": 0}, content=b"x")
    assert late.status_code == 409 and late.json()["error"]["type"] == "SessionStateError"
    run_viewer(client, token, "young")
    done = wait_analysed(client, study["id"], 1)
    assert [(s["viewer"], s["state"], s["reason"]) for s in done["sessions"]] == [
        ("v001", "abandoned", "camera access refused"), ("v002", "analysed", None)]
    assert done["counts"]["abandoned"] == 1 and done["report"]["viewers"] == 1


def test_corrupt_upload_is_excluded_and_the_study_goes_on(client: TestClient) -> None:
    study = create_study(client)
    token = token_of(study)
    run_viewer(client, token, "old", data=WEBM.read_bytes()[:9000])  # truncated: about 0.3 s survive
    run_viewer(client, token, "young")
    done = wait_analysed(client, study["id"], 2)
    first = done["sessions"][0]
    assert first["state"] == "analysed" and {q["status"] for q in first["qc"]} == {"excluded"}
    assert all("incomplete or damaged" in q["reason"] for q in first["qc"]), first["qc"]
    assert {q["status"] for q in done["sessions"][1]["qc"]} == {"kept"}
    assert client.get("/healthz").status_code == 200


def test_named_errors(client: TestClient) -> None:
    study = create_study(client)
    sid, token = study["id"], token_of(study)
    r = client.post(f"/v1/studies/{sid}/ads", params={"name": "memo", "filename": "memo.mp4"},
                    content=b"this is not a video", headers=KEY)
    assert r.status_code == 415 and r.json()["error"]["type"] == "UnsupportedMedia"
    assert "memo.mp4" in r.json()["error"]["message"]
    assert [a["name"] for a in client.get(f"/v1/studies/{sid}", headers=KEY).json()["ads"]] == ["spot_a", "spot_b"]
    assert client.get("/v1/watch/not-a-token").json()["error"]["type"] == "StudyNotFound"
    assert client.post("/v1/watch/not-a-token/sessions", json={}).status_code == 404
    assert client.get(f"/v1/watch/{token}/sessions/nope").status_code == 404
    assert client.get("/v1/studies", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post(f"/v1/studies/{sid}/ads", params={"name": "x"}, content=b"1").status_code == 401
    bad = client.post("/v1/studies", json={"name": "x", "options": {"sample_fps": 0}}, headers=KEY)
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "InvalidInput"
    wrong = client.post(f"/v1/watch/{token}/sessions", json={"answers": {"segment": "teen"}})
    assert wrong.status_code == 422 and "not one of" in wrong.json()["error"]["message"]
    start = client.post(f"/v1/watch/{token}/sessions", json={"answers": {}}).json()
    base = f"/v1/watch/{token}/sessions/{start['session_id']}"
    client.post(f"{base}/recording", params={"offset": 0}, content=WEBM.read_bytes())
    timing = [{"ad_id": "zzz", "completed": True, "segments": [[0, 1, 0, 1]]}]
    r = client.post(f"{base}/finish", json={"timing": timing})
    assert r.status_code == 422 and "does not show" in r.json()["error"]["message"]
    assert client.get(base).json()["state"] == "recording"  # still open: the page may send a good timing


def test_expired_link_is_gone(tmp_path: Path) -> None:
    with make_client(tmp_path, DecodingFake()) as client:
        closes = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
        study = create_study(client, closes_at=closes)
        time.sleep(2.1)
        r = client.post(f"/v1/watch/{token_of(study)}/sessions", json={"answers": {}})
        assert r.status_code == 410 and r.json()["error"]["type"] == "StudyClosed"
        assert client.get(f"/v1/studies/{study['id']}").json()["closed"] is True


def test_chunks_over_the_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMOLENS_STUDY_MAX_CHUNK_BYTES", "4096")
    monkeypatch.setenv("EMOLENS_STUDY_MAX_AD_BYTES", str(len(WEBM.read_bytes())))
    with make_client(tmp_path, DecodingFake()) as client:
        token = token_of(create_study(client))
        start = client.post(f"/v1/watch/{token}/sessions", json={"answers": {}}).json()
        base = f"/v1/watch/{token}/sessions/{start['session_id']}"
        r = client.post(f"{base}/recording", params={"offset": 0}, content=b"x" * 5000)
        assert r.status_code == 413 and r.json()["error"]["type"] == "MediaTooLarge"
        assert client.get(base).json()["received"] == 0


def test_face_check_and_delete(client: TestClient) -> None:
    study = create_study(client)
    token = token_of(study)
    r = client.post(f"/v1/watch/{token}/face-check", content=image_bytes("PNG", (80, 60)))
    body = r.json()
    assert r.status_code == 200 and body["face_found"] is True and body["faces"] == 1  # the fake finds one face
    assert body["box"] == [0.25, 0.25, 0.5, 0.5] and 0 < body["brightness"] < 255
    bad = client.post(f"/v1/watch/{token}/face-check", content=b"not an image")
    assert bad.status_code == 415
    run_viewer(client, token, "old")
    wait_analysed(client, study["id"], 1)
    assert client.delete(f"/v1/studies/{study['id']}", headers=KEY).status_code == 204
    assert client.get(f"/v1/studies/{study['id']}", headers=KEY).status_code == 404
    assert client.get(f"/v1/watch/{token}").status_code == 404


def test_ads_are_served_to_the_viewer_with_ranges(client: TestClient) -> None:
    token = token_of(create_study(client))
    ad = client.post(f"/v1/watch/{token}/sessions", json={"answers": {}}).json()["ads"][0]
    part = client.get(ad["url"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == WEBM.read_bytes()[:100]
    assert part.headers["content-type"] == "video/webm"
    assert client.get(f"/v1/watch/{token}/ads/nope").status_code == 404


def test_each_api_client_sees_only_its_own_studies(tmp_path: Path) -> None:
    with make_client(tmp_path, DecodingFake(), api_keys=["alpha", "beta"]) as client:
        a, b = {"X-API-Key": "alpha"}, {"X-API-Key": "beta"}
        mine = client.post("/v1/studies", json={"name": "Alpha's", "options": FAST}, headers=a).json()
        sid = mine["id"]
        assert [s["id"] for s in client.get("/v1/studies", headers=a).json()["studies"]] == [sid]
        assert client.get("/v1/studies", headers=b).json()["studies"] == []
        for method, url in (("GET", f"/v1/studies/{sid}"), ("DELETE", f"/v1/studies/{sid}"),
                            ("GET", f"/v1/studies/{sid}/report"), ("POST", f"/v1/studies/{sid}/ads?name=x")):
            r = client.request(method, url, headers=b, content=WEBM.read_bytes() if method == "POST" else None)
            assert r.status_code == 404 and r.json()["error"]["type"] == "StudyNotFound", (method, url, r.text)
        assert client.post(f"/v1/studies/{sid}/ads", params={"name": "spot", "filename": "spot.webm"},
                           content=WEBM.read_bytes(), headers=a).status_code == 201
        # the study's analysis jobs belong to its client too
        run_viewer_one_ad(client, token_of(mine))
        deadline = time.monotonic() + 60
        while not (jobs := client.get("/v1/jobs", params={"kind": "study"}, headers=a).json()["jobs"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.get("/v1/jobs", params={"kind": "study"}, headers=b).json()["jobs"] == []
        assert client.get(f"/v1/jobs/{jobs[0]['job_id']}", headers=b).status_code == 404
        assert client.get(f"/v1/jobs/{jobs[0]['job_id']}", headers=a).status_code == 200


def run_viewer_one_ad(client: TestClient, token: str) -> None:
    start = client.post(f"/v1/watch/{token}/sessions", json={"answers": {}}).json()
    base = f"/v1/watch/{token}/sessions/{start['session_id']}"
    assert client.post(f"{base}/recording", params={"offset": 0}, content=WEBM.read_bytes()).status_code == 200
    timing = [{"ad_id": start["ads"][0]["id"], "completed": True, "segments": [[0.2, 1.4, 0.0, 1.2]]}]
    assert client.post(f"{base}/finish", json={"timing": timing}).status_code == 202
