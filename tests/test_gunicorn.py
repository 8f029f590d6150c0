"""The example under a real ``gunicorn -w 4``: one session shared by worker processes.

On each store meant for several processes: SQLite (one host) and Redis (several).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import gunicorn.config
import pytest
from conftest import SECRET

from wsgi_session import create_redis_store, create_sqlite_store, unsign_cookie
from wsgi_session.record import decode_record

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def control_socket_off() -> list[str]:
    # gunicorn 27 opens a control socket at one path per user: servers of tests
    # running side by side must not fight over it. Older versions have none.
    known = {setting.name for setting in gunicorn.config.KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in known else []


def outside_session_settings() -> dict[str, str]:
    """This environment without the example's settings (SESSION_*), which the test sets."""
    return {name: value for name, value in os.environ.items() if not name.startswith("SESSION_")}


@contextmanager
def serve_example(tmp_path: Path, options: list[str], **env: str) -> Iterator[int]:
    """Run the example under ``examples/gunicorn.conf.py`` and ``options`` on a free port.

    Yields the port.
    """
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "examples/gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        *control_socket_off(),
        *options,
        "examples.app:app",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**outside_session_settings(), "PYTHONPATH": str(ROOT), "SESSION_SECRET": SECRET, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers die with it
        )
        try:
            wait_for_port(port, process, log_path)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for_port(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"gunicorn did not listen on port {port} in {STARTUP_TIMEOUT} s:\n{log_path.read_text()}")


def request(
    port: int, method: str, path: str, cookie: str | None = None, form: str | None = None
) -> tuple[int, str | None, str]:
    """One HTTP request; returns the status, the ``Set-Cookie`` pair if any, and the body."""
    headers = {} if cookie is None else {"Cookie": cookie}
    if form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=form, headers=headers)
        response = connection.getresponse()
        set_cookie = response.getheader("Set-Cookie")
        body = response.read().decode()
    finally:
        connection.close()
    return response.status, None if set_cookie is None else set_cookie.split(";", 1)[0], body


class Backend(NamedTuple):
    """A store the example can use: the environment that selects it, and a reader."""

    env: dict[str, str]
    store: Any


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        db = tmp_path / "sessions.sqlite3"
        return Backend({"SESSION_DB": str(db)}, create_sqlite_store(db))
    request.getfixturevalue("redis_client")  # an empty server for this test
    url = request.getfixturevalue("redis_server").url
    return Backend({"SESSION_REDIS_URL": url}, create_redis_store(url=url))


@pytest.mark.parametrize(
    "options",
    [[], ["--threads", "4"], ["--preload"]],
    ids=["sync", "gthread", "preload"],
)
def test_four_workers_lose_no_update(tmp_path, backend, options):
    with serve_example(tmp_path, options, **backend.env) as port:
        status, cookie, _ = request(port, "POST", "/login", form="user=alice")
        assert status == 303 and cookie is not None

        def visit_50_times(_: int) -> list[int]:
            statuses, kept = [], cookie
            for _ in range(50):
                status, set_cookie, body = request(port, "GET", "/", kept)
                assert body.startswith("visits: ") and "logged in as alice" in body, body
                statuses.append(status)
                kept = set_cookie or kept
            return statuses

        with ThreadPoolExecutor(8) as pool:
            statuses = [status for result in pool.map(visit_50_times, range(8)) for status in result]
        assert statuses == [200] * 400

    session_id = unsign_cookie(cookie.split("=", 1)[1], SECRET)
    assert session_id is not None
    stored = backend.store.get(session_id)
    assert stored is not None
    record = decode_record(stored.payload)
    assert record is not None
    assert record.data == {"user": "alice", "visits": 400}
