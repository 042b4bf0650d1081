"""A study end to end in headless Chromium: the real viewer page, a fake camera fed from a real clip.

The marketer creates a study with two ads over HTTP; two viewers go through the real page (consent
and a question, camera check against the real face detector, both ads full screen while
``MediaRecorder`` records, chunked upload, the page's timing); the server analyses each session
with the shipped model through the job system; the study's campaign report then has both ads and
both viewers with QC and KPIs. A third browser refuses the camera: the page says so and the
session is abandoned with the reason. The kept recordings are the browser's own WebM files: their
container says no duration, the study code measures it.

Chromium: ``--use-fake-device-for-media-stream`` + ``--use-file-for-fake-video-capture`` (a Y4M
made from ``../shared/data/media/videos/fer_woman2.mp4``) + ``--use-fake-ui-for-media-stream``
(accept the prompt) or ``--deny-permission-prompts`` (refuse it). Short ads and 2 analysed frames
per second keep it to well under a minute of analysis on a 2-core machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest

from emolens.api.app import create_app
from emolens.studies.media import last_frame_time
from emolens.studies.store import StudyStore
from tests.browser import chromium_driver

from .conftest import make_settings
from .live import live_server

pytestmark = [pytest.mark.browser, pytest.mark.shared, pytest.mark.timeout(600)]

CLIP = "fer_woman2.mp4"
AD_CLIPS = ("face_recognition_short_hamilton_clip.mp4", "youtubefaces_0492_03_009_bill_gates.avi")
AD_SECONDS = 2.5
WAIT_S = 180
ENDED = ("succeeded", "partial", "failed")


def write_y4m(src: Path, dst: Path, seconds: float, fps: int = 10) -> None:
    """The first ``seconds`` of ``src`` as a Y4M file (I420) at ``fps``: Chromium's fake camera loops it."""
    cap = cv2.VideoCapture(str(src))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) // 2 * 2, int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) // 2 * 2
    n = 0
    with dst.open("wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        while n < seconds * fps:
            ok, frame = cap.read()
            if not ok:
                break
            if cap.get(cv2.CAP_PROP_POS_MSEC) / 1000 + 1e-6 < n / fps:
                continue
            out.write(b"FRAME\n" + cv2.cvtColor(frame[:h, :w], cv2.COLOR_BGR2YUV_I420).tobytes())
            n += 1
    cap.release()
    assert n > fps, f"{src} gave only {n} frames"


def write_ad(src: Path, dst: Path, seconds: float, fps: int = 15) -> None:
    """A short VP8 WebM ad cut from ``src`` (a format every Chromium plays)."""
    cap = cv2.VideoCapture(str(src))
    writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"VP80"), fps, (320, 180))
    n = 0
    while n < seconds * fps:
        ok, frame = cap.read()
        if not ok:
            break
        writer.write(cv2.resize(frame, (320, 180)))
        n += 1
    writer.release()
    cap.release()


@contextmanager
def camera_browser(profile: Path, camera: Path | None, allow: bool,
                   window: tuple[int, int] = (1100, 800)) -> Iterator[Any]:
    flags = ["--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required",
             "--use-fake-ui-for-media-stream" if allow else "--deny-permission-prompts"]
    if camera is not None:
        flags.append(f"--use-file-for-fake-video-capture={camera}")
    with chromium_driver(profile, window, flags) as drv:
        yield drv


def wait_state(drv: Any, *states: str, timeout: float = WAIT_S) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    def reached(d: Any) -> Any:
        state = d.execute_script("return document.body.dataset.state")
        return state if state in states else False

    try:
        return str(WebDriverWait(drv, timeout, poll_frequency=0.2).until(reached))
    except Exception:
        state = drv.execute_script("return document.body.dataset.state")
        text = drv.execute_script("return document.body.innerText")
        raise AssertionError(f"page state {state!r}, not {states}: {text[:600]}") from None


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict[str, Path]:
    videos = shared_data / "media" / "videos"
    folder = tmp_path_factory.mktemp("study-media")
    files = {"camera": folder / "camera.y4m", "ad1": folder / "spot_a.webm", "ad2": folder / "spot_b.webm"}
    write_y4m(videos / CLIP, files["camera"], seconds=8)
    write_ad(videos / AD_CLIPS[0], files["ad1"], AD_SECONDS)
    write_ad(videos / AD_CLIPS[1], files["ad2"], AD_SECONDS)
    return files


@pytest.fixture(scope="module")
def jobs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jobs")


