"""The Flask example's "Your sessions" page in real browsers: one device signs out another.

Two headless Chromium profiles log in as one user to ``examples/flask_app.py``
(Flask-Login, Flask-WTF's CSRF protection) under a real gunicorn. The first lists
both sessions and signs the second out, then, after it logs in again, signs out
everywhere else; each time the second browser's next page is logged out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from browsers import By, chromium, require_browser, submit, text
from conftest import SECRET
from gunicorn_server import serve

#: The second device's browser, as its User-Agent says: markup the page must show as text.
AGENT_B = "Mozilla/5.0 (device B) <img src=x id=injected>"


class Row(NamedTuple):
    """One line of "Your sessions": its cells as shown, and its sign-out button if any."""

    browser: str
    ip: str
    last_active: str
    action: str
    element: Any


def rows(browser: Any) -> list[Row]:
    found = []
    for row in browser.find_elements(By.CSS_SELECTOR, "table tr")[1:]:
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        found.append(Row(*cells, element=row))
    return found


def log_in(browser: Any, home: str, *, remember: bool = False) -> None:
    browser.get(home)
    field = browser.find_element(By.NAME, "user")
    field.clear()
    field.send_keys("ada")
    if remember:
        browser.find_element(By.NAME, "remember").click()
    submit(browser, browser.find_element(By.XPATH, "//button[text()='Log in']"))
    assert "logged in as ada" in text(browser)


def open_sessions(browser: Any, home: str) -> list[Row]:
    browser.get(home)
    submit(browser, browser.find_element(By.LINK_TEXT, "Your sessions"))
    return rows(browser)


def assert_logged_out(browser: Any, home: str) -> None:
    browser.get(home)
    page = text(browser)
    assert "logged in as" not in page and "visits: 1" in page, page  # a new, empty session
    browser.get(home + "members")
    assert "Log in first." in text(browser)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[str]:
    """The example's home page, served by two gunicorn workers sharing an SQLite store."""
    require_browser()  # before gunicorn starts: skip at once where there is no browser
    env = {"SESSION_SECRET": SECRET, "SESSION_STORE_URL": f"sqlite:///{tmp_path / 'sessions.sqlite3'}"}
    with serve("examples.flask_app:app", tmp_path, ["--workers", "2", "--threads", "4"], env) as port:
        yield f"http://127.0.0.1:{port}/"


def test_a_device_signs_out_another_then_everywhere_else(tmp_path: Path, home: str) -> None:
    with chromium(tmp_path / "a") as a, chromium(tmp_path / "b", f"--user-agent={AGENT_B}") as b:
        log_in(a, home)
        log_in(b, home)

        listed = open_sessions(a, home)
        assert sorted(row.action for row in listed) == ["Sign out", "this device"]
        assert {row.ip for row in listed} == {"127.0.0.1"}
        assert all(row.last_active.endswith(" UTC") for row in listed)
        (other,) = [row for row in listed if row.action == "Sign out"]
        assert other.browser == AGENT_B  # shown as text: escaped, not markup
        assert a.find_elements(By.ID, "injected") == []
        (own,) = [row for row in open_sessions(b, home) if row.action == "this device"]
        assert own.browser == AGENT_B

        # A handle that names no session of this user (forged, or ended meanwhile).
        handle = other.element.find_element(By.NAME, "handle")
        real_handle = handle.get_attribute("value")
        a.execute_script("arguments[0].value = 'garbage'", handle)
        submit(a, other.element.find_element(By.TAG_NAME, "button"))
        assert "That session had already ended." in text(a)
        (other,) = [row for row in rows(a) if row.action == "Sign out"]
        assert other.element.find_element(By.NAME, "handle").get_attribute("value") == real_handle

        submit(a, other.element.find_element(By.TAG_NAME, "button"))
        assert "That browser is signed out." in text(a)
        assert [row.action for row in rows(a)] == ["this device"]
        assert_logged_out(b, home)
        a.get(home)
        assert "logged in as ada" in text(a)

        log_in(b, home)
        assert len(open_sessions(a, home)) == 2
        submit(a, a.find_element(By.XPATH, "//button[text()='Sign out everywhere else']"))
        assert "Signed out everywhere else: 1 ended." in text(a)
        assert [row.action for row in rows(a)] == ["this device"]
        assert_logged_out(b, home)
        a.get(home)
        assert "logged in as ada" in text(a)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="revoking ends the session, not Flask-Login's remember-me cookie, which names only "
    "the user: the revoked browser's next request logs it in again",
)
def test_a_browser_remembered_at_login_stays_signed_out(tmp_path: Path, home: str) -> None:
    with chromium(tmp_path / "a") as a, chromium(tmp_path / "b", f"--user-agent={AGENT_B}") as b:
        log_in(a, home)
        log_in(b, home, remember=True)
        assert b.get_cookie("remember_token") is not None
        (other,) = [row for row in open_sessions(a, home) if row.action == "Sign out"]
        submit(a, other.element.find_element(By.TAG_NAME, "button"))
        assert "That browser is signed out." in text(a)
        assert_logged_out(b, home)
