"""report.html in headless Chromium: no console error, charts drawn, legend toggles, a non-blank page.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package; skipped without them
except under ``CI=true`` (as tests/api/test_browser.py).
"""

from __future__ import annotations

import io
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
