"""The PostgreSQL store: sessions shared by every process and host that reach one database.

One row per session in one table, with a version column: the compare-and-set is an
``UPDATE ... WHERE version = %s``, which PostgreSQL makes wait for a concurrent
update of the row and then re-checks, so two writers never both win. Every
operation is one statement in its own transaction (autocommit): a request that
reads its session costs one statement, one that updates it two, and no transaction
stays open across a request.

Expiry is checked on every read against the database's clock (``now()``), the one
clock every worker and host share. Expired rows are deleted in small batches by
the writes that find a sweep due, at most one batch per write.

psycopg (3) and psycopg_pool are imported only when a store is created, so that
importing ``wsgi_session`` costs nothing to apps on other stores.
"""

from __future__ import annotations

import functools
import math
import os
import re
import secrets
import select
import threading
import time
import weakref
from collections.abc import Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Callable, NamedTuple
from urllib.parse import unquote

from .store import StoredSession, UserSession

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg_pool import ConnectionPool

    Pool = ConnectionPool[Connection[Any]]

#: Seconds a request waits for a connection of the store's pool, and the statement
#: timeout of its connections. A session statement takes well under a millisecond.
DEFAULT_TIMEOUT = 2.0
#: Connections each process opens at most. A connection is held for one statement at
#: a time, so a few serve many threads.
POOL_MAX_SIZE = 10
#: Expired rows are deleted by the first write after this many seconds...
SWEEP_INTERVAL = 60.0
#: ...or after this many, when the last sweep found a full batch (a backlog).
SWEEP_BACKLOG_INTERVAL = 1.0
#: Rows one sweep deletes at most: the bound on what a request pays for expired rows.
SWEEP_BATCH = 500

#: A table name, optionally schema-qualified: lowercase, so that it means the same
#: quoted or not; each part short enough that its index names fit PostgreSQL's 63.
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,51}(\.[a-z_][a-z0-9_]{0,51})?")

_CREATE = (
    """CREATE TABLE {table} (
        id text COLLATE "C" PRIMARY KEY,
        payload text NOT NULL,
        version bigint NOT NULL,
        expires_at timestamptz NOT NULL,
        user_id text,
        user_entry text
    )""",
    "CREATE INDEX {expires_at_index} ON {table} (expires_at)",
    "CREATE INDEX {user_id_index} ON {table} (user_id) WHERE user_id IS NOT NULL",
)


class _Statements(NamedTuple):
    """The store's SQL, rendered once for its table, so psycopg can prepare each."""

    table: str  # the table's name, quoted
    get: str
    live: str
    set: str
    delete: str
    touch: str
    replace: str
    delete_version: str
    sweep: str
    add_user: str
    remove_user: str
    list_user: str
    expires_at: str
    create: tuple[str, ...]

    @classmethod
    def for_table(cls, table: str) -> _Statements:
        from psycopg import sql

        *schema, name = table.split(".")
        parts = {
            "table": sql.Identifier(*schema, name),
            "expires_at_index": sql.Identifier(f"{name}_expires_at"),
            "user_id_index": sql.Identifier(f"{name}_user_id"),
            "expires": sql.SQL("now() + %s * interval '1 second'"),
        }

        def render(template: str) -> str:
            return sql.SQL(template).format(**parts).as_string(None)

        return cls(
            table=render("{table}"),
            get=render("SELECT payload, version FROM {table} WHERE id = %s AND expires_at > now()"),
            live=render("SELECT count(*) FROM {table} WHERE expires_at > now()"),
            # An unconditional write takes a random version, so that an ID deleted and
            # written again never repeats a version a reader may still hold. It is a
            # new record: it belongs to no user until the session layer says so.
            set=render(
                "INSERT INTO {table} (id, payload, version, expires_at) VALUES (%s, %s, %s, {expires})"
                " ON CONFLICT (id) DO UPDATE SET payload = excluded.payload, version = excluded.version,"
                " expires_at = excluded.expires_at, user_id = NULL, user_entry = NULL"
            ),
            delete=render("DELETE FROM {table} WHERE id = %s"),
            touch=render("UPDATE {table} SET expires_at = {expires} WHERE id = %s AND expires_at > now()"),
            replace=render(
                "UPDATE {table} SET payload = %s, version = version + 1, expires_at = {expires}"
                " WHERE id = %s AND version = %s AND expires_at > now()"
            ),
            delete_version=render(
                "DELETE FROM {table} WHERE id = %s AND version = %s AND expires_at > now()"
            ),
            # SKIP LOCKED: sweepers in other processes, and a write holding an expired
            # row, are passed by rather than waited for. The rows locked here cannot
            # change before they are deleted, so a row renewed meanwhile is never taken.
            sweep=render(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE expires_at <= now()"
                " LIMIT %s FOR UPDATE SKIP LOCKED)"
            ),
            # The user index is two columns of the session's own row: a session deleted
            # or expired leaves its user's sessions with it.
            add_user=render(
                "WITH bound AS (UPDATE {table} SET user_id = %s, user_entry = %s"
                " WHERE id = %s AND expires_at > now() RETURNING id)"
                " SELECT (SELECT count(*) FROM bound)"
                " + (SELECT count(*) FROM {table} WHERE user_id = %s AND id <> %s AND expires_at > now())"
            ),
            remove_user=render(
                "UPDATE {table} SET user_id = NULL, user_entry = NULL WHERE user_id = %s AND id = ANY(%s)"
            ),
            list_user=render(
                "SELECT id, user_entry, payload, version, extract(epoch FROM expires_at)::float8,"
                " expires_at > now() FROM {table} WHERE user_id = %s"
            ),
            expires_at=render(
                "SELECT extract(epoch FROM expires_at)::float8 FROM {table}"
                " WHERE id = %s AND expires_at > now()"
            ),
            create=tuple(render(statement) for statement in _CREATE),
        )


