"""The PostgreSQL store when things go wrong: outages, restarts, slow and silent servers, forks.

Each fault is made real: the server is stopped and started, a row is locked by
another transaction, a socket listens and never answers, a process forks.
"""

from __future__ import annotations

import multiprocessing
import socket
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from conftest import SpyStore, counter_app
from postgres_server import PostgresServer, own_server

from wsgi_session import SessionStoreError, create_postgres_store, get_session
from wsgi_session.signing import new_session_id


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    """A server of this test's own, which it may stop and start."""
    server = own_server()
    try:
        yield server
    finally:
        server.remove()


def backend_pids(store: Any, count: int = 1) -> list[int]:
    """The server process behind each of ``count`` connections taken at once from the store's pool."""
    pool = store._pool
    connections = [pool.getconn() for _ in range(count)]
    try:
        return [connection.info.backend_pid for connection in connections]
    finally:
        for connection in connections:
            pool.putconn(connection)


def test_outage_fails_loudly_and_recovers_without_a_restart(server, make_client, close_after):
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/halt":  # the server goes away between the read and the write
            get_session(environ)
            server.stop()
        return counter_app(environ, start_response)

    store = SpyStore(close_after(create_postgres_store(server.url(), timeout=0.5)))
    client = make_client(app, store=store)
    assert client.get("/").text == "1"

    with pytest.raises(SessionStoreError) as raised:
        client.get("/halt")
    assert "the session store failed" in str(raised.value)
    store.calls.clear()
    for _ in range(3):  # the server stays down for a while
        with pytest.raises(SessionStoreError):
            client.get("/")
    assert store.names() == ["get"] * 3  # no silent new session, nothing written
    assert client.get("/plain").text == "plain"

    server.start()
    assert client.get("/").text == "2"  # the session survived; the increment of /halt was never written


def test_a_restart_between_requests_leaves_dead_connections_that_are_replaced(
    server, make_client, close_after
):
    store = close_after(create_postgres_store(server.url()))
    client = make_client(store=store)
    assert client.get("/").text == "1"
    before = backend_pids(store, 3)  # three connections in the pool, as under threaded workers
    assert len(set(before)) == 3
    server.stop()
    server.start()
    assert [client.get("/").text for _ in range(3)] == ["2", "3", "4"]
    assert not set(backend_pids(store, 3)) & set(before)


def test_a_statement_waiting_past_the_timeout_raises_and_writes_nothing(
    postgres_server, postgres_url, make_client, close_after
):
    """A row another transaction holds: the update gives up after the statement timeout."""
    import psycopg

    client = make_client(store=close_after(create_postgres_store(postgres_url, timeout=0.5)))
    assert client.get("/").text == "1"
    with psycopg.connect(postgres_url) as other:  # a transaction, open until the block ends
        other.execute("SELECT 1 FROM wsgi_session FOR UPDATE")
        with pytest.raises(SessionStoreError) as raised:
            client.get("/")
        assert isinstance(raised.value.__cause__, psycopg.errors.QueryCanceled)
        assert "statement timeout" in str(raised.value)
    assert '"visits":1}' in postgres_server.execute("SELECT payload FROM wsgi_session")[0][0]
    assert client.get("/").text == "2"


def test_a_server_that_never_answers_fails_within_the_timeout(make_client, close_after):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        client = make_client(
            store=close_after(create_postgres_store(f"host=127.0.0.1 port={port}", timeout=0.5))
        )
        started = time.monotonic()
        with pytest.raises(SessionStoreError) as raised:
            client.get("/")
        assert "couldn't get a connection" in str(raised.value)
        assert time.monotonic() - started < 10  # bounded, not hung: generous for a loaded machine
        assert client.get("/plain").text == "plain"


def _in_child(store: Any, results: Any) -> None:
    session_id = new_session_id()
    store.set(session_id, "from the child", 60)
    results.put((session_id, backend_pids(store)[0]))


def test_a_forked_process_opens_its_own_pool_and_leaves_the_parents_alone(postgres_url, close_after):
    store = close_after(create_postgres_store(postgres_url))
    store.set(new_session_id(), "before the fork", 60)
    (parent,) = backend_pids(store)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_in_child, args=(store, results))
    child.start()
    session_id, child_pid = results.get(timeout=30)
    child.join(30)
    assert child.exitcode == 0
    assert child_pid != parent
    # The child's exit closed nothing of the parent's: the same connection still answers.
    assert store.get(session_id).payload == "from the child"
    assert backend_pids(store) == [parent]


def test_a_pool_of_the_apps_own_is_used_as_it_is(postgres_url, make_client, close_after):
    """Its connections open transactions and return rows as dicts: the store commits each
    statement alone, reads its rows by position, and gives each connection back as it came."""
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    with ConnectionPool(postgres_url, kwargs={"row_factory": dict_row}, min_size=1, open=True) as pool:
        store = close_after(create_postgres_store(pool=pool))
        client = make_client(store=store)
        assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
        with pool.connection() as connection:
            assert connection.autocommit is False
            rows = connection.execute("SELECT count(*) AS sessions FROM wsgi_session").fetchall()
            assert rows == [{"sessions": 1}]
        store.close()  # the app's pool is the app's to close
        assert not pool.closed
        assert client.get("/").text == "4"


def test_an_outage_mid_request_on_the_apps_own_pool_gives_its_connection_back(server, make_client):
    """A connection the outage broke, of a pool that opens transactions, goes back to be discarded."""
    import psycopg
    from psycopg_pool import ConnectionPool

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/halt":
            get_session(environ)
            server.stop()
        return counter_app(environ, start_response)

    with ConnectionPool(server.url(), min_size=1, timeout=1, open=True) as pool:
        client = make_client(app, store=create_postgres_store(pool=pool))
        assert client.get("/").text == "1"
        with pytest.raises(SessionStoreError) as raised:
            client.get("/halt")
        assert isinstance(raised.value.__cause__, psycopg.OperationalError)
        assert pool.get_stats().get("returns_bad") == 1  # given back, found broken, discarded
