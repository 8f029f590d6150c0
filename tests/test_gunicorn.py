"""The example under a real ``gunicorn -w 4``: one session shared by worker processes.

On each store meant for several processes: SQLite (one host), Redis and PostgreSQL (several).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from conftest import SECRET
from gunicorn_server import request, serve

from wsgi_session import store_from_url, unsign_cookie
from wsgi_session.record import decode_record


class Backend(NamedTuple):
    """A store the example can use: the environment that selects it, and a reader."""

    env: dict[str, str]
    store: Any


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sessions.sqlite3'}"
    elif request.param == "redis":
        request.getfixturevalue("redis_client")  # an empty server for this test
        url = request.getfixturevalue("redis_server").url
    else:
        url = request.getfixturevalue("postgres_url")  # an empty database for this test
    store = store_from_url(url)
    if hasattr(store, "close"):
        request.addfinalizer(store.close)
    return Backend({"SESSION_STORE_URL": url}, store)


@pytest.mark.parametrize(
    "options",
    [[], ["--threads", "4"], ["--preload"]],
    ids=["sync", "gthread", "preload"],
)
def test_four_workers_lose_no_update(tmp_path, backend, options):
    env = {"SESSION_SECRET": SECRET, **backend.env}
    with serve("examples.app:app", tmp_path, ["-c", "examples/gunicorn.conf.py", *options], env) as port:
        status, cookie, _ = request(port, "POST", "/login", form="user=alice")
        assert status == 303 and cookie is not None

        def visit_250_times(_: int) -> list[int]:
            statuses, kept = [], cookie
            for _ in range(250):
                status, set_cookie, body = request(port, "GET", "/", kept)
                assert body.startswith("visits: ") and "logged in as alice" in body, body
                statuses.append(status)
                kept = set_cookie or kept
            return statuses

        with ThreadPoolExecutor(8) as pool:
            statuses = [status for result in pool.map(visit_250_times, range(8)) for status in result]
        assert statuses == [200] * 2000

    session_id = unsign_cookie(cookie.split("=", 1)[1], SECRET)
    assert session_id is not None
    stored = backend.store.get(session_id)
    assert stored is not None
    record = decode_record(stored.payload)
    assert record is not None
    assert record[1] == {"user": "alice", "visits": 2000}
