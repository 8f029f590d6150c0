"""The app the metrics test serves under ``gunicorn -w 4``: a counter, and ``/metrics``.

Its sessions live in the SQLite file named by ``WSGI_SESSION_TEST_DB``, shared by the
workers; ``PROMETHEUS_MULTIPROC_DIR`` is set by the test before gunicorn starts, so
that ``/metrics`` adds up every worker's counts, as prometheus_client documents.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from prometheus_client import CollectorRegistry, generate_latest, multiprocess

from wsgi_session import SessionMiddleware, create_sqlite_store, update_session


def counter(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    if environ["PATH_INFO"] == "/metrics":
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [generate_latest(registry)]
    visits = update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})["visits"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(visits).encode()]


app = SessionMiddleware(
    counter,
    store=create_sqlite_store(os.environ["WSGI_SESSION_TEST_DB"]),
    secret="gunicorn-test-secret-that-is-long-enough",
    cookie={"secure": False},
    metrics=True,
)