def _row_count(cursor: Any) -> int:
    return int(cursor.rowcount)


def _first_row(cursor: Any) -> Any:
    return cursor.fetchone()


def _all_rows(cursor: Any) -> Any:
    return cursor.fetchall()


class PostgresStore:
    """Sessions in one PostgreSQL table, one row each, through a psycopg connection pool.

    The store's own pool is opened in each process on its first use, so that no
    connection and no pool thread crosses a ``fork`` (gunicorn workers, with or
    without ``--preload``). A pool given to :func:`create_postgres_store` is used
    as it is: creating it per process is its owner's job.
    """

    def __init__(self, table: str, pool: Pool | None, new_pool: Callable[[], Pool] | None) -> None:
        from psycopg import Cursor
        from psycopg.pq import TransactionStatus
        from psycopg.rows import tuple_row

        self.table = table
        # The store's own cursors: a pool's connections may return rows as dicts, or
        # bind parameters on the client, where nothing can be prepared.
        self._cursor = functools.partial(Cursor, row_factory=tuple_row)
        self._idle = TransactionStatus.IDLE
        self._sql = _Statements.for_table(table)
        self._pool = pool
        self._new_pool = new_pool  # None: the pool was given, and is never replaced
        self._lock = threading.Lock()
        self._table_ready = False
        self._next_sweep = 0.0
        if new_pool is not None:
            # Held weakly: a store that is dropped is not kept alive by the hook.
            reference = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _forget_pool(reference()))

    def __repr__(self) -> str:  # never shows the connection string, which may hold a password
        return f"<PostgresStore table={self.table!r}>"

    def __len__(self) -> int:
        """The number of live sessions, as for the other stores."""
        row = self._execute(self._sql.live, (), _first_row)
        assert row is not None
        return int(row[0])

    def get(self, session_id: str) -> StoredSession | None:
        row = self._execute(self._sql.get, (session_id,), _first_row)
        return None if row is None else StoredSession(row[0], row[1])

    def set(self, session_id: str, payload: str, ttl: int) -> None:
        self._write(self._sql.set, (session_id, payload, secrets.randbits(62), ttl))

    def delete(self, session_id: str) -> None:
        self._execute(self._sql.delete, (session_id,))

    def touch(self, session_id: str, ttl: int) -> None:
        self._write(self._sql.touch, (ttl, session_id))

    def compare_and_set(self, session_id: str, version: Hashable, payload: str | None, ttl: int) -> bool:
        if payload is None:
            return self._write(self._sql.delete_version, (session_id, version)) == 1
        return self._write(self._sql.replace, (payload, ttl, session_id, version)) == 1

    # -- the user index: the sessions of one user, found without a scan ------------

    def add_user_session(self, user_id: str, session_id: str, entry: str) -> int:
        """Bind the live session ``session_id`` to ``user_id``, with ``entry`` to list it by.

        Returns how many live sessions the user has now. A session gone or expired is
        not bound.
        """
        row = self._execute(self._sql.add_user, (user_id, entry, session_id, user_id, session_id), _first_row)
        return int(row[0])

    def remove_user_sessions(self, user_id: str, session_ids: Sequence[str]) -> None:
        """Unbind these sessions from ``user_id``; the sessions themselves stay."""
        self._execute(self._sql.remove_user, (user_id, list(session_ids)))

    def user_sessions(self, user_id: str) -> list[UserSession]:
        """Each session bound to ``user_id``, with its stored session and expiry if it is live."""
        return [
            UserSession(session_id, entry, StoredSession(payload, version), expires_at)
            if live
            else UserSession(session_id, entry, None, None)
            for session_id, entry, payload, version, expires_at, live in self._execute(
                self._sql.list_user, (user_id,), _all_rows
            )
        ]

    # -- for the command line ---------------------------------------------------

    def expires_at(self, session_id: str) -> float | None:
        """When the live session ``session_id`` expires, in seconds since the epoch."""
        row = self._execute(self._sql.expires_at, (session_id,), _first_row)
        return None if row is None else float(row[0])

    def purge_expired(self) -> Iterator[int]:
        """Delete every expired row, one batch per statement; yield each batch's count."""
        while True:
            deleted = self._execute(self._sql.sweep, (SWEEP_BATCH,))
            yield deleted
            if deleted < SWEEP_BATCH:
                return

    def close(self) -> None:
        """Close the connections the store opened in this process; a later call opens new ones.

        A pool given to :func:`create_postgres_store` is its owner's to close.
        """
        if self._new_pool is None:
            return
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # -- running statements ---------------------------------------------------

    def _write(self, statement: str, parameters: tuple[Any, ...]) -> int:
        """Run a writing statement; first, when one is due, one batch of the sweep."""
        now = time.monotonic()
        # No lock: two threads that both find a sweep due only delete two batches.
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL
            if self._execute(self._sql.sweep, (SWEEP_BATCH,)) == SWEEP_BATCH:
                self._next_sweep = now + SWEEP_BACKLOG_INTERVAL
        result = self._execute(statement, parameters)
        assert isinstance(result, int)
        return result

    def _execute(
        self, statement: str, parameters: tuple[Any, ...], result: Callable[[Any], Any] = _row_count
    ) -> Any:
        """Run one statement on a pooled connection; return ``result(cursor)``, its row count by default."""
        pool = self._pool
        if pool is None or not self._table_ready:
            pool = self._prepare()
        connection = _live_connection(pool)
        # A pool given to the store may hand out connections that open transactions:
        # each statement here commits alone, and the connection goes back as it came.
        autocommit = connection.autocommit
        try:
            if not autocommit:
                connection.autocommit = True
            cursor = self._cursor(connection)
            cursor.execute(statement, parameters)
            return result(cursor)
        finally:
            # Only on a connection left idle: one that a failure broke, or interrupted
            # mid-statement, cannot take the setting, and goes back for the pool to discard.
            if not autocommit and connection.info.transaction_status == self._idle:
                connection.autocommit = False
            pool.putconn(connection)

    def _prepare(self) -> Pool:
        """Open this process's pool, and create the table if absent, once."""
        with self._lock:
            if self._pool is None:
                assert self._new_pool is not None
                self._pool = self._new_pool()
            if not self._table_ready:
                self._create_table(self._pool)
                self._table_ready = True
            return self._pool

    def _create_table(self, pool: Pool) -> None:
        """Create the table and its indexes, unless it exists.

        Under an advisory lock: workers starting together would otherwise race, and
        ``CREATE TABLE IF NOT EXISTS`` can fail on a duplicate type when they do. An
        existing table is left alone, so the store needs no right to create tables then.
        """
        with pool.connection() as connection, connection.transaction():
            cursor = self._cursor(connection)
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('wsgi_session table'))")
            cursor.execute("SELECT to_regclass(%s)", (self._sql.table,))
            row = cursor.fetchone()
            if row is None or row[0] is None:
                for statement in self._sql.create:
                    cursor.execute(statement)


