"""The PostgreSQL store against a real server: the protocol, through the middleware, its SQL.

The races of ``test_concurrency.py`` run on it too; its outages, timeouts and forks
are in ``test_postgres_faults.py``, gunicorn in ``test_postgres_gunicorn.py``.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from typing import Any

import pytest
import webtest
from conftest import SECRET, SpyStore, counter_app
from postgres_server import PostgresServer

from wsgi_session import SessionMiddleware, create_postgres_store, sign_cookie
from wsgi_session import postgres_store as postgres_store_module
from wsgi_session.signing import new_session_id

MAX_AGE = 1000


@pytest.fixture
def store(postgres_url: str, close_after: Any) -> SpyStore:
    """A store on the emptied shared server (replaces the memory store of ``make_client``)."""
    return SpyStore(close_after(create_postgres_store(postgres_url)))


def cookie_header(session_id: str) -> dict[str, str]:
    return {"Cookie": f"session={sign_cookie(session_id, SECRET)}"}


def expire(server: PostgresServer, session_id: str | None = None) -> None:
    """Move rows' expiry into the past on the server's clock, past the store."""
    if session_id is None:
        server.execute("UPDATE wsgi_session SET expires_at = now() - interval '1 second'")
    else:
        server.execute(
            "UPDATE wsgi_session SET expires_at = now() - interval '1 second' WHERE id = %s", session_id
        )


def ids_on_disk(server: PostgresServer) -> list[str]:
    return [row[0] for row in server.execute("SELECT id FROM wsgi_session ORDER BY id")]


# -- without a server -----------------------------------------------------------


def test_importing_wsgi_session_imports_no_psycopg():
    code = (
        "import sys, wsgi_session; "
        "assert not {'psycopg', 'psycopg_pool'} & set(sys.modules), 'psycopg was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "exactly one of conninfo and pool"),
        ({"conninfo": "host=h", "pool": object()}, "exactly one of conninfo and pool"),
        ({"conninfo": b"host=h"}, "conninfo must be"),
        ({"conninfo": "host=h", "table": ""}, "table must be"),
        ({"conninfo": "host=h", "table": "Sessions"}, "table must be"),
        ({"conninfo": "host=h", "table": "my-sessions"}, "table must be"),
        ({"conninfo": "host=h", "table": "s; DROP TABLE users"}, "table must be"),
        ({"conninfo": "host=h", "table": "a.b.c"}, "table must be"),
        ({"conninfo": "host=h", "table": "x" * 53}, "table must be"),
        ({"conninfo": "host=h", "table": None}, "table must be"),
        ({"conninfo": "host=h", "timeout": 0}, "timeout"),
        ({"conninfo": "host=h", "timeout": -1}, "timeout"),
        ({"conninfo": "host=h", "timeout": True}, "timeout"),
        ({"conninfo": "host=h", "timeout": "2"}, "timeout"),
        ({"pool": object()}, "pool must be a psycopg_pool.ConnectionPool"),
        ({"conninfo": "host=h port=abc"}, "port"),
        ({"conninfo": "postgresql://h:70000/db"}, "port"),
        ({"conninfo": "host=h nonsense"}, "conninfo is not a valid"),
        ({"conninfo": "postgresql://h/db?no_such_option=1"}, "no_such_option"),
    ],
)
def test_bad_options_fail_at_construction(options, message):
    with pytest.raises(ValueError, match=message):
        create_postgres_store(**options)


def test_a_pool_excludes_the_store_timeout():
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool("host=127.0.0.1 port=1", open=False)
    with pytest.raises(ValueError, match="timeout applies to the store's own connections"):
        create_postgres_store(pool=pool, timeout=5)


@pytest.mark.parametrize(
    "conninfo",
    [
        "postgresql://ann:hunter2@[::1/db",  # libpq quotes the whole URI
        "postgresql://ann:hun ter2@h/db",  # ... or the part it cannot read
        "postgresql://ann:hun%zzter2@h/db",
        "host=h password='hunter2",
        "host=h password=hunter2 nonsense",
        "postgresql://h/db?password=hunter2&nonsense",
        "postgresql://ann:@h/db?nonsense",  # an empty password hides nothing else
    ],
)
def test_a_bad_conninfo_never_shows_its_password(conninfo):
    with pytest.raises(ValueError, match="conninfo") as raised:
        create_postgres_store(conninfo)
    message = str(raised.value)
    assert "hunter2" not in message and "hun ter2" not in message and "hun%zzter2" not in message
    assert "nonsense" in message or "conninfo is not a valid" in message
    assert raised.value.__suppress_context__  # libpq's own message is not shown below it


def test_repr_hides_the_password():
    store = create_postgres_store("postgresql://ann:hunter2@127.0.0.1:1/db")
    assert repr(store) == "<PostgresStore table='wsgi_session'>"


def test_creating_the_store_connects_to_nothing():
    """The app starts while its database is down; touching a session then fails loudly."""
    store = create_postgres_store("postgresql://127.0.0.1:1/db", timeout=0.2)
    try:
        client = webtest.TestApp(SessionMiddleware(counter_app, store=store, secret=SECRET))
        assert client.get("/plain").text == "plain"
        with pytest.raises(Exception, match="the session store failed"):
            client.get("/")
    finally:
        store.close()


# -- the store protocol -----------------------------------------------------------


def test_get_returns_what_set_wrote_with_a_new_version_each_time(store):
    session_id = new_session_id()
    assert store.get(session_id) is None
    versions = set()
    for x in range(3):
        store.set(session_id, f'{{"x":{x}}}', 60)
        stored = store.get(session_id)
        assert stored.payload == f'{{"x":{x}}}'
        versions.add(stored.version)
    assert len(versions) == 3


def test_compare_and_set_writes_only_over_the_version_it_was_given(store):
    session_id = new_session_id()
    store.set(session_id, "one", 60)
    first = store.get(session_id)
    assert store.compare_and_set(session_id, first.version, "two", 60)
    second = store.get(session_id)
    assert second.payload == "two" and second.version != first.version
    assert not store.compare_and_set(session_id, first.version, "stale", 60)
    assert not store.compare_and_set(session_id, first.version, None, 60)
    assert store.get(session_id).payload == "two"
    missing = new_session_id()
    assert not store.compare_and_set(missing, second.version, "x", 60)
    assert store.get(missing) is None


def test_compare_and_set_of_none_deletes(store, postgres_server):
    session_id = new_session_id()
    store.set(session_id, "one", 60)
    assert store.compare_and_set(session_id, store.get(session_id).version, None, 60)
    assert store.get(session_id) is None
    assert ids_on_disk(postgres_server) == []


def test_a_deleted_id_written_again_does_not_reuse_a_version(store):
    session_id = new_session_id()
    store.set(session_id, "one", 60)
    old = store.get(session_id).version
    store.delete(session_id)
    store.delete(session_id)  # absent: not an error
    store.set(session_id, "two", 60)
    assert not store.compare_and_set(session_id, old, "stale", 60)
    assert store.get(session_id).payload == "two"


def test_ttl_and_touch_count_on_the_server_clock(store, postgres_server):
    session_id = new_session_id()
    store.set(session_id, "one", 100)
    version = store.get(session_id).version
    (left,) = postgres_server.execute(
        "SELECT extract(epoch FROM expires_at - now())::float FROM wsgi_session"
    )
    assert 90 < left[0] <= 100
    store.touch(session_id, 5000)
    (left,) = postgres_server.execute(
        "SELECT extract(epoch FROM expires_at - now())::float FROM wsgi_session"
    )
    assert 4990 < left[0] <= 5000
    assert store.get(session_id).version == version  # a touch is no write of the data
    absent = new_session_id()
    store.touch(absent, 60)
    assert store.get(absent) is None


def test_an_expired_row_is_gone_for_every_operation(store, postgres_server):
    session_id = new_session_id()
    store.set(session_id, "one", 100)
    version = store.get(session_id).version
    expire(postgres_server)
    assert store.get(session_id) is None
    assert not store.compare_and_set(session_id, version, "late", 100)
    assert not store.compare_and_set(session_id, version, None, 100)
    store.touch(session_id, 100)
    assert store.get(session_id) is None
    assert len(store.store) == 0
    assert ids_on_disk(postgres_server) == [session_id]  # on disk, awaiting the sweep
    store.set(session_id, "again", 100)  # a new record over the expired one
    assert store.get(session_id).payload == "again"


def test_a_sweep_deletes_one_bounded_batch_per_due_write(store, postgres_server, monkeypatch):
    monkeypatch.setattr(postgres_store_module, "SWEEP_BATCH", 2)
    monkeypatch.setattr(postgres_store_module, "SWEEP_BACKLOG_INTERVAL", 0)
    monkeypatch.setattr(postgres_store_module, "SWEEP_INTERVAL", 3600)
    for _ in range(5):
        store.set(new_session_id(), "old", 100)  # the first write sweeps (nothing), then none is due
    expire(postgres_server)
    live = new_session_id()
    store.set(live, "live", 100)
    assert len(ids_on_disk(postgres_server)) == 6  # no sweep was due: the expired rows stay
    store.store._next_sweep = 0  # as when SWEEP_INTERVAL has passed
    left = []
    for _ in range(5):
        store.touch(live, 100)
        left.append(len(ids_on_disk(postgres_server)))
    # One batch per due write; a full batch leaves the next sweep due at once, the
    # last, partial one puts it SWEEP_INTERVAL away.
    assert left == [4, 2, 1, 1, 1]
    assert ids_on_disk(postgres_server) == [live]


def test_a_large_expired_backlog_costs_a_write_one_batch(store, postgres_server):
    """Catalogue row E14 on PostgreSQL: 20,000 expired rows, and a due write deletes SWEEP_BATCH."""
    store.set(new_session_id(), "x", 100)  # creates the table; the first write's sweep is done
    postgres_server.execute(
        "INSERT INTO wsgi_session SELECT md5(i::text), 'x', i, now() - interval '1 hour'"
        " FROM generate_series(1, 20000) AS i"
    )
    store.store._next_sweep = 0
    store.set(new_session_id(), "x", 100)
    assert postgres_server.execute("SELECT count(*) FROM wsgi_session") == [
        (20002 - postgres_store_module.SWEEP_BATCH,)
    ]


def test_sql_in_an_id_is_data(store, postgres_server):
    """Catalogue row B3: statements are parameterized; the store never builds SQL from an ID."""
    session_id = new_session_id()
    store.set(session_id, "x", 100)
    hostile = "' OR '1'='1"
    assert store.get(hostile) is None
    store.delete(hostile)
    store.touch(hostile, 100)
    assert not store.compare_and_set(hostile, 1, None, 100)
    assert ids_on_disk(postgres_server) == [session_id]


def test_a_sweep_passes_rows_another_transaction_holds(store, postgres_server):
    """A sweep never waits: an expired row locked elsewhere stays until a later sweep."""
    import psycopg

    held, free = sorted(new_session_id() for _ in range(2))
    store.set(held, "old", 100)
    store.set(free, "old", 100)
    expire(postgres_server)
    store.store._next_sweep = 0
    with psycopg.connect(postgres_server.url()) as other:  # a transaction, open until the block ends
        other.execute("SELECT 1 FROM wsgi_session WHERE id = %s FOR UPDATE", (held,))
        live = new_session_id()
        store.set(live, "live", 100)  # would wait past the statement timeout, and fail, if it waited
        assert sorted(ids_on_disk(postgres_server)) == sorted([held, live])


# -- the table ----------------------------------------------------------------------


def test_the_table_and_its_indexes_are_created_on_first_use(postgres_url, postgres_server, close_after):
    store = close_after(create_postgres_store(postgres_url))
    assert postgres_server.execute("SELECT to_regclass('wsgi_session')") == [(None,)]
    assert store.get(new_session_id()) is None
    indexes = postgres_server.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'wsgi_session' ORDER BY indexname"
    )
    assert [name for name, _ in indexes] == [
        "wsgi_session_expires_at",
        "wsgi_session_pkey",
        "wsgi_session_user_id",
    ]
    assert "WHERE (user_id IS NOT NULL)" in indexes[2][1]


def test_workers_starting_together_create_the_table_once(postgres_url, postgres_server, close_after):
    stores = [close_after(create_postgres_store(postgres_url)) for _ in range(6)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def first_request(store: Any) -> None:
        start.wait()
        try:
            store.set(new_session_id(), "x", 60)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_request, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(ids_on_disk(postgres_server)) == 6


def test_a_schema_qualified_table_needs_no_right_to_create_once_it_exists(
    postgres_server, close_after, make_client
):
    """A table made by an administrator: the app's role may only read and write it."""
    postgres_server.execute("DROP SCHEMA IF EXISTS myapp CASCADE")
    postgres_server.execute("CREATE SCHEMA myapp")
    admin = close_after(create_postgres_store(postgres_server.url(), table="myapp.sessions"))
    admin.set(new_session_id(), "made by the owner", 60)
    user = PostgresServer.PASSWORD_USER
    postgres_server.execute(f"GRANT USAGE ON SCHEMA myapp TO {user}")
    postgres_server.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON myapp.sessions TO {user}")
    app_url = postgres_server.url(user, PostgresServer.PASSWORD)
    client = make_client(store=close_after(create_postgres_store(app_url, table="myapp.sessions")))
    assert [client.get("/").text for _ in range(2)] == ["1", "2"]
    assert postgres_server.execute("SELECT count(*) FROM myapp.sessions") == [(2,)]
    assert postgres_server.execute("SELECT to_regclass('public.sessions')") == [(None,)]


