"""Headless Chromium for the browser tests, driven by selenium through Debian's chromedriver.

Each browser gets a profile of its own (a fresh user data directory): two of them
are two devices, with their own cookies. Without ``chromium``, ``chromedriver`` or
selenium the tests that need them are skipped with a message naming the install
commands, unless ``WSGI_SESSION_REQUIRE_BROWSER=1`` (set by CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait
except ImportError:  # require_browser() skips, or fails under CI, before any of them is used
    webdriver = None

MISSING = (
    "chromium, chromedriver or selenium not found: the browser tests are skipped. "
    "Install them with: apt-get install chromium chromium-driver && pip install selenium"
)
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # Chromium's sandbox refuses to run as root, as in CI containers
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers give /dev/shm a few MiB
    # Only loopback is reachable here: nothing may wait on a fetch in the background.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
#: Seconds a page gets to load, or a condition to come true, before the test fails.
WAIT = 20.0


def require_browser() -> tuple[str, str]:
    """The paths of ``chromium`` and ``chromedriver``; skip (or fail under CI) without them."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium and driver and webdriver is not None:
        return chromium, driver
    if os.environ.get("WSGI_SESSION_REQUIRE_BROWSER") == "1":
        pytest.fail(MISSING.replace("are skipped", "are required here"), pytrace=False)
    pytest.skip(MISSING)


@contextmanager
def chromium(profile: Path, *flags: str) -> Iterator[Any]:
    """A headless Chromium with the profile directory ``profile``; always quit after.

    The chromedriver is given by path, so selenium never tries to download one.
    """
    binary, driver = require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={profile}", *flags):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    browser.set_page_load_timeout(WAIT)
    browser.set_script_timeout(WAIT)
    try:
        yield browser
    finally:
        browser.quit()


def submit(browser: Any, button: Any) -> None:
    """Click a form's button and wait until the page it leads to has loaded."""
    page = browser.find_element(By.TAG_NAME, "html")
    button.click()
    wait = WebDriverWait(browser, WAIT)
    wait.until(lambda _: _left(page))
    wait.until(lambda browser: browser.execute_script("return document.readyState") == "complete")


def _left(page: Any) -> bool:
    """Whether the browser has left the document ``page`` (its ``html`` element) was in."""
    try:
        page.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        # Caught mid-navigation, chromedriver may report the old document's node as an
        # "unknown error" instead of a stale element: it is the same news.
        if "does not belong to the document" in str(error.msg):
            return True
        raise
    return False


def text(browser: Any) -> str:
    """What the page shows, as a user reads it."""
    return str(browser.find_element(By.TAG_NAME, "body").text)
