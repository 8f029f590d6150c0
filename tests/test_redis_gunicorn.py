"""Sessions on the Redis store across gunicorn worker processes, with and without --preload."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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


@contextlib.contextmanager
def gunicorn(redis_url: str, log: Path, *options: str) -> Iterator[int]:
    """Serve the test app on a free port; yield the port; always stop gunicorn."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WSGI_SESSION_TEST_REDIS_URL": redis_url}
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *options]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "tests.redis_gunicorn_app:app"], cwd=ROOT, env=env, stdout=output, stderr=output
        )
        try:
            wait_for_port(port, process)
            yield port
        finally:
            process.terminate()
            process.wait(STARTUP_BOUND)


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no-preload"])
def test_session_counts_across_two_workers(redis_server, redis_client, tmp_path, preload):
    holds: list[threading.Thread] = []
    held: list[str] = []

    def hold(port: int) -> str:
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

    def visit(port: int) -> None:
        nonlocal cookie
        body, set_cookie = request(port, "/", cookie)
        cookie = set_cookie or cookie
        served.append(body.split())

    options = ["--workers", "2", *(["--preload"] if preload else [])]
    with gunicorn(redis_server.url, tmp_path / "gunicorn.log", *options) as port:
        try:
            worker_a = hold(port)
            for _ in range(10):
                visit(port)
            worker_b = hold(port)  # worker A is busy: B takes it
            release(worker_a)
            for _ in range(10):
                visit(port)
        finally:
            for pid in held:
                release(pid)
            for thread in holds:
                thread.join(STARTUP_BOUND)

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


def test_four_workers_and_eight_racing_clients_lose_no_increment(redis_server, redis_client, tmp_path):
    with gunicorn(redis_server.url, tmp_path / "gunicorn.log", "--workers", "4", "--preload") as port:
        body, cookie = request(port, "/")
        assert body.split()[0] == "1"

        def client(_: int) -> set[str]:
            return {request(port, "/", cookie)[0].split()[1] for _ in range(250)}

        with ThreadPoolExecutor(8) as pool:
            pids = set().union(*pool.map(client, range(8)))
        assert request(port, "/", cookie)[0].split()[0] == "2002"  # 1 before, 8 x 250, 1 now
    assert len(pids) > 1  # the race did cross processes
