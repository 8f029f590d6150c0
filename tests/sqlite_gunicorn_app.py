"""The app that the SQLite fault tests serve: a visit counter that names its worker.

``/`` counts visits and answers ``"<visits> <pid>"``; ``/read`` only reads the
session. The file is ``WSGI_SESSION_TEST_SQLITE_DB``, the secret
``WSGI_SESSION_TEST_SECRET``. Served with ``--preload``, the
store is created once, in the arbiter, and a worker opens its connection at the
first request that needs one: a fault that starts later is met by that worker.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from wsgi_session import SessionMiddleware, create_sqlite_store, get_session, update_session


def counter(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    if environ["PATH_INFO"] == "/read":
        visits = (get_session(environ) or {}).get("visits")
    else:
        visits = update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})["visits"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{visits} {os.getpid()}".encode()]


app = SessionMiddleware(
    counter,
    store=create_sqlite_store(os.environ["WSGI_SESSION_TEST_SQLITE_DB"]),
    secret=os.environ["WSGI_SESSION_TEST_SECRET"],
    cookie={"secure": False},
)