# -- through the middleware ------------------------------------------------------


def test_session_round_trip_through_the_middleware(make_client, postgres_server):
    client = make_client(max_age=MAX_AGE)
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
    ((payload, left),) = postgres_server.execute(
        "SELECT payload, extract(epoch FROM expires_at - now())::float FROM wsgi_session"
    )
    assert '"data":{"visits":3}' in payload
    assert MAX_AGE - 10 < left <= MAX_AGE


def test_a_session_past_max_age_on_the_server_clock_is_gone(make_client):
    client = make_client(max_age=1)
    assert client.get("/").text == "1"
    threading.Event().wait(1.2)  # the real clock: the server's own now() decides
    assert client.get("/").text == "1"


def test_two_store_instances_share_sessions_as_two_processes_would(make_client, postgres_url, close_after):
    first = make_client(store=close_after(create_postgres_store(postgres_url)))
    second = make_client(store=close_after(create_postgres_store(postgres_url)))
    first.get("/")
    second.cookiejar = first.cookiejar
    assert second.get("/").text == "2"
    assert first.get("/").text == "3"


@pytest.mark.parametrize(
    "payload",
    [
        "{",
        "[]",
        "null",
        '{"created": "yesterday", "data": {}}',
        '{"created": 1, "data": []}',
        '{"created":NaN,"data":{}}',
        "[" * 100_000,
    ],
    ids=["truncated", "array", "null", "bad-created", "bad-data", "nan", "deep-nesting"],
)
def test_a_corrupt_row_is_a_missing_session_and_logged(make_client, postgres_server, caplog, payload):
    client = make_client()
    client.get("/")
    (session_id,) = ids_on_disk(postgres_server)
    postgres_server.execute("UPDATE wsgi_session SET payload = %s", payload)
    with caplog.at_level(logging.WARNING, logger="wsgi_session"):
        response = client.get("/")
    assert (response.status_int, response.text) == (200, "1")
    assert "stored data is not a session" in caplog.text
    assert session_id not in caplog.text


