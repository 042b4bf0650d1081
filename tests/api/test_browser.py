"""End to end in a real browser: headless Chromium drives the web page against a live uvicorn server.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package. Without them the
tests are skipped, except under ``CI=true`` where they fail (the CI script installs them). The
server runs the real Analyzer (the shipped model, or a tiny generated one) and the fake analyzer only
where the real one cannot be built.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from emolens.api.app import create_app
from tests.browser import chromium_driver

from ..conftest import SHARED
from .conftest import PHOTOS, FakeFactory, image_bytes, make_settings
from .live import live_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

WAIT_S = 120  # generous: the real model on a busy 2-core machine


def real_photo() -> Path | None:
    """The first of :data:`PHOTOS` in the shared data, or None when the shared data is absent."""
    return next((p for p in (SHARED / "media" / "photos" / n for n in PHOTOS) if p.is_file()), None)


def server_settings(tmp: Path) -> tuple[Any, Any]:
    """(settings, analyzer_factory): the shipped model when there is one, else the real Analyzer on
    a tiny generated model, else (no onnx / no Analyzer) the fake analyzer. Without the shared
    photos the page is tested with the fake analyzer: a real detector finds no face in a generated
    image, and the tests need face cards."""
    if real_photo() is None:
        return make_settings(), FakeFactory()
    try:
        from emolens.inference.shipped import default_model_path

        default_model_path()
        return make_settings(), None
    except Exception:  # no shipped model in this checkout
        pass
    try:
        import emolens.inference.analyzer  # noqa: F401
        from tests.inference.modelfactory import make_model

        return make_settings(model=str(make_model(tmp / "tiny-fer7.onnx"))), None
    except ImportError:
        return make_settings(), FakeFactory()


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium_driver(tmp_path_factory.mktemp("chromium-profile"), window=(1280, 1000)) as drv:
        yield drv


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings, factory = server_settings(tmp_path_factory.mktemp("model"))
    app = create_app(settings, analyzer_factory=factory)
    with live_server(app) as base:
        yield base


@pytest.fixture()
def photo_path(tmp_path: Path) -> Path:
    """A real photo with a face, or a generated image when the shared data is absent."""
    found = real_photo()
    if found is not None:
        return found
    path = tmp_path / "generated.png"
    path.write_bytes(image_bytes("PNG", (320, 240)))
    return path


def wait_for(drv: Any, condition: Any, message: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(drv, WAIT_S, poll_frequency=0.2).until(condition, message)


def finished_cards(drv: Any, count: int) -> Any:
    """Waits until ``count`` result cards exist and none is pending; returns them."""
    from selenium.webdriver.common.by import By

    def done(d: Any) -> Any:
        cards = d.find_elements(By.CSS_SELECTOR, "#results .card")
        if len(cards) == count and all(c.get_attribute("data-status") != "pending" for c in cards):
            return cards
        return False

    return wait_for(drv, done, f"{count} analysed cards")


def severe_console_errors(drv: Any, allowed: tuple[str, ...] = ()) -> list[str]:
    """SEVERE browser console messages, except those containing one of ``allowed``."""
    entries = drv.get_log("browser")
    return [e["message"] for e in entries if e["level"] == "SEVERE" and not any(a in e["message"] for a in allowed)]


def assert_not_blank(png: bytes, min_colors: int = 50) -> None:
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert img.std() > 5, "the screenshot is blank"
    assert len(np.unique(img.reshape(-1, 3), axis=0)) >= min_colors, "the screenshot is nearly uniform"


def open_page(drv: Any, base: str) -> None:
    from selenium.webdriver.common.by import By

    drv.get(base + "/")
    drv.get_log("browser")  # start each test with an empty console log
    wait_for(drv, lambda d: d.find_element(By.ID, "server-info").text.startswith("Model:"), "server info")


def test_upload_shows_faces_bars_and_errors(driver: Any, server: str, photo_path: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    open_page(driver, server)
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not an image")
    driver.find_element(By.ID, "file-input").send_keys(f"{photo_path}\n{bad}")
    cards = finished_cards(driver, 2)
    by_name = {c.find_element(By.TAG_NAME, "h2").text: c for c in cards}

    good = by_name[photo_path.name]
    assert good.get_attribute("data-status") == "done"
    faces = good.find_elements(By.CSS_SELECTOR, ".face")
    assert faces, "no face card for the photo"
    for face in faces:
        bars = face.find_elements(By.CSS_SELECTOR, ".bar")
        assert len(bars) >= 7
        widths = [b.find_element(By.CSS_SELECTOR, ".fill").size["width"] for b in bars]
        assert widths[0] == max(widths) and widths[0] > 0  # top emotion first, drawn widest
    canvas = good.find_element(By.TAG_NAME, "canvas")
    assert canvas.is_displayed() and canvas.size["width"] > 100
    assert_not_blank(canvas.screenshot_as_png)

    failed = by_name["notes.txt"]
    assert failed.get_attribute("data-status") == "error"
    message = failed.find_element(By.CSS_SELECTOR, ".error-message").text
    assert "notes.txt" in message

    summary = driver.find_element(By.ID, "summary")
    assert summary.is_displayed()
    assert len(summary.find_elements(By.CSS_SELECTOR, "#summary-mean .bar")) >= 7
    assert str(len(faces)) in driver.find_element(By.ID, "summary-count").text

    shot = tmp_path / "page.png"
    assert driver.save_screenshot(str(shot))
    assert_not_blank(shot.read_bytes())
    # The refused upload shows up as a failed resource load (415); nothing else may be an error.
    assert severe_console_errors(driver, allowed=("status of 415",)) == []


def test_drag_and_drop_and_clear(driver: Any, server: str) -> None:
    from selenium.webdriver.common.by import By

    open_page(driver, server)
    assert not driver.find_element(By.ID, "key-box").is_displayed()  # this server needs no key
    data = base64.b64encode(image_bytes("PNG", (200, 150), seed=3)).decode()
    driver.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
        document.getElementById("drop-zone").dispatchEvent(
          new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
        """,
        data,
    )
    (card,) = finished_cards(driver, 1)
    assert card.find_element(By.TAG_NAME, "h2").text == "dropped.png"
    assert card.get_attribute("data-status") == "done"
    driver.find_element(By.ID, "clear").click()
    assert driver.find_elements(By.CSS_SELECTOR, "#results .card") == []
    assert not driver.find_element(By.ID, "summary").is_displayed()
    assert severe_console_errors(driver) == []


def test_page_sends_the_api_key(driver: Any, photo_path: Path) -> None:
    from selenium.webdriver.common.by import By

    app = create_app(make_settings(api_key="browser-key"), analyzer_factory=FakeFactory())
    with live_server(app) as base:
        open_page(driver, base)
        key_box = driver.find_element(By.ID, "key-box")
        assert key_box.is_displayed()
        driver.find_element(By.ID, "file-input").send_keys(str(photo_path))
        (refused,) = finished_cards(driver, 1)
        assert refused.get_attribute("data-status") == "error"
        assert "API key" in refused.find_element(By.CSS_SELECTOR, ".error-message").text
        driver.find_element(By.ID, "api-key").send_keys("browser-key")
        driver.find_element(By.ID, "file-input").send_keys(str(photo_path))
        cards = finished_cards(driver, 2)
        assert cards[0].get_attribute("data-status") == "done"  # newest first
        assert severe_console_errors(driver, allowed=("status of 401",)) == []
