"""Headless Chromium for the browser tests (the web page, the campaign report).

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package. Without them the
tests are skipped, except under ``CI=true`` where they fail (the CI script installs them).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)


def missing(reason: str) -> None:
    """Skip (fail under ``CI=true``) because a browser prerequisite is absent."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


@contextmanager
def chromium_driver(profile_dir: Path, window: tuple[int, int] = (1280, 1000),
                    extra_flags: Sequence[str] = ()) -> Iterator[Any]:
    """A selenium Chrome driver on headless Chromium, its browser console log captured; quit on exit.
    ``extra_flags``: more Chromium switches (a fake camera, autoplay, ...)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        missing("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed (pip install selenium)")
    options = Options()
    options.binary_location = str(chromium)
    for flag in (*CHROME_FLAGS, f"--window-size={window[0]},{window[1]}", f"--user-data-dir={profile_dir}",
                 *extra_flags):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=str(chromedriver)), options=options)
    drv.set_page_load_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()
