"""Upgrading from release 0.1 on a live Redis: nobody is logged out, no update is lost.

Release 0.1 is taken from git (``git archive``) and imported under another name, so
that its middleware and this checkout's run side by side in one process, on one
Redis, as old and new gunicorn workers do during a rolling deploy.
"""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest
import redis
from conftest import SECRET
from redis_servers import RedisServer, require_redis
from test_concurrency import call, session_cookie, session_id

import wsgi_session

RELEASE = "67f831d"  # 0.1
ROOT = Path(__file__).resolve().parent.parent
NAME = "wsgi_session_01"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """Release 0.1's package, importable as ``wsgi_session_01`` (its imports are relative)."""
    require_redis()
    try:
        archive = subprocess.run(
            ["git", "archive", RELEASE, "wsgi_session"], cwd=ROOT, capture_output=True, check=False
        )
        problem = archive.stderr.decode(errors="replace") if archive.returncode else ""
    except FileNotFoundError:
        problem = "git is not installed"
    if problem:
        message = f"release 0.1 ({RELEASE}) cannot be read from git: {problem}"
        if os.environ.get("WSGI_SESSION_REQUIRE_REDIS") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    target = tmp_path_factory.mktemp("release")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target)
    (target / "wsgi_session").rename(target / NAME)
    sys.path.insert(0, str(target))
    try:
        yield importlib.import_module(NAME)
    finally:
        sys.path.remove(str(target))
        for module in [m for m in sys.modules if m == NAME or m.startswith(NAME + ".")]:
            del sys.modules[module]


def counter(package: ModuleType, url: str) -> Callable[..., Any]:
    """The visit counter behind ``package``'s middleware and Redis store."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        visits = package.update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})["visits"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(visits).encode()]

    store = package.create_redis_store(url=url)
    return package.SessionMiddleware(app, store=store, secret=SECRET)  # type: ignore[no-any-return]


def test_each_release_reads_and_updates_what_the_other_wrote(
    release: ModuleType, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    old, new = counter(release, redis_server.url), counter(wsgi_session, redis_server.url)
    _status, headers, body = call(old)
    cookie = session_cookie(headers)
    key = "session:" + session_id(cookie)
    assert body == b"1"
    assert redis_client.get(key).startswith(b'{"created":')  # 0.1's form

    assert call(new, "/", cookie)[2] == b"2"  # read, written in the new form
    assert redis_client.get(key).startswith(b'{"v":"')
    assert call(old, "/", cookie)[2] == b"3"  # 0.1 reads the new form and updates it
    assert redis_client.get(key).startswith(b'{"created":')
    assert call(new, "/", cookie)[2] == b"4"


def test_a_rolling_deploy_loses_no_update(
    release: ModuleType, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """8 threads x 250 increments of one session, alternating 0.1 and new workers."""
    apps = [counter(release, redis_server.url), counter(wsgi_session, redis_server.url)]
    cookie = session_cookie(call(apps[0])[1])

    def worker(number: int) -> None:
        for request in range(250):  # each thread sends 125 requests to each release
            status, _headers, _body = call(apps[(number + request) % 2], "/", cookie)
            assert status == "200 OK"

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    assert call(apps[1], "/", cookie)[2] == b"2002"  # 1 before, 8 x 250 in the race, 1 now
