"""No lost updates: requests of one session that race each other all count."""

from __future__ import annotations

import ast
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import SECRET, counter_app

from wsgi_session import (
    SessionConflictError,
    SessionMiddleware,
    create_memory_store,
    create_postgres_store,
    create_redis_store,
    create_sqlite_store,
    destroy_session,
    get_session,
    regenerate_session,
    update_session,
)
from wsgi_session.events import short_hash
from wsgi_session.record import Replaced, decode_record
from wsgi_session.session import MAX_ATTEMPTS

Environ = dict[str, Any]


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Each shipped store, so that every race here runs on each."""
    if request.param == "memory":
        return create_memory_store()
    if request.param == "sqlite":
        return create_sqlite_store(tmp_path / "sessions.sqlite3")
    if request.param == "postgres":
        store = create_postgres_store(request.getfixturevalue("postgres_url"))  # an empty database
        request.addfinalizer(store.close)
        return store
    request.getfixturevalue("redis_client")  # an empty server for this test
    return create_redis_store(url=request.getfixturevalue("redis_server").url)


def call(
    app: Callable[..., Any], path: str = "/", cookie: str | None = None
) -> tuple[str, dict[str, str], bytes]:
    """One request straight through WSGI: status, headers (last of each name), body."""
    environ: Environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "443",
        "wsgi.url_scheme": "https",
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    response: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        response["status"], response["headers"] = status, dict(headers)
        return lambda data: None

    body = b"".join(app(environ, start_response))
    return response["status"], response["headers"], body


def session_cookie(headers: dict[str, str]) -> str:
    return headers["Set-Cookie"].split(";", 1)[0]


def session_id(cookie: str) -> str:
    """The ID in a ``session=s:<id>.<signature>`` cookie pair."""
    return cookie.split("=", 1)[1][2:].rsplit(".", 1)[0]


def race(app: Callable[..., Any], cookie: str, threads: int, requests: int) -> None:
    def worker(_: int) -> None:
        for _ in range(requests):
            status, _headers, _body = call(app, "/", cookie)
            assert status == "200 OK"

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))


def test_eight_threads_of_one_session_lose_no_increment(store: Any) -> None:
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    _status, headers, body = call(app)
    assert body == b"1"
    race(app, session_cookie(headers), threads=8, requests=250)
    _status, _headers, body = call(app, "/", session_cookie(headers))
    assert body == b"2002"  # 1 before, 8 x 250 in the race, 1 now


class Paused:
    """An app whose request loads the session, then waits for a signal before acting.

    It lets a test run another request of the same session in between: the
    interleaving that loses updates in libraries that save the whole session.
    """

    def __init__(self, action: Callable[[Environ], None]) -> None:
        self.action = action
        self.loaded = threading.Event()
        self.go = threading.Event()

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        get_session(environ)
        self.loaded.set()
        assert self.go.wait(10)
        self.action(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]


def set_key(key: str) -> Callable[[Environ], None]:
    def action(environ: Environ) -> None:
        update_session(environ, lambda s: {key: True})

    return action


def interleave(
    store: Any, slow: Paused, fast: Callable[[Environ], None], cookie: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Run ``slow`` up to its pause, then a whole ``fast`` request, then the rest of ``slow``.

    Returns the headers of both responses: the slow one's, then the fast one's.
    """

    def fast_app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        fast(environ)
        start_response("200 OK", [])
        return [b""]

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(call, SessionMiddleware(slow, store=store, secret=SECRET), "/", cookie)
        assert slow.loaded.wait(10)
        fast_headers = call(SessionMiddleware(fast_app, store=store, secret=SECRET), "/", cookie)[1]
        slow.go.set()
        return pending.result(10)[1], fast_headers


def start_session(store: Any, data: dict[str, Any]) -> str:
    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        update_session(environ, lambda s: data)
        start_response("200 OK", [])
        return [b""]

    return session_cookie(call(SessionMiddleware(app, store=store, secret=SECRET))[1])


def read(store: Any, cookie: str) -> dict[str, Any]:
    body = call(SessionMiddleware(counter_app, store=store, secret=SECRET), "/read", cookie)[2]
    return ast.literal_eval(body.decode())


def test_two_racing_requests_writing_different_keys_both_survive(store: Any) -> None:
    cookie = start_session(store, {"start": 1})
    interleave(store, Paused(set_key("slow")), set_key("fast"), cookie)
    assert read(store, cookie) == {"start": 1, "slow": True, "fast": True}


def test_an_update_racing_a_destroy_does_not_bring_the_session_back(store: Any) -> None:
    cookie = start_session(store, {"user": "ann"})
    headers, _ = interleave(store, Paused(set_key("late")), destroy_session, cookie)
    assert "Set-Cookie" not in headers
    assert store.get(session_id(cookie)) is None
    assert read(store, cookie) == {}


