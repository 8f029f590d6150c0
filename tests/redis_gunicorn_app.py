"""The app that the gunicorn test serves: a visit counter on the Redis store.

Each response tells which worker process served it and which Redis connection it
used, and ``/hold`` keeps a worker busy until the test releases it, so that the
test can choose which worker serves the next requests.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import redis

from wsgi_session import SessionMiddleware, create_redis_store, update_session

URL = os.environ["WSGI_SESSION_TEST_REDIS_URL"]
HOLD_BOUND = 10

store = create_redis_store(url=URL)
# Under --preload this runs in the arbiter: the workers inherit a pool with a live
# connection, which they must not share.
IMPORT_CONNECTION = store.client.client_id()
control = redis.Redis.from_url(URL)


def counter(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    pid = str(os.getpid())
    if environ["PATH_INFO"] == "/hold":
        control.rpush("held", pid)
        control.blpop(["release:" + pid], timeout=HOLD_BOUND)
        body = pid
    else:
        visits = update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})["visits"]
        body = f"{visits} {pid} {store.client.client_id()} {IMPORT_CONNECTION}"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


app = SessionMiddleware(
    counter,
    store=store,
    secret="gunicorn-test-secret-that-is-long-enough",
    cookie={"secure": False},
)
