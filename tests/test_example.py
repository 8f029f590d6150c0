"""examples/app.py for real: a server process on a free port and a cookie-jar client."""

from __future__ import annotations

import http.cookiejar
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(process: subprocess.Popen[bytes], port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the example exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the example did not listen on port {port} within {timeout} s")


@pytest.fixture
def example_url(tmp_path):
    port = free_port()
    # Its own session file, not sessions.sqlite3 in the checkout.
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PORT": str(port),
        "SESSION_STORE_URL": f"sqlite:///{tmp_path / 's.sqlite3'}",
    }
    process = subprocess.Popen(
        [sys.executable, "examples/app.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(process, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=10)


class BrowserPolicy(http.cookiejar.DefaultCookiePolicy):
    """Like a browser, send Secure cookies to http://127.0.0.1: a secure context."""

    def return_ok_secure(self, cookie: http.cookiejar.Cookie, request: urllib.request.Request) -> bool:
        if urlsplit(request.full_url).hostname in ("127.0.0.1", "localhost"):
            return True
        return bool(super().return_ok_secure(cookie, request))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar(policy=BrowserPolicy())
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def request(self, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        data = None if form is None else urlencode(form).encode()
        try:
            with self.opener.open(self.base + path, data=data, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as redirect:
            return redirect.code, redirect.read().decode()

    def session_cookie(self) -> str | None:
        values = [c.value for c in self.jar if c.name == "session"]
        return values[0] if values else None


def test_example_counts_logs_in_with_a_new_id_and_logs_out(example_url):
    browser = Browser(example_url)
    assert browser.request("/") == (200, "visits: 1\n")
    anonymous = browser.session_cookie()
    assert anonymous is not None and anonymous.startswith("s:")
    assert browser.request("/") == (200, "visits: 2\n")
    assert browser.request("/") == (200, "visits: 3\n")

    assert browser.request("/login", {"user": "alice"})[0] == 303
    logged_in = browser.session_cookie()
    assert logged_in not in (None, anonymous)  # regenerated: session fixation defence
    assert browser.request("/") == (200, "visits: 4\nlogged in as alice\n")

    assert browser.request("/logout", {})[0] == 303
    assert browser.session_cookie() is None  # the cookie was expired
    assert browser.request("/") == (200, "visits: 1\n")

    # The cookie from before the login no longer finds a session.
    replay = urllib.request.Request(example_url + "/", headers={"Cookie": f"session={anonymous}"})
    with urllib.request.urlopen(replay, timeout=10) as response:
        assert response.read().decode() == "visits: 1\n"


def test_example_answers_404_off_its_routes(example_url):
    assert Browser(example_url).request("/nowhere")[0] == 404