# -- round trips -------------------------------------------------------------------


def test_read_costs_one_statement_update_two_none_in_a_transaction(
    postgres_server, postgres_url, close_after
):
    """Counted in the server's own log, from a warm connection."""
    store = close_after(create_postgres_store(postgres_server.counted_url("requests")))
    client = webtest.TestApp(
        SessionMiddleware(counter_app, store=store, secret=SECRET, max_age=MAX_AGE),
        extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "example.com"},
    )
    for _ in range(8):  # psycopg prepares a statement on its sixth use on a connection
        client.get("/")
        client.get("/read")

    def statements(path: str) -> list[str]:
        before = len(postgres_server.statements("requests"))
        client.get(path)
        return postgres_server.statements("requests")[before:]

    read = statements("/read")
    assert len(read) == 1 and read[0].startswith("_pg3_") and "SELECT payload, version" in read[0]
    update = statements("/")
    assert len(update) == 2 and all(statement.startswith("_pg3_") for statement in update)
    assert "SELECT payload, version" in update[0] and "UPDATE" in update[1]
    client.reset()
    assert len(statements("/")) == 1  # a new session: one INSERT
    # The only transaction is the one that created the table; each request statement commits alone.
    assert [s for s in postgres_server.statements("requests") if s in ("BEGIN", "COMMIT")] == [
        "BEGIN",
        "COMMIT",
    ]


