"""Sessions on the Redis store across gunicorn worker processes, with and without --preload."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from redis_servers import STARTUP_BOUND, free_port

ROOT = Path(__file__).resolve().parent.parent


def request(port: int, path: str, cookie: str | None = None) -> tuple[str, str | None]:
    """GET ``path``; return the body and the ``name=value`` of any Set-Cookie."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=STARTUP_BOUND)
    try:
        connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()
        body = response.read().decode()
        assert response.status == 200, body
        set_cookie = response.getheader("Set-Cookie")
        return body, None if set_cookie is None else set_cookie.split(";", 1)[0]
    finally:
        connection.close()


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_BOUND
    while True:
        assert process.poll() is None, "gunicorn exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"gunicorn did not listen within {STARTUP_BOUND} s"
            time.sleep(0.05)


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no-preload"])
def test_session_counts_across_two_workers(redis_server, redis_client, tmp_path, preload):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WSGI_SESSION_TEST_REDIS_URL": redis_server.url}
    command = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    command += ["--preload"] if preload else []
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [*command, "tests.redis_gunicorn_app:app"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    holds: list[threading.Thread] = []
    held: list[str] = []

    def hold() -> str:
        """Keep one worker busy; return its pid. The other worker serves what follows."""
        thread = threading.Thread(target=request, args=(port, "/hold"))
        thread.start()
        holds.append(thread)
        _, pid = redis_client.blpop(["held"], timeout=STARTUP_BOUND)
        held.append(pid.decode())
        return held[-1]

    def release(pid: str) -> None:
        redis_client.rpush("release:" + pid, "go")

    cookie: str | None = None
    served: list[list[str]] = []

    def visit() -> None:
        nonlocal cookie
        body, set_cookie = request(port, "/", cookie)
        cookie = set_cookie or cookie
        served.append(body.split())

    try:
        wait_for_port(port, process)
        worker_a = hold()
        for _ in range(10):
            visit()
        worker_b = hold()  # worker A is busy: B takes it
        release(worker_a)
        for _ in range(10):
            visit()
    finally:
        for pid in held:
            release(pid)
        for thread in holds:
            thread.join(STARTUP_BOUND)
        process.terminate()
        process.wait(STARTUP_BOUND)
        log.close()

    assert [int(visits) for visits, *_ in served] == list(range(1, 21))
    assert worker_a != worker_b
    assert {pid for _, pid, *_ in served[:10]} == {worker_b}
    assert {pid for _, pid, *_ in served[10:]} == {worker_a}
    # One connection per worker, of its own.
    (connection_b,) = {connection for *_, connection, _ in served[:10]}
    (connection_a,) = {connection for *_, connection, _ in served[10:]}
    assert connection_a != connection_b
    if preload:  # not the one the arbiter opened before forking
        assert {imported for *_, imported in served} == {served[0][3]}
        assert served[0][3] not in (connection_a, connection_b)
