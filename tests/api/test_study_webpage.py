"""The photo page grew up: in headless Chromium, a video and a campaign (manifest + files) are uploaded
with progress, their jobs followed to the end and their result files (and the campaign's report)
linked; the ad studies are listed. Runs the real engine on a real MediaRecorder WebM (no face in it:
the jobs still end with every file, the campaign's recording excluded by QC)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emolens.api.app import create_app
from tests.browser import chromium_driver
from tests.studies.fakes import WEBM

from .conftest import make_settings
from .live import live_server
from .test_study_browser import screenshot_dir, shot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

WAIT_S = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(create_app(make_settings(jobs_dir=tmp_path_factory.mktemp("jobs")))) as base:
        yield base


def finished_job(drv: Any, count: int) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def done(d: Any) -> Any:
        cards = d.find_elements(By.CSS_SELECTOR, "#job-results .job")
        if len(cards) == count and cards[0].get_attribute("data-status") in ("done", "error"):
            return cards[0]
        return False

    return WebDriverWait(drv, WAIT_S, poll_frequency=0.3).until(done, f"job {count} never ended")


def test_video_and_campaign_jobs_from_the_page(server: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    r = httpx.post(f"{server}/v1/studies", json={"name": "Autumn"}, timeout=30)
    assert r.status_code == 201
    rec = tmp_path / "rec.webm"
    shutil.copy(WEBM, rec)
    manifest = tmp_path / "campaign.yaml"
    manifest.write_text("campaign: Page test\nads:\n  - {name: spot, duration_s: 2}\n"
                        "recordings:\n  - {viewer: v1, ad: spot, recording: rec.webm, offset_s: 0.5}\n")
    with chromium_driver(tmp_path / "profile") as drv:
        drv.get(server + "/")
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(drv, 60).until(lambda d: "Autumn" in d.find_element(By.ID, "study-links").text)
        link = drv.find_element(By.CSS_SELECTOR, "#study-links a")
        assert link.get_attribute("href").endswith("/studies?study=" + r.json()["id"])

        drv.find_element(By.ID, "video-file").send_keys(str(WEBM))
        drv.find_element(By.CSS_SELECTOR, "#video-form button[type=submit]").click()
        card = finished_job(drv, 1)
        assert card.get_attribute("data-status") == "done", card.text
        names = [a.text for a in card.find_elements(By.CSS_SELECTOR, ".files a")]
        assert "summary.json" in names and "frames.csv" in names

        drv.find_element(By.ID, "campaign-manifest").send_keys(str(manifest))
        drv.find_element(By.ID, "campaign-files").send_keys(str(rec))
        drv.find_element(By.CSS_SELECTOR, "#campaign-form button[type=submit]").click()
        card = finished_job(drv, 2)
        assert card.get_attribute("data-status") == "done", card.text
        links = {a.text: a.get_attribute("href") for a in card.find_elements(By.CSS_SELECTOR, ".files a")}
        assert {"report.html", "qc.csv", "kpis.csv", "summary.json"} <= set(links)
        qc = httpx.get(links["qc.csv"], timeout=30).text
        assert "excluded" in qc  # the test pattern holds no face
        assert httpx.get(links["report.html"], timeout=30).status_code == 200
        shots = screenshot_dir(tmp_path)
        shot(drv, shots, "index-jobs-desktop")
        shot(drv, shots, "index-jobs-phone", width=390)
        severe = [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe


def test_a_refused_campaign_shows_the_named_error(server: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    manifest = tmp_path / "campaign.yaml"
    manifest.write_text("ads:\n  - {name: spot, duration_s: 2}\nrecordings:\n  - {viewer: v1, ad: spot, recording: "
                        "missing.webm}\n")
    with chromium_driver(tmp_path / "profile") as drv:
        drv.get(server + "/")
        drv.find_element(By.ID, "campaign-manifest").send_keys(str(manifest))
        drv.find_element(By.CSS_SELECTOR, "#campaign-form button[type=submit]").click()
        card = finished_job(drv, 1)
        assert card.get_attribute("data-status") == "error"
        assert "missing.webm" in card.find_element(By.CSS_SELECTOR, ".error-message").text


def test_a_bad_ad_is_refused_by_name_and_the_study_keeps_the_good_one(server: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    notes = tmp_path / "notes.webm"
    notes.write_text("meeting notes, not a video")
    with chromium_driver(tmp_path / "profile") as drv:
        drv.get(server + "/studies")
        WebDriverWait(drv, 60).until(lambda d: d.execute_script("return document.body.dataset.state") == "ready")
        drv.find_element(By.ID, "new-study").click()
        drv.find_element(By.ID, "f-name").send_keys("Winter")
        drv.find_element(By.ID, "f-ads").send_keys(f"{notes}\n{WEBM}")
        drv.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()
        WebDriverWait(drv, WAIT_S).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#d-ads tr")) == 2)
        errors = [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#create-status .error-message")]
        assert len(errors) == 1 and "notes.webm" in errors[0] and "UnsupportedMedia" in errors[0]
        assert "mediarecorder_vp8" in drv.find_element(By.ID, "d-ads").text
        assert drv.find_element(By.ID, "d-link").get_attribute("value").startswith(server + "/watch/")