def test_a_rolling_read_costs_two_statements(postgres_server, postgres_url, close_after):
    store = close_after(create_postgres_store(postgres_server.counted_url("rolling")))
    client = webtest.TestApp(
        SessionMiddleware(counter_app, store=store, secret=SECRET, rolling=True),
        extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "example.com"},
    )
    client.get("/")
    before = len(postgres_server.statements("rolling"))
    client.get("/read")
    rolling = postgres_server.statements("rolling")[before:]
    assert [statement.split(": ", 1)[1].split()[0] for statement in rolling] == ["SELECT", "UPDATE"]


# -- the user index ---------------------------------------------------------------


def test_a_user_index_binds_lists_and_unbinds_live_sessions(store, postgres_server):
    first, second, third = (new_session_id() for _ in range(3))
    for session_id in (first, second, third):
        store.set(session_id, f'"{session_id}"', 100)
    assert store.add_user_session("ann", first, '{"ua":"a"}') == 1
    assert store.add_user_session("ann", second, '{"ua":"b"}') == 2
    assert store.add_user_session("ann", second, '{"ua":"b2"}') == 2  # bound again: counted once
    assert store.add_user_session("bob", third, "{}") == 1
    listed = {session_id: rest for session_id, *rest in store.user_sessions("ann")}
    assert set(listed) == {first, second}
    entry, stored, expires_at = listed[second]
    assert entry == '{"ua":"b2"}'
    assert stored == store.get(second)
    ((now,),) = postgres_server.execute("SELECT extract(epoch FROM now())::float")
    assert now + 90 < expires_at <= now + 100
    store.remove_user_sessions("ann", [first, third])  # third is bob's: left alone
    assert [session_id for session_id, *_ in store.user_sessions("ann")] == [second]
    assert [session_id for session_id, *_ in store.user_sessions("bob")] == [third]
    assert store.get(first) is not None  # unbinding ends no session
    assert store.user_sessions("nobody") == []


