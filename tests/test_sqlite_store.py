"""The SQLite store, on real files: the protocol, through the middleware, and its failures.

The races of ``test_concurrency.py`` and ``test_gunicorn.py`` run on it too.
"""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import SECRET, counter_app

from wsgi_session import SessionMiddleware, SessionStoreError, create_sqlite_store, update_session
from wsgi_session import sqlite_store as sqlite_store_module
from wsgi_session.record import decode_record


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sessions.sqlite3"


def rows(db: Path) -> list[tuple[Any, ...]]:
    """The table as it is on disk, read past the store."""
    with closing(sqlite3.connect(db)) as connection:
        return connection.execute("SELECT id, payload FROM wsgi_session ORDER BY id").fetchall()


def raw_update(db: Path, statement: str, *parameters: Any) -> None:
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.execute(statement, parameters)


def call(app: Any, path: str = "/", cookie: str | None = None) -> tuple[str, dict[str, str], str]:
    """One direct WSGI request; returns the status, the headers and the body."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "443",
        "HTTP_HOST": "example.com",
        "wsgi.url_scheme": "https",
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    response: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        response["status"], response["headers"] = status, dict(headers)
        return lambda data: None

    body = b"".join(app(environ, start_response)).decode()
    return response["status"], response["headers"], body


def session_cookie(headers: dict[str, str]) -> str:
    """The ``name=value`` pair of a ``Set-Cookie`` header, as a browser sends it back."""
    return headers["Set-Cookie"].split(";", 1)[0]


def middleware(store: Any, **options: Any) -> SessionMiddleware:
    return SessionMiddleware(counter_app, store=store, secret=SECRET, **options)


# -- the store protocol ----------------------------------------------------------


def test_get_returns_what_set_wrote_with_a_version(db):
    store = create_sqlite_store(db)
    assert store.get("a") is None
    store.set("a", '{"x":1}', 60)
    stored = store.get("a")
    assert stored is not None
    assert bytes(stored.payload) == b'{"x":1}'
    versions = {stored.version}
    for x in (2, 3):
        store.set("a", f'{{"x":{x}}}', 60)
        again = store.get("a")
        assert again is not None and bytes(again.payload) == f'{{"x":{x}}}'.encode()
        versions.add(again.version)
    assert len(versions) == 3


def test_compare_and_set_writes_only_over_the_version_it_was_given(db):
    store = create_sqlite_store(db)
    store.set("a", "one", 60)
    first = store.get("a")
    assert first is not None
    assert store.compare_and_set("a", first.version, "two", 60)
    second = store.get("a")
    assert second is not None and bytes(second.payload) == b"two"
    assert second.version != first.version
    assert not store.compare_and_set("a", first.version, "stale", 60)
    assert not store.compare_and_set("a", first.version, None, 60)
    assert bytes(store.get("a").payload) == b"two"
    assert not store.compare_and_set("missing", second.version, "x", 60)
    assert store.get("missing") is None


def test_compare_and_set_of_none_deletes(db):
    store = create_sqlite_store(db)
    store.set("a", "one", 60)
    version = store.get("a").version
    assert store.compare_and_set("a", version, None, 60)
    assert store.get("a") is None
    assert rows(db) == []


def test_a_deleted_id_written_again_does_not_reuse_a_version(db):
    store = create_sqlite_store(db)
    store.set("a", "one", 60)
    old = store.get("a").version
    store.delete("a")
    store.set("a", "two", 60)
    assert not store.compare_and_set("a", old, "stale", 60)


def test_delete_removes_and_tolerates_absence(db):
    store = create_sqlite_store(db)
    store.set("a", "one", 60)
    store.delete("a")
    store.delete("a")
    assert store.get("a") is None


def test_expiry_is_enforced_on_read_by_the_store_clock(db, clock):
    store = create_sqlite_store(db)
    store.set("a", "one", 10)
    version = store.get("a").version
    clock.advance(9.5)
    assert store.get("a") is not None
    clock.advance(0.5)
    assert store.get("a") is None
    assert not store.compare_and_set("a", version, "late", 10)
    store.touch("a", 10)
    assert store.get("a") is None
    assert [row[0] for row in rows(db)] == ["a"]  # still on disk, awaiting the sweep


def test_touch_pushes_expiry_and_creates_nothing(db, clock):
    store = create_sqlite_store(db)
    store.set("a", "one", 10)
    version = store.get("a").version
    clock.advance(8)
    store.touch("a", 10)
    clock.advance(8)
    assert store.get("a") is not None
    assert store.get("a").version == version
    store.touch("missing", 10)
    assert store.get("missing") is None


def test_expired_rows_are_swept_now_and_then_not_on_every_write(db, clock):
    store = create_sqlite_store(db)
    store.set("a", "one", 10)  # the first write sweeps, and schedules the next sweep
    store.set("b", "two", 1000)
    clock.advance(20)
    store.set("c", "three", 1000)
    assert [row[0] for row in rows(db)] == ["a", "b", "c"]
    clock.advance(sqlite_store_module.SWEEP_INTERVAL)
    store.set("d", "four", 1000)
    assert [row[0] for row in rows(db)] == ["b", "c", "d"]


def test_a_sweep_takes_one_batch_per_write_while_batches_come_back_full(db, clock, monkeypatch):
    monkeypatch.setattr(sqlite_store_module, "SWEEP_BATCH", 2)
    store = create_sqlite_store(db)
    for name in "abcde":
        store.set(name, "x", 10)
    clock.advance(10 + sqlite_store_module.SWEEP_INTERVAL)
    left = []
    for name in "fghi":
        store.set(name, "y", 1000)
        left.append("".join(row[0] for row in rows(db)))
    # Two full batches, then a short one (e): the backlog is gone, and the next
    # sweep waits for the interval again.
    assert left == ["cdef", "efg", "fgh", "fghi"]
    store.set("j", "z", 10)
    clock.advance(10 + sqlite_store_module.SWEEP_INTERVAL)
    store.set("k", "z", 1000)
    assert "".join(row[0] for row in rows(db)) == "fghik"


def test_one_request_deletes_one_batch_of_a_large_expired_backlog(db, clock):
    """Catalogue row E14: a backlog of expired rows costs each request one batch at most."""
    app = middleware(create_sqlite_store(db))
    cookie = session_cookie(call(app)[1])  # the first write sweeps, and schedules the next sweep
    backlog = 200_000
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.executemany(
            "INSERT INTO wsgi_session (id, payload, version, expires_at) VALUES (?, 'x', 1, ?)",
            ((f"expired-{n}", clock.now - n) for n in range(backlog)),
        )
    clock.advance(sqlite_store_module.SWEEP_INTERVAL)

    def expired() -> int:
        with closing(sqlite3.connect(db)) as connection:
            query = "SELECT COUNT(*) FROM wsgi_session WHERE expires_at <= ?"
            count: int = connection.execute(query, (clock.now,)).fetchone()[0]
        return count

    batch = sqlite_store_module.SWEEP_BATCH
    left = []
    for path in ("/", "/read", "/", "/"):
        assert call(app, path, cookie)[0] == "200 OK"
        left.append(expired())
    # Each writing request took one batch; the one that only read took none.
    assert left == [backlog - batch, backlog - batch, backlog - 2 * batch, backlog - 3 * batch]


# -- the user index ---------------------------------------------------------------


def listed(store: Any, user_id: str) -> dict[str, tuple[bytes, bytes | None]]:
    """A user's sessions: each ID's entry and stored payload."""
    return {
        session_id: (bytes(entry), None if stored is None else bytes(stored.payload))
        for session_id, entry, stored, _ in store.user_sessions(user_id)
    }


def test_a_user_lists_the_sessions_bound_to_them_with_entry_session_and_expiry(db, clock):
    store = create_sqlite_store(db)
    for session_id in ("a", "b", "c"):
        store.set(session_id, f"data {session_id}", 60)
    assert store.add_user_session("alice", "a", '{"ua": "one"}') == 1
    assert store.add_user_session("alice", "b", '{"ua": "two"}') == 2
    assert store.add_user_session("bob", "c", "{}") == 1
    assert listed(store, "alice") == {"a": (b'{"ua": "one"}', b"data a"), "b": (b'{"ua": "two"}', b"data b")}
    [(session_id, _, stored, expires_at)] = store.user_sessions("bob")
    assert (session_id, expires_at) == ("c", clock.now + 60)
    assert stored == store.get("c")
    assert store.user_sessions("carol") == []


def test_a_session_deleted_or_expired_takes_its_entry_with_it(db, clock):
    store = create_sqlite_store(db)
    store.set("short", "x", 10)
    for session_id in ("long", "deleted"):
        store.set(session_id, "x", 1000)
    for session_id in ("short", "long", "deleted"):
        store.add_user_session("alice", session_id, "{}")
    store.delete("deleted")
    clock.advance(10)
    assert set(listed(store, "alice")) == {"long"}
    store.set("new", "x", 1000)
    assert store.add_user_session("alice", "new", "{}") == 2


def test_only_a_live_session_is_bound(db, clock):
    store = create_sqlite_store(db)
    assert store.add_user_session("alice", "never-written", "{}") == 0
    store.set("gone", "x", 10)
    clock.advance(10)
    assert store.add_user_session("alice", "gone", "{}") == 0
    assert store.user_sessions("alice") == []


def test_writes_of_the_session_keep_its_binding_and_a_new_binding_moves_it(db):
    store = create_sqlite_store(db)
    store.set("a", "one", 60)
    store.add_user_session("alice", "a", "{}")
    assert store.compare_and_set("a", store.get("a").version, "two", 60)
    store.touch("a", 60)
    assert listed(store, "alice") == {"a": (b"{}", b"two")}
    assert store.add_user_session("bob", "a", '{"again": 1}') == 1
    assert store.user_sessions("alice") == []
    assert listed(store, "bob") == {"a": (b'{"again": 1}', b"two")}


def test_removing_sessions_unbinds_only_those_of_that_user_and_keeps_the_sessions(db):
    store = create_sqlite_store(db)
    ids = [f"s{n}" for n in range(1200)]  # more than one statement's worth
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.executemany(
            "INSERT INTO wsgi_session VALUES (?, 'x', 1, 1e12, 'alice', '{}')", ((i,) for i in ids)
        )
    store.set("bobs", "x", 60)
    store.add_user_session("bob", "bobs", "{}")
    if hasattr(sqlite3.Connection, "setlimit"):  # Python 3.11+
        # At most 999 parameters to a statement, as before SQLite 3.32.
        store._connection().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    store.remove_user_sessions("alice", [*ids[:1100], "bobs"])
    assert set(listed(store, "alice")) == set(ids[1100:])
    assert set(listed(store, "bob")) == {"bobs"}
    assert store.get("s0") is not None
    store.remove_user_sessions("alice", [])
    assert len(store.user_sessions("alice")) == 100


def test_a_bound_row_with_a_foreign_version_lists_no_stored_session(db):
    store = create_sqlite_store(db)
    store.set("a", "x", 60)
    store.add_user_session("alice", "a", "{}")
    raw_update(db, "UPDATE wsgi_session SET version = 'x'")
    [(session_id, entry, stored, _)] = store.user_sessions("alice")
    assert (session_id, bytes(entry), stored) == ("a", b"{}", None)


def test_listing_a_user_uses_the_index_not_a_scan(db):
    create_sqlite_store(db)
    with closing(sqlite3.connect(db)) as connection:
        plan = connection.execute(
            "EXPLAIN QUERY PLAN " + sqlite_store_module._USER_SESSIONS, ("alice", 0)
        ).fetchall()
    assert "USING INDEX wsgi_session_user_id" in " ".join(str(row[-1]) for row in plan)


@pytest.mark.parametrize(
    "path, message",
    [
        ("missing-directory/sessions.sqlite3", "does not exist"),
        ("", "database file"),
        (":memory:", "database file"),
        (".", "is a directory"),
        (b"sessions.sqlite3", "file path as text"),
        (None, "file path as text"),
    ],
)
def test_a_bad_path_fails_at_creation(tmp_path, monkeypatch, path, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=f"path.*{message}"):
        create_sqlite_store(path)


def test_a_relative_path_is_fixed_at_creation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = create_sqlite_store("sessions.sqlite3")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    store.set("a", "one", 60)
    assert [row[0] for row in rows(tmp_path / "sessions.sqlite3")] == ["a"]


VERSION_0_1_SCHEMA = (
    """CREATE TABLE wsgi_session (
        id TEXT PRIMARY KEY,
        payload TEXT NOT NULL,
        version INTEGER NOT NULL,
        expires_at REAL NOT NULL
    )""",
    "CREATE INDEX wsgi_session_expires_at ON wsgi_session (expires_at)",
)


def test_a_file_written_by_version_0_1_gains_the_user_columns_and_keeps_its_sessions(db):
    with closing(sqlite3.connect(db)) as connection, connection:
        for statement in VERSION_0_1_SCHEMA:
            connection.execute(statement)
        connection.execute("INSERT INTO wsgi_session VALUES ('a', 'old', 7, 1e12)")
    # Workers starting together: only one of them adds the columns.
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: create_sqlite_store(db), range(4)))
    with closing(sqlite3.connect(db)) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(wsgi_session)")]
        indexes = {row[1] for row in connection.execute("PRAGMA index_list(wsgi_session)")}
    assert columns == ["id", "payload", "version", "expires_at", "user_id", "user_entry"]
    assert "wsgi_session_user_id" in indexes
    stored = stores[0].get("a")
    assert stored is not None and (bytes(stored.payload), stored.version) == (b"old", 7)
    assert stores[1].compare_and_set("a", 7, "new", 60)


def test_the_file_is_in_wal_mode(db):
    create_sqlite_store(db)
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _write_in_child(store: Any, connection_id: int, results: Any) -> None:
    fresh = store._connection()
    store.set("child", "from the child", 60)
    results.put(id(fresh) != connection_id)


def test_a_forked_process_opens_its_own_connection(db):
    store = create_sqlite_store(db)
    store.set("parent", "before the fork", 60)
    inherited = store._connection()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_write_in_child, args=(store, id(inherited), results))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert results.get(timeout=5) is True
    assert store._connection() is inherited
    assert bytes(store.get("child").payload) == b"from the child"


# -- through the middleware ------------------------------------------------------


def test_two_middlewares_on_one_file_see_each_others_writes(db):
    first, second = middleware(create_sqlite_store(db)), middleware(create_sqlite_store(db))
    _, headers, body = call(first)
    cookie = session_cookie(headers)
    assert body == "1"
    assert call(second, cookie=cookie)[2] == "2"
    assert call(first, cookie=cookie)[2] == "3"


def test_sessions_survive_a_restart_of_the_app(db):
    _, headers, _ = call(middleware(create_sqlite_store(db)))
    cookie = session_cookie(headers)
    restarted = middleware(create_sqlite_store(db))
    assert call(restarted, "/read", cookie)[2] == "{'visits': 1}"


def test_emptying_the_table_logs_everyone_out_while_the_app_runs(db):
    app = middleware(create_sqlite_store(db))
    cookies = [session_cookie(call(app)[1]) for _ in range(3)]
    raw_update(db, "DELETE FROM wsgi_session")  # the command of docs/stores.rst, past the store
    for cookie in cookies:
        status, headers, body = call(app, cookie=cookie)
        assert (status, body) == ("200 OK", "1")
        assert session_cookie(headers) != cookie


def test_a_session_past_its_max_age_is_gone(db, clock):
    app = middleware(create_sqlite_store(db), max_age=100)
    cookie = session_cookie(call(app)[1])
    clock.advance(99)
    assert call(app, cookie=cookie)[2] == "2"
    clock.advance(100)
    assert call(app, cookie=cookie)[2] == "1"


@pytest.mark.parametrize(
    "payload",
    [
        "{",
        "[]",
        "null",
        '{"created": "yesterday", "data": {}}',
        '{"created": 1, "data": []}',
        b"\xff\xfe not utf-8",
        "[" * 100_000,
    ],
    ids=["truncated", "array", "null", "bad-created", "bad-data", "not-utf-8", "deep-nesting"],
)
def test_a_corrupt_row_is_a_missing_session(db, caplog, payload):
    app = middleware(create_sqlite_store(db))
    cookie = session_cookie(call(app)[1])
    raw_update(db, "UPDATE wsgi_session SET payload = ?", payload)
    with caplog.at_level(logging.WARNING, logger="wsgi_session"):
        status, headers, body = call(app, cookie=cookie)
    assert (status, body) == ("200 OK", "1")
    assert session_cookie(headers) != cookie
    assert "not a session" in caplog.text


def test_a_row_with_a_foreign_version_is_a_missing_session(db):
    app = middleware(create_sqlite_store(db))
    cookie = session_cookie(call(app)[1])
    raw_update(db, "UPDATE wsgi_session SET version = 'x'")
    status, headers, body = call(app, cookie=cookie)
    assert (status, body) == ("200 OK", "1")
    assert session_cookie(headers) != cookie


# -- store failures --------------------------------------------------------------


def stored_visits(db: Path) -> int:
    (_, payload), *_ = rows(db)
    record = decode_record(payload)
    assert record is not None
    return int(record[1]["visits"])


def test_a_write_locked_out_past_the_busy_timeout_raises_and_keeps_its_connection(db, monkeypatch):
    monkeypatch.setattr(sqlite_store_module, "BUSY_TIMEOUT", 0.05)
    store = create_sqlite_store(db)
    app = middleware(store)
    cookie = session_cookie(call(app)[1])
    connection = store._connection()
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SessionStoreError) as raised:
            call(app, cookie=cookie)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    assert "locked" in str(raised.value)
    assert stored_visits(db) == 1
    assert store._connection() is connection  # sound: it only waited for a lock
    assert call(app, cookie=cookie)[2] == "2"


def grow(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """An app whose session outgrows a database that may not grow."""
    update_session(environ, lambda s: {"visits": 2, "filler": "x" * 100_000})
    start_response("200 OK", [])
    return [b""]


def test_a_full_database_raises_writes_nothing_and_keeps_its_connection(db):
    store = create_sqlite_store(db)
    cookie = session_cookie(call(middleware(store))[1])
    # This thread's connection may not grow the file: "disk full", for real, until
    # the limit is lifted. (tests/test_sqlite_faults.py fills a real disk.)
    connection = store._connection()
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages}")
    app = SessionMiddleware(grow, store=store, secret=SECRET)
    for _ in range(2):
        with pytest.raises(SessionStoreError) as raised:
            call(app, cookie=cookie)
        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
        assert "full" in str(raised.value)
        assert stored_visits(db) == 1
    # Kept: closing the last connection would delete -wal and -shm, which a full
    # disk could not hold again, even to read.
    assert store._connection() is connection
    connection.execute("PRAGMA max_page_count = 1000000")  # room is made
    assert call(app, cookie=cookie)[0] == "200 OK"
    assert stored_visits(db) == 2


def test_a_connection_that_failed_otherwise_is_replaced_by_the_next_call(db):
    store = create_sqlite_store(db)
    app = middleware(store)
    cookie = session_cookie(call(app)[1])
    # This connection alone refuses writes, as one opened on a read-only file does.
    failing = store._connection()
    failing.execute("PRAGMA query_only = 1")
    with pytest.raises(SessionStoreError) as raised:
        call(app, cookie=cookie)
    assert "readonly" in str(raised.value)
    assert store._connection() is not failing
    assert call(app, cookie=cookie)[2] == "2"


@pytest.mark.parametrize(
    "message, sound",
    [
        ("database is locked", True),
        ("database table is locked: wsgi_session", True),
        ("database or disk is full", True),
        ("attempt to write a readonly database", False),
        ("disk I/O error", False),
        ("unable to open database file", False),
        ("no such table: wsgi_session", False),
    ],
)
def test_without_error_codes_the_message_tells_a_sound_connection(message, sound):
    # Before Python 3.11, sqlite3 errors carry no result code: only their message.
    error = sqlite3.OperationalError(message)
    assert getattr(error, "sqlite_errorcode", None) is None
    assert sqlite_store_module._leaves_connection_sound(error) is sound


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 100)
    with pytest.raises(ValueError, match=f"path {str(path)!r}: .*file is not a database"):
        create_sqlite_store(path)


def test_a_database_locked_at_start_up_raises_the_lock_error(db, monkeypatch):
    create_sqlite_store(db)
    monkeypatch.setattr(sqlite_store_module, "BUSY_TIMEOUT", 0.05)
    with closing(sqlite3.connect(db, isolation_level=None)) as locker:
        locker.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            create_sqlite_store(db)  # not a matter of configuration: no ValueError
        locker.execute("ROLLBACK")
