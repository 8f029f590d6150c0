"""A real gunicorn on a free loopback port, for the tests that need worker processes."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import gunicorn.config
import pytest
from redis_servers import free_port

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 15.0


def control_socket_off() -> list[str]:
    # gunicorn 27 opens a control socket at one path per user: servers of tests
    # running side by side must not fight over it. Older versions have none.
    known = {setting.name for setting in gunicorn.config.KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in known else []


@contextmanager
def serve(
    app: str, tmp_path: Path, options: list[str], env: dict[str, str], wrapper: Sequence[str] = ()
) -> Iterator[int]:
    """Run ``gunicorn options app`` from the repository root; yield its port; always stop it.

    ``env`` is added to this environment, less the example's own settings (SESSION_*).
    ``wrapper`` is a command that runs gunicorn for the test, as ``setpriv ...`` does;
    it must exec it, so that stopping the process stops gunicorn.
    """
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    command = [sys.executable, "-m", "gunicorn", *options, "--bind", f"127.0.0.1:{port}"]
    outside = {name: value for name, value in os.environ.items() if not name.startswith("SESSION_")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*wrapper, *command, *control_socket_off(), app],
            cwd=ROOT,
            env={**outside, "PYTHONPATH": str(ROOT), **env},
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