def test_sessions_leave_their_user_when_deleted_expired_or_written_anew(store, postgres_server):
    kept, deleted, expired, rewritten = (new_session_id() for _ in range(4))
    for session_id in (kept, deleted, expired, rewritten):
        store.set(session_id, "x", 100)
        store.add_user_session("ann", session_id, "{}")
    version = store.get(kept).version
    assert store.compare_and_set(kept, version, "y", 100)  # an update keeps its user
    store.delete(deleted)
    expire(postgres_server, expired)
    store.set(rewritten, "a new record", 100)
    listed = {session_id: stored for session_id, _, stored, _ in store.user_sessions("ann")}
    assert listed == {kept: store.get(kept), expired: None}  # expired: listed as gone, until swept
    assert store.add_user_session("ann", expired, "{}") == 1  # an expired session is not bound again
    assert store.add_user_session("ann", deleted, "{}") == 1


def test_each_user_index_operation_is_one_statement_found_through_its_index(
    postgres_server, postgres_url, close_after
):
    store = close_after(create_postgres_store(postgres_server.counted_url("users")))
    session_id = new_session_id()
    store.set(session_id, "x", 100)
    for operation in (
        lambda: store.add_user_session("ann", session_id, "{}"),
        lambda: store.user_sessions("ann"),
        lambda: store.remove_user_sessions("ann", [session_id]),
    ):
        before = len(postgres_server.statements("users"))
        operation()
        assert len(postgres_server.statements("users")) == before + 1
    postgres_server.execute(
        "INSERT INTO wsgi_session SELECT md5(i::text), 'x', i, now() + interval '1 hour',"
        " 'user' || mod(i, 500), '{}' FROM generate_series(1, 20000) AS i"
    )
    postgres_server.execute("ANALYZE wsgi_session")
    plan = postgres_server.execute("EXPLAIN " + store._sql.list_user.replace("%s", "'user7'"))
    assert "wsgi_session_user_id" in " ".join(line for (line,) in plan)