@pytest.fixture(scope="module")
def server(jobs_dir: Path) -> Iterator[str]:
    with live_server(create_app(make_settings(jobs_dir=jobs_dir))) as base:
        yield base


def create_study(base: str, media: dict[str, Path]) -> dict[str, Any]:
    body = {"name": "Spring launch", "keep_recordings": True, "retention_days": 7,
            "questions": [{"key": "segment", "label": "Your age group", "choices": ["18-34", "35+"],
                           "required": True}],
            "options": {"sample_fps": 2, "bootstrap": 200}}
    r = httpx.post(f"{base}/v1/studies", json=body, timeout=30)
    assert r.status_code == 201, r.text
    study: dict[str, Any] = r.json()
    for name in ("ad1", "ad2"):
        r = httpx.post(f"{base}/v1/studies/{study['id']}/ads", params={"name": media[name].stem,
                       "filename": media[name].name}, content=media[name].read_bytes(), timeout=60)
        assert r.status_code == 201, r.text
    return study


def shot(drv: Any, folder: Path, name: str, width: int | None = None) -> Path:
    """A screenshot of the whole page (``width`` px wide if given), checked not blank."""
    import numpy as np
    from PIL import Image

    size = drv.get_window_size()
    drv.set_window_size(width or size["width"], 844 if width else size["height"])
    time.sleep(0.3)
    tall = int(drv.execute_script("return document.documentElement.scrollHeight"))
    drv.set_window_size(width or size["width"], min(3000, max(tall + 140, 600)))  # the whole page
    time.sleep(0.3)
    path = folder / f"{name}.png"
    assert drv.save_screenshot(str(path))
    drv.set_window_size(size["width"], size["height"])
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.std() > 5, f"{name}: the screenshot is blank"
    return path


