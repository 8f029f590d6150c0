"""The app that the PostgreSQL gunicorn test serves: a visit counter on the PostgreSQL store.

Each response tells which worker process served it and which server process (the
backend of its PostgreSQL connection) answered it, and which one answered the
request made while the module was imported: under ``--preload`` that is the
arbiter's, whose pool the workers inherit and must never use.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from wsgi_session import SessionMiddleware, create_postgres_store, update_session

store = create_postgres_store(os.environ["WSGI_SESSION_TEST_POSTGRES_URL"])


def backend_pid() -> int:
    """The server process behind the connection this process's pool hands out next."""
    pool = store._prepare()  # opens the pool, if no request of this process did yet
    connection = pool.getconn()
    try:
        return connection.info.backend_pid
    finally:
        pool.putconn(connection)


IMPORT_BACKEND = backend_pid()


def counter(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    visits = update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})["visits"]
    body = f"{visits} {os.getpid()} {backend_pid()} {IMPORT_BACKEND}"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


app = SessionMiddleware(
    counter,
    store=store,
    secret="gunicorn-test-secret-that-is-long-enough",
    cookie={"secure": False},
)
