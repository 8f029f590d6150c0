"""Shared test helpers: a real WSGI app behind the middleware, and a store spy."""

from __future__ import annotations

import itertools
import time
from typing import Any, Callable

import pytest
import webtest

from wsgi_session import SessionMiddleware, create_memory_store, get_session, update_session
from wsgi_session.record import Replaced, decode_record, encode_record
from wsgi_session.signing import new_session_id

# Real Redis servers (standalone, Cluster, Sentinel) and PostgreSQL as fixtures.
pytest_plugins = ["redis_servers", "postgres_server"]

SECRET = "test-secret-that-is-long-enough-0123456789"


class SpyStore:
    """Wraps a real store and records every call, to count store round trips."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.store, name)

        def spy(*args: Any) -> Any:
            self.calls.append((name, args))
            return method(*args)

        return spy


def sessions(store: Any) -> dict[str, dict[str, Any]]:
    """The data of each session a memory store holds, by ID; markers of replaced IDs left out."""
    found = {}
    for session_id in list(store._entries):
        stored = store.get(session_id)
        record = None if stored is None else decode_record(stored.payload)
        if isinstance(record, tuple):
            found[session_id] = record[1]
    return found


def replaced(store: Any, session_id: str) -> bool:
    """Whether ``session_id`` holds the marker a regenerate leaves: no data, a successor."""
    stored = store.get(session_id)
    return stored is not None and isinstance(decode_record(stored.payload), Replaced)


def counter_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """``/`` counts visits; ``/read`` only reads; ``/plain`` never touches the session."""
    path = environ["PATH_INFO"]
    if path == "/plain":
        body = "plain"
    elif path == "/read":
        body = repr(dict(get_session(environ) or {}))
    else:
        body = str(update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})["visits"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


def contested_session(store: Any) -> tuple[str, Callable[[Any], dict[str, int]]]:
    """A stored session, and an updater that has another writer change it first, on
    every try: a request applying it keeps losing its compare-and-set, and gives up."""
    session_id, versions = new_session_id(), itertools.count()
    store.set(session_id, encode_record(time.time(), "{}"), 3600)

    def outrun(data: Any) -> dict[str, int]:
        store.set(session_id, encode_record(time.time(), f'{{"other":{next(versions)}}}'), 3600)
        return {"mine": 1}

    return session_id, outrun


@pytest.fixture
def store() -> SpyStore:
    return SpyStore(create_memory_store())


@pytest.fixture
def make_client(store: SpyStore) -> Callable[..., webtest.TestApp]:
    """Build a webtest client for ``app`` (the counter by default) behind the middleware."""

    def make(app: Any = counter_app, **options: Any) -> webtest.TestApp:
        options.setdefault("store", store)
        options.setdefault("secret", SECRET)
        middleware = SessionMiddleware(app, **options)
        return webtest.TestApp(
            middleware, extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "example.com"}
        )

    return make


class FakeClock:
    """Stands in for the ``time`` module where wsgi_session reads the clock."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    sleep = advance  # the write-back's backoff between retries


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One injected clock for the cookie, the session and the memory and SQLite stores."""
    import wsgi_session.memory_store
    import wsgi_session.session
    import wsgi_session.session_cookie
    import wsgi_session.sqlite_store

    fake = FakeClock()
    modules = (
        wsgi_session.memory_store,
        wsgi_session.session_cookie,
        wsgi_session.session,
        wsgi_session.sqlite_store,
    )
    for module in modules:
        monkeypatch.setattr(module, "time", fake)
    return fake
