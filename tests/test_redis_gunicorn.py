"""Sessions on the Redis store across gunicorn worker processes, with and without --preload."""

from __future__ import annotations

import threading

import pytest
from gunicorn_server import request, serve
from redis_servers import STARTUP_BOUND


def get(port: int, path: str, cookie: str | None = None) -> tuple[str, str | None]:
    """GET ``path``; return the body and the ``name=value`` of any Set-Cookie."""
    status, set_cookie, body = request(port, "GET", path, cookie)
    assert status == 200, body
    return body, set_cookie


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no-preload"])
def test_session_counts_across_two_workers(redis_server, redis_client, tmp_path, preload):
    holds: list[threading.Thread] = []
    held: list[str] = []

    def hold(port: int) -> str:
        """Keep one worker busy; return its pid. The other worker serves what follows."""
        thread = threading.Thread(target=get, args=(port, "/hold"))
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
        body, set_cookie = get(port, "/", cookie)
        cookie = set_cookie or cookie
        served.append(body.split())

    options = ["--workers", "2", *(["--preload"] if preload else [])]
    env = {"WSGI_SESSION_TEST_REDIS_URL": redis_server.url}
    with serve("tests.redis_gunicorn_app:app", tmp_path, options, env) as port:
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
