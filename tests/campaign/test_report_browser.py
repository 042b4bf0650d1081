"""report.html in headless Chromium: no console error, charts drawn, legend toggles, a non-blank page.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package; skipped without them
except under ``CI=true`` (as tests/api/test_browser.py).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from emolens.campaign.report import write_report
from tests.browser import chromium_driver

from .test_report import make_series, make_summary

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium_driver(tmp_path_factory.mktemp("chromium-profile"), window=(1280, 2400)) as drv:
        yield drv


def severe(drv: Any) -> list[str]:
    return [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"]


def open_report(drv: Any, path: Path) -> None:
    drv.get(path.resolve().as_uri())
    drv.execute_script("return document.readyState")


def test_report_renders_without_errors(driver: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    path = write_report(make_summary(tmp_path), make_series({"alpha": 8, "beta & co": 7}), tmp_path)
    open_report(driver, path)
    assert severe(driver) == []
    charts = driver.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert len(charts) == 4
    for chart in charts:
        paths = chart.find_elements(By.CSS_SELECTOR, "path.line")
        assert len(paths) == 7
        assert all(len(p.get_attribute("d") or "") > 10 for p in paths)
        assert chart.size["width"] > 300 and chart.size["height"] > 100
    thumb = driver.find_element(By.CSS_SELECTOR, "img.thumb")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", thumb) == 64
    assert driver.find_element(By.ID, "verdict").text.startswith("Which ad worked better?")

    png = driver.get_screenshot_as_png()
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert img.std() > 5, "the screenshot is blank"
    assert len(np.unique(img.reshape(-1, 3), axis=0)) >= 50, "the screenshot is nearly uniform"


def test_legend_toggles_a_series(driver: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    path = write_report(make_summary(tmp_path), make_series({"alpha": 8, "beta & co": 7}), tmp_path)
    open_report(driver, path)
    figure = driver.find_element(By.CSS_SELECTOR, "figure.chart-box")
    button = figure.find_element(By.CSS_SELECTOR, '.legend-item[data-series="anger"]')
    group = figure.find_element(By.CSS_SELECTOR, 'g.series[data-series="anger"]')
    assert group.is_displayed()
    button.click()
    assert button.get_attribute("aria-pressed") == "false"
    assert not group.is_displayed()
    other = driver.find_elements(By.CSS_SELECTOR, 'g.series[data-series="anger"]')[1]
    assert other.is_displayed()  # only the chart the legend belongs to
    button.click()
    assert group.is_displayed()
    assert severe(driver) == []


def _full_campaign(tmp_path: Path) -> Path:
    """A real analyze_campaign run (fake analyser that sets ``looking``, an ad video for the
    filmstrip): the report with valence, attention, filmstrip and per-viewer drill-down."""
    from emolens.campaign import CampaignSettings, analyze_campaign
    from tests.video.synth import write_video

    from .fakes import FakeAnalyser, frame, probs

    write_video(tmp_path / "ad.avi", 80, fps=10.0)
    rows, lines = {}, []
    for i in range(6):
        name = f"r{i}.avi"
        write_video(tmp_path / name, 80, fps=10.0)
        emo = ["happiness", "neutral", "surprise", "sadness", "happiness", "happiness", "anger", "neutral"]
        rows[name] = [frame(t / 2, probs(emo[(int(t / 2) + i) % 8], 0.5 + 0.05 * i), looking=(t + i) % 7 != 0)
                      for t in range(16)]
        lines.append(f"  - {{viewer: v{i}, ad: spot, recording: {name}, segment: {'ab'[i % 2]}}}")
    (tmp_path / "m.yaml").write_text("campaign: browser\nads:\n  - {name: spot, duration_s: 8, video: ad.avi}\n"
                                     "recordings:\n" + "\n".join(lines) + "\n")
    res = analyze_campaign(tmp_path / "m.yaml", tmp_path / "out", FakeAnalyser(rows), CampaignSettings(bootstrap=50),
                           progress=False, annotate=True)
    return res.report


def test_full_report_draws_valence_attention_and_filmstrip(driver: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    path = _full_campaign(tmp_path)
    open_report(driver, path)
    assert severe(driver) == []
    for chart in ("valence", "attention"):
        box = driver.find_element(By.CSS_SELECTOR, f'figure[data-chart="{chart}"]')
        lines = box.find_elements(By.CSS_SELECTOR, "svg.chart path.line")
        assert lines and all(len(p.get_attribute("d") or "") > 10 for p in lines)
        assert box.size["width"] > 300 and box.size["height"] > 150
    valence = driver.find_element(By.CSS_SELECTOR, 'figure[data-chart="valence"]')
    moments = json.loads((path.parent / "summary.json").read_text())["ads"][0]["key_moments"]
    on_valence = [m for m in moments if m["emotion"] == "valence"]
    assert moments and len(valence.find_elements(By.CSS_SELECTOR, "g.mark")) == len(on_valence)
    mean = driver.find_element(By.CSS_SELECTOR, 'figure[data-chart="mean"]')
    assert len(mean.find_elements(By.CSS_SELECTOR, "g.mark")) == len(moments) - len(on_valence)  # every moment ringed
    strip = valence.find_elements(By.CSS_SELECTOR, "svg.filmstrip image")
    assert len(strip) == 8 and all(i.size["width"] > 20 for i in strip)
    viewer = driver.find_element(By.CSS_SELECTOR, "details.viewer")
    viewer.find_element(By.TAG_NAME, "summary").click()
    assert viewer.find_element(By.CSS_SELECTOR, "svg.chart").is_displayed()
    video = viewer.find_element(By.CSS_SELECTOR, "video.viewer-video")  # the annotated H.264 recording plays
    assert video.get_attribute("preload") == "none"  # nothing loads before it is asked for
    state = driver.execute_async_script(
        "var v = arguments[0], done = arguments[arguments.length - 1];"
        "function report() { done([v.readyState, v.videoWidth, v.error && v.error.code]); }"
        "if (v.readyState >= 2) { report(); } else { v.addEventListener('loadeddata', report);"
        " v.addEventListener('error', report); v.play(); setTimeout(report, 20000); }", video)
    assert state[2] is None and state[0] >= 2 and state[1] > 0, state
    assert severe(driver) == []
    png = tmp_path / "report.png"
    driver.save_screenshot(str(png))
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.std() > 5 and len(np.unique(img.reshape(-1, 3), axis=0)) >= 50
