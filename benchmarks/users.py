"""``list_sessions`` of a user with many sessions: round trips and time, on each store.

One user signs in :data:`SESSIONS` times through the middleware (``user_key``), each
time as a new browser, so that the user's index is built as an app builds it. Then
``list_sessions(middleware, user)`` runs, from the middleware as an admin page or a
job would call it: each call must list every session. A store that read the
sessions one by one would make a round trip each; issue 15 asks for a few.

Round trips of one call: Redis commands and pipelines sent, counted in redis-py as
for the requests; PostgreSQL statements, counted in the server's log; SQLite
statements, traced by :mod:`sqlite3` (calls into a library, not round trips to a
server); the memory store makes none. Time: wall and CPU milliseconds per call,
medians of the calls.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable
from unittest import mock

from wsgi_session import SessionMiddleware, create_memory_store, list_sessions, update_session

from .configs import SECRET, Config, Context
from .inprocess import base_environ, redis_sends
from .postgres import PostgresServer

SESSIONS = 1000
#: Timed calls per store.
CALLS = 10
USER = "list-sessions-benchmark-user"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"

#: Runs a callable; returns the round trips it made, or None for a store in the process.
RoundTrips = Callable[[Callable[[], object]], "int | None"]


@dataclass
class Listing:
    sessions: int  # sessions each call listed
    round_trips: int | None  # of one call; None: the memory store, no server
    wall_ms: float  # median per call
    cpu_ms: float


def _sign_in(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    update_session(environ, lambda s: {"user_id": USER})
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b""]


def _ignore(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return lambda data: None


def list_sessions_cost(store: Any, round_trips: RoundTrips, sessions: int, calls: int) -> Listing:
    """Sign the user in ``sessions`` times on ``store``; time ``calls`` listings of them."""
    app = SessionMiddleware(_sign_in, store=store, secret=SECRET, user_key="user_id")
    for number in range(sessions):
        environ = base_environ("/sign-in", None)
        environ.update(HTTP_USER_AGENT=USER_AGENT, REMOTE_ADDR=f"192.0.2.{number % 250 + 1}")
        for _ in app(environ, _ignore):
            pass
    listed = 0

    def listing() -> None:
        nonlocal listed
        listed = len(list_sessions(app, USER))

    trips = round_trips(listing)  # the first call also warms what the next ones reuse
    if listed != sessions:
        raise RuntimeError(f"{type(store).__name__}: list_sessions found {listed} of {sessions} sessions")
    wall, cpu = [], []
    for _ in range(calls):
        started, started_cpu = time.perf_counter(), time.process_time()
        listing()
        wall.append((time.perf_counter() - started) * 1e3)
        cpu.append((time.process_time() - started_cpu) * 1e3)
    return Listing(listed, trips, statistics.median(wall), statistics.median(cpu))


def _in_process(run: Callable[[], object]) -> None:
    run()


def _redis_round_trips(run: Callable[[], object]) -> int:
    with redis_sends() as sent:
        run()
    return sent.call_count


@contextmanager
def _memory(context: Context, postgres: PostgresServer | None) -> Iterator[tuple[Any, RoundTrips]]:
    yield create_memory_store(max_entries=10 * SESSIONS), _in_process


@contextmanager
def _sqlite(context: Context, postgres: PostgresServer | None) -> Iterator[tuple[Any, RoundTrips]]:
    """The store's connections, opened meanwhile, count the statements they run."""
    from wsgi_session import create_sqlite_store

    statements = 0
    connect = sqlite3.connect

    def count(statement: str) -> None:
        nonlocal statements
        statements += 1

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connection.set_trace_callback(count)
        return connection

    def round_trips(run: Callable[[], object]) -> int:
        before = statements
        run()
        return statements - before

    with mock.patch.object(sqlite3, "connect", traced):
        yield create_sqlite_store(os.path.join(context.workdir, "users.sqlite3")), round_trips


@contextmanager
def _redis(context: Context, postgres: PostgresServer | None) -> Iterator[tuple[Any, RoundTrips]]:
    from wsgi_session import create_redis_store

    yield create_redis_store(url=context.redis_url, prefix="list-sessions:"), _redis_round_trips


@contextmanager
def _postgresql(context: Context, postgres: PostgresServer | None) -> Iterator[tuple[Any, RoundTrips]]:
    from wsgi_session import create_postgres_store

    assert postgres is not None
    name = "list-sessions"

    def round_trips(run: Callable[[], object]) -> int:
        before = postgres.statements(name)
        run()
        return postgres.statements(name) - before

    store = create_postgres_store(postgres.counted_url(name), table="list_sessions")
    try:
        yield store, round_trips
    finally:
        store.close()


#: The store of each plain wsgi_session configuration, opened for the listing.
STORES = {
    "wsgi_session (memory)": _memory,
    "wsgi_session (SQLite)": _sqlite,
    "wsgi_session (Redis)": _redis,
    "wsgi_session (PostgreSQL)": _postgresql,
}


def list_sessions_costs(
    configs: list[Config], context: Context, postgres: PostgresServer | None
) -> dict[str, Listing]:
    """The listing's cost on the store of each plain wsgi_session configuration of the run."""
    found = {}
    for config in configs:
        opened = STORES.get(config.name)
        if opened is None:
            continue
        with opened(context, postgres) as (store, round_trips):
            found[config.name] = list_sessions_cost(store, round_trips, SESSIONS, CALLS)
        print(f"list_sessions, {config.name}: {found[config.name]}", file=sys.stderr, flush=True)
    return found