def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: ``$EMOLENS_SCREENSHOTS`` (to look at them) or the test's tmp folder."""
    folder = Path(os.environ.get("EMOLENS_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def create_in_page(drv: Any, base: str, media: dict[str, Path], shots: Path) -> dict[str, Any]:
    """The marketer creates the study with the page's form; returns the study as the API shows it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    drv.get(base + "/studies")
    WebDriverWait(drv, 60).until(lambda d: d.execute_script("return document.body.dataset.state") == "ready")
    drv.find_element(By.ID, "new-study").click()
    drv.find_element(By.ID, "f-name").send_keys("Spring launch")
    drv.find_element(By.ID, "f-ads").send_keys(f"{media['ad1']}\n{media['ad2']}")
    drv.find_element(By.ID, "f-questions").send_keys("segment: Your age group | 18-34, 35+")
    drv.find_element(By.ID, "f-keep").click()
    fps = drv.find_element(By.ID, "f-fps")
    fps.clear()
    fps.send_keys("2")
    shot(drv, shots, "studies-create-desktop")
    drv.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()
    WebDriverWait(drv, 120).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#d-ads tr")) == 3,
                                  "the study's two ads never showed")
    link = drv.find_element(By.ID, "d-link").get_attribute("value")
    (study,) = [s for s in httpx.get(f"{base}/v1/studies", timeout=30).json()["studies"] if s["viewer_url"] == link]
    return dict(study)


def run_viewer(drv: Any, url: str, answer: str, shots: Path | None = None) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    drv.get(url)
    wait_state(drv, "consent", timeout=60)
    if shots is not None:
        shot(drv, shots, "watch-consent-desktop")
        shot(drv, shots, "watch-consent-phone", width=390)
    Select(drv.find_element(By.CSS_SELECTOR, "select[name=segment]")).select_by_value(answer)
    drv.find_element(By.ID, "agree").click()
    drv.find_element(By.ID, "agree-button").click()
    wait_state(drv, "camera", timeout=60)
    WebDriverWait(drv, WAIT_S, poll_frequency=0.3).until(
        lambda d: d.find_element(By.ID, "start-button").is_enabled(), "the camera check never found the face")
    assert drv.find_element(By.ID, "check-face").get_attribute("data-ok") == "yes"
    assert drv.find_element(By.ID, "face-box").is_displayed()  # the face found, framed on the preview
    if shots is not None:
        shot(drv, shots, "watch-camera-desktop")
        shot(drv, shots, "watch-camera-phone", width=390)
    drv.find_element(By.ID, "start-button").click()
    wait_state(drv, "playing", "uploading", "done", timeout=30)
    if shots is not None and drv.execute_script("return document.body.dataset.state") == "playing":
        shot(drv, shots, "watch-playing-desktop")
    assert wait_state(drv, "done", "error", "stopped") == "done"
    if shots is not None:
        shot(drv, shots, "watch-done-phone", width=390)


def wait_report(base: str, study_id: str) -> dict[str, Any]:
    """The study once both sessions' jobs have ended and the report covers both viewers."""
    deadline = time.monotonic() + WAIT_S
    while True:
        got: dict[str, Any] = httpx.get(f"{base}/v1/studies/{study_id}", timeout=30).json()
        jobs_done = all(s["analysis"] and s["analysis"]["state"] in ENDED for s in got["sessions"])
        if (jobs_done and got["report"]["viewers"] >= 2) or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def marketer_page(drv: Any, base: str, study_id: str, shots: Path) -> None:
    """The study page shows both viewers analysed, QC and the KPI table; screenshots at two widths."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    drv.get(f"{base}/studies?study={study_id}")
    WebDriverWait(drv, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#d-kpis tr")) == 3,
                                 "the KPI table never showed")
    states = [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#d-sessions td:nth-child(2) .pill")]
    assert states == ["analysed", "analysed"]
    assert len(drv.find_elements(By.CSS_SELECTOR, "#d-sessions td:nth-child(5) .pill")) == 4  # QC: 2 viewers x 2 ads
    assert "report.html" in drv.find_element(By.ID, "d-report").text
    shot(drv, shots, "studies-detail-desktop")
    shot(drv, shots, "studies-detail-phone", width=390)


def test_two_viewers_in_the_browser_fill_the_report(server: str, jobs_dir: Path, media: dict[str, Path],
                                                    tmp_path: Path) -> None:
    shots = screenshot_dir(tmp_path)
    with camera_browser(tmp_path / "profile", media["camera"], allow=True) as drv:
        study = create_in_page(drv, server, media, shots)
        for answer in ("18-34", "35+"):
            run_viewer(drv, study["viewer_url"], answer, shots if answer == "18-34" else None)
        severe = [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"
                  and "favicon" not in e["message"]]
        assert not severe, severe
        got = wait_report(server, study["id"])
        marketer_page(drv, server, study["id"], shots)
    assert got["counts"]["analysed"] == 2, got["sessions"]
    assert [s["answers"]["segment"] for s in got["sessions"]] == ["18-34", "35+"]
    assert [a["name"] for a in got["report"]["ads"]] == ["spot_a", "spot_b"]
    summary = httpx.get(server + got["report"]["files"]["summary.json"], timeout=30).json()
    assert {(q["viewer"], q["ad"]) for q in summary["qc"]} == {
        (v, a) for v in ("v001", "v002") for a in ("spot_a", "spot_b")}
    kept = [q for q in summary["qc"] if q["status"] == "kept"]
    assert kept, summary["qc"]  # the woman's face is found in the camera picture
    assert all(q["face_found_rate"] is not None and q["brightness"] is not None for q in summary["qc"])
    for ad in summary["ads"]:
        assert ad["viewers_total"] == 2
        if ad["viewers_kept"]:
            assert ad["kpis"]["face_found_rate"]["value"] > 0.5
            assert ad["kpis"]["valence_index"]["value"] is not None
    report = httpx.get(server + got["report"]["url"], timeout=30)
    assert report.status_code == 200 and "spot_b" in report.text
    assert all(s["analysis"]["state"] == "succeeded" for s in got["sessions"])
    # the page's timing: each ad played once to its end, in order, its stretches of recording as long
    # as the ad time they cover, all inside the recording
    store = StudyStore(jobs_dir / "studies")
    try:
        sessions = store.sessions(study["id"])
    finally:
        store.close()
    for session in sessions:
        assert [t["completed"] for t in session.timing] == [True, True]
        assert [t["ad_id"] for t in session.timing] == list(session.ad_order)
        end = last_frame_time(jobs_dir / "studies" / study["id"] / "sessions" / f"{session.id}.webm")[0]
        for t in session.timing:
            played = sum(b - a for _, _, a, b in t["segments"])
            wall = sum(b - a for a, b, _, _ in t["segments"])
            assert played == pytest.approx(AD_SECONDS, abs=0.25) and wall == pytest.approx(played, abs=0.3)
            assert t["segments"][0][0] >= 0 and t["segments"][-1][1] <= end + 0.5
    # the study keeps its recordings: they are the browser's own MediaRecorder WebM files, whose
    # container gives no frame count or duration; the study measured them by their frames
    webms = sorted((jobs_dir / "studies" / study["id"] / "sessions").glob("*.webm"))
    assert len(webms) == 2
    for webm in webms:
        cap = cv2.VideoCapture(str(webm), cv2.CAP_FFMPEG)
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        cap.release()
        assert not 0 < count < 1e6, f"{webm.name}: the container now says {count} frames"
        last, frames, _ = last_frame_time(webm)
        assert frames > 10 and last >= 2 * AD_SECONDS - 0.5


def test_camera_refused_leaves_a_clear_state(server: str, media: dict[str, Path], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    study = create_study(server, media)
    with camera_browser(tmp_path / "profile", None, allow=False) as drv:
        drv.get(study["viewer_url"])
        wait_state(drv, "consent", timeout=60)
        Select(drv.find_element(By.CSS_SELECTOR, "select[name=segment]")).select_by_value("35+")
        drv.find_element(By.ID, "agree").click()
        drv.find_element(By.ID, "agree-button").click()
        assert wait_state(drv, "denied", "error", "playing", timeout=60) == "denied"
        assert "Nothing was recorded" in drv.find_element(By.ID, "ended-text").text
        shot(drv, screenshot_dir(tmp_path), "watch-denied-phone", width=390)
    deadline = time.monotonic() + 30
    while True:
        sessions = httpx.get(f"{server}/v1/studies/{study['id']}", timeout=30).json()["sessions"]
        if (sessions and sessions[0]["state"] == "abandoned") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(s["state"], s["reason"]) for s in sessions] == [("abandoned", "camera access refused")]


def start_watching(drv: Any, url: str) -> None:
    """Consent, camera check, start: returns once the first ad plays."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    drv.get(url)
    wait_state(drv, "consent", timeout=60)
    Select(drv.find_element(By.CSS_SELECTOR, "select[name=segment]")).select_by_value("35+")
    drv.find_element(By.ID, "agree").click()
    drv.find_element(By.ID, "agree-button").click()
    WebDriverWait(drv, WAIT_S, poll_frequency=0.3).until(lambda d: d.find_element(By.ID, "start-button").is_enabled())
    drv.find_element(By.ID, "start-button").click()
    wait_state(drv, "playing", timeout=30)


def sessions_of(base: str, study_id: str, until: Any, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        sessions: list[dict[str, Any]] = httpx.get(f"{base}/v1/studies/{study_id}", timeout=30).json()["sessions"]
        if until(sessions) or time.monotonic() > deadline:
            return sessions
        time.sleep(0.3)


def test_closing_the_page_mid_ad_abandons_the_session(server: str, jobs_dir: Path, media: dict[str, Path],
                                                      tmp_path: Path) -> None:
    study = create_study(server, media)
    with camera_browser(tmp_path / "profile", media["camera"], allow=True) as drv:
        start_watching(drv, study["viewer_url"])
        time.sleep(1.5)  # a chunk or so uploaded
        drv.get("about:blank")  # the tab leaves: pagehide sends the beacon
        sessions = sessions_of(server, study["id"], lambda s: s and s[0]["state"] == "abandoned")
    assert [(s["state"], s["reason"]) for s in sessions] == [("abandoned", "the viewer closed the page")]
    assert not list((jobs_dir / "studies" / study["id"] / "sessions").glob("*.webm"))  # the partial recording


class FlakyChunks:
    """Answers the first ``fail`` recording chunks with 503 before reading them (a server in trouble)."""

    def __init__(self, app: Any, fail: int) -> None:
        self.app, self.fail, self.refused = app, fail, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/recording") and self.refused < self.fail:
            self.refused += 1
            body = b'{"error": {"type": "Unavailable", "message": "try again"}}'
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def test_the_upload_resumes_after_failures(media: dict[str, Path], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # requests of at most 32 KB: the page cuts each recorder chunk into several
    monkeypatch.setenv("EMOLENS_STUDY_MAX_CHUNK_BYTES", str(32 * 1024))
    jobs = tmp_path / "jobs"
    flaky = FlakyChunks(create_app(make_settings(jobs_dir=jobs)), fail=3)
    with live_server(flaky) as base, camera_browser(tmp_path / "profile", media["camera"], allow=True) as drv:
        study = create_study(base, media)
        start_watching(drv, study["viewer_url"])
        assert wait_state(drv, "done", "error", "stopped") == "done"
        sessions = sessions_of(base, study["id"], lambda s: s and s[0]["state"] in ("analysed", "failed"),
                               timeout=WAIT_S)
    assert flaky.refused == 3
    assert sessions[0]["state"] == "analysed", sessions
    webm = next((jobs / "studies" / study["id"] / "sessions").glob("*.webm"))
    assert sessions[0]["received_bytes"] == webm.stat().st_size
    assert last_frame_time(webm)[0] >= 2 * AD_SECONDS - 0.5  # nothing lost: the whole session decodes