def test_a_regenerate_racing_an_update_carries_the_update_to_the_new_id(store: Any) -> None:
    cookie = start_session(store, {"user": "ann"})
    headers, _ = interleave(store, Paused(regenerate_session), set_key("cart"), cookie)
    new_cookie = session_cookie(headers)
    assert new_cookie != cookie
    assert read(store, new_cookie) == {"user": "ann", "cart": True}
    assert isinstance(decode_record(store.get(session_id(cookie)).payload), Replaced)


def test_an_update_committing_after_a_regenerate_is_dropped_and_logged(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """It must not reach the new session: it could plant a value the attacker knows."""
    cookie = start_session(store, {"user": "ann"})
    with caplog.at_level(logging.INFO, logger="wsgi_session"):
        headers, login_headers = interleave(store, Paused(set_key("planted")), regenerate_session, cookie)
    assert "Set-Cookie" not in headers
    assert read(store, session_cookie(login_headers)) == {"user": "ann"}
    assert read(store, cookie) == {}
    assert f"session {short_hash(session_id(cookie))}: a write through this ID came after a regenerate" in (
        caplog.text
    )


@pytest.mark.parametrize("order", ["logout first", "login first"])
def test_a_logout_racing_a_regenerate_ends_the_session_either_way(store: Any, order: str) -> None:
    """Two tabs: one logs out with the old cookie while the other logs in (regenerates)."""
    cookie = start_session(store, {"user": "ann"})
    if order == "logout first":
        slow, fast = Paused(regenerate_session), destroy_session
    else:
        slow, fast = Paused(destroy_session), regenerate_session
    slow_headers, fast_headers = interleave(store, slow, fast, cookie)
    login = slow_headers if order == "logout first" else fast_headers
    new_cookie = (
        session_cookie(login) if "Set-Cookie" in login and "Max-Age=0" not in login["Set-Cookie"] else None
    )
    assert read(store, cookie) == {}
    if new_cookie is not None:
        assert read(store, new_cookie) == {}


def test_a_request_that_only_reads_writes_nothing(store: Any) -> None:
    cookie = start_session(store, {"user": "ann"})
    headers, _ = interleave(store, Paused(lambda environ: None), set_key("cart"), cookie)
    assert "Set-Cookie" not in headers
    assert read(store, cookie) == {"user": "ann", "cart": True}


class AlwaysChanged:
    """A store on which every compare-and-set finds a newer version."""

    def __init__(self) -> None:
        self.store = create_memory_store()
        self.attempts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def compare_and_set(self, session_id: str, version: Any, payload: str | None, ttl: int) -> bool:
        self.attempts += 1
        return False


def test_conflicts_past_the_retry_bound_raise_session_conflict_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("wsgi_session.session.MAX_BACKOFF", 0)
    store = AlwaysChanged()
    cookie = start_session(store, {"visits": 1})
    with pytest.raises(SessionConflictError, match="kept changing"):
        call(SessionMiddleware(counter_app, store=store, secret=SECRET), "/", cookie)
    assert store.attempts == MAX_ATTEMPTS == 50


def test_c14_an_old_id_inside_the_window_gets_nothing_and_after_it_is_unknown(store: Any) -> None:
    """C14 on each store: reads and writes through a replaced ID store nothing, send no
    cookie and see nothing of the new session; once the window is over, the ID is unknown."""

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/login":
            regenerate_session(environ)
            update_session(environ, lambda s: {"user": "victim"})
        elif environ["PATH_INFO"] == "/write":
            update_session(environ, lambda s: {"planted": True})
        start_response("200 OK", [])
        return [repr(dict(get_session(environ) or {})).encode()]

    middleware = SessionMiddleware(app, store=store, secret=SECRET, regenerate_window=1)
    planted = start_session(store, {"visits": 1})
    _status, login, _body = call(middleware, "/login", planted)
    for path in ("/read", "/write", "/login"):
        _status, headers, body = call(middleware, path, planted)
        assert "Set-Cookie" not in headers
        assert b"visits" not in body
    assert read(store, session_cookie(login)) == {"visits": 1, "user": "victim"}
    assert isinstance(decode_record(store.get(session_id(planted)).payload), Replaced)
    time.sleep(1.2)  # past the window: each store expires the marker on its own clock
    assert store.get(session_id(planted)) is None
    _status, headers, body = call(middleware, "/write", planted)
    assert body == b"{'planted': True}"
    assert session_id(session_cookie(headers)) != session_id(planted)  # a new session, never the old ID


def test_two_racing_regenerates_leave_one_session_and_no_orphan(store: Any) -> None:
    cookie = start_session(store, {"user": "ann"})
    slow_headers, fast_headers = interleave(store, Paused(regenerate_session), regenerate_session, cookie)
    assert "Set-Cookie" not in slow_headers  # it lost: its new ID was never stored
    winner = session_cookie(fast_headers)
    assert read(store, winner) == {"user": "ann"}
    assert isinstance(decode_record(store.get(session_id(cookie)).payload), Replaced)
    assert len(store) == 2  # the winner's session and the old ID's marker: nothing else
    assert read(store, cookie) == {}