def _forget_pool(store: PostgresStore | None) -> None:
    """In a forked child: drop the parent's pool, whose threads did not survive the fork.

    Never closed here: its connections are the parent's, still in use there.
    (psycopg closes a connection only in the process that opened it.)
    """
    if store is not None:
        store._lock = threading.Lock()
        store._pool = None


def _live_connection(pool: Pool) -> Connection[Any]:
    """A connection from ``pool`` that the server has not closed.

    A server that restarts, or ends idle connections, closes the pooled ones; an
    idle connection is sent nothing otherwise. So one the server wrote to is
    discarded, without the round trip of a test query, and the next one taken.
    """
    while True:
        connection = pool.getconn()
        if not _has_input(connection.fileno()):
            return connection
        connection.close()
        pool.putconn(connection)  # closed: the pool replaces it


def _has_input(descriptor: int) -> bool:
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([descriptor], [], [], 0)[0])
    # poll, not select: select fails on descriptors past 1023, as a busy process has.
    poller = select.poll()
    poller.register(descriptor, select.POLLIN)
    return bool(poller.poll(0))


def create_postgres_store(
    conninfo: str | None = None,
    *,
    pool: Pool | None = None,
    table: str = "wsgi_session",
    timeout: float = DEFAULT_TIMEOUT,
) -> PostgresStore:
    """Return a store keeping sessions in the PostgreSQL table ``table``, created if absent.

    Connect with ``conninfo``, a libpq connection string (``"host=db dbname=app"``)
    or URI (``"postgresql://user:password@db/app"``); or pass a ready
    ``psycopg_pool.ConnectionPool`` as ``pool``, whose own settings then apply.

    With ``conninfo`` the store opens, in each process on first use, a pool of up to
    ten connections. Each waits at most ``timeout`` seconds for the server: to
    connect (libpq counts whole seconds, at least 2), for a statement to finish
    (``statement_timeout``) and for sent data to be acknowledged
    (``tcp_user_timeout``); a request waits at most ``timeout`` for a connection.

    Nothing connects here: the table (and its indexes) is created on first use, so
    an app starts while its database is down, and its requests that touch no
    session keep working.
    """
    if (conninfo is None) == (pool is None):
        raise ValueError("pass exactly one of conninfo and pool")
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
        raise ValueError(
            f"table must be a lowercase SQL name, optionally schema-qualified, such as"
            f" 'wsgi_session' or 'myapp.sessions', not {table!r}"
        )
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    try:
        from psycopg.conninfo import conninfo_to_dict
        from psycopg_pool import ConnectionPool
    except ImportError as exc:
        raise ImportError(
            "the PostgreSQL store needs psycopg and psycopg_pool: pip install 'wsgi-session[postgres]'"
        ) from exc

    if pool is not None:
        if not isinstance(pool, ConnectionPool):
            raise ValueError(f"pool must be a psycopg_pool.ConnectionPool, not {type(pool).__name__}")
        if timeout != DEFAULT_TIMEOUT:
            raise ValueError("timeout applies to the store's own connections: configure the pool's instead")
        return PostgresStore(table, pool, None)

    if not isinstance(conninfo, str):
        raise ValueError(f"conninfo must be a connection string or URI, not {type(conninfo).__name__}")
    try:
        parameters = conninfo_to_dict(conninfo)
    except Exception as exc:  # psycopg.ProgrammingError, whose message may quote the password
        raise ValueError(
            f"conninfo is not a valid connection string or URI: {_hide_password(str(exc).strip(), conninfo)}"
        ) from None
    for port in str(parameters.get("port", "5432")).split(","):
        if not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"conninfo: the port must be a number from 1 to 65535, not {port!r}")
    milliseconds = max(1, round(timeout * 1000))
    # Appended: a statement_timeout of the connection string's own options is overridden.
    options = f"{parameters.get('options', '')} -c statement_timeout={milliseconds}".strip()
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": max(2, math.ceil(timeout)),
        "tcp_user_timeout": milliseconds,
        "options": options,
        # Shown in pg_stat_activity, unless the connection string names the app.
        "fallback_application_name": "wsgi_session",
    }

    def new_pool() -> Pool:
        return ConnectionPool(
            conninfo,
            kwargs=kwargs,
            # Connections are opened as requests need them, and closed after ten
            # idle minutes: an idle worker holds none of the server's connections.
            min_size=0,
            max_size=POOL_MAX_SIZE,
            timeout=timeout,
            # Past this, the pool stops retrying a failed connect and the next
            # request starts a new try at once. Left to its exponential backoff,
            # after an outage of a minute the pool would wait that long again
            # after the server is back, failing every request meanwhile.
            reconnect_timeout=timeout,
            name="wsgi_session",
            open=True,
        )

    return PostgresStore(table, None, new_pool)


def _hide_password(message: str, conninfo: str) -> str:
    """``message`` with any password ``conninfo`` may hold replaced by ``***``.

    libpq quotes the parts it cannot parse, and sometimes the whole URI. Read by
    hand, not with urllib, since the conninfo is one libpq could not parse.
    """
    # password=... of a key/value string, or of a URI's query.
    passwords = re.findall(r"password\s*=\s*'?([^'\s&]+)", conninfo)
    _, uri, rest = conninfo.partition("://")
    userinfo, at, _ = rest.split("/", 1)[0].rpartition("@")
    if uri and at and ":" in userinfo:
        password = userinfo.split(":", 1)[1]
        passwords += [password, unquote(password)]
    for password in sorted({p for p in passwords if p}, key=len, reverse=True):
        message = message.replace(password, "***")
    return message
