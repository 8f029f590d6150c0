"""A store in one SQLite file: durable, shared by every process on one machine.

The default for a single host, such as several gunicorn workers: each process, and
each thread in it, opens its own connection, and write-ahead logging lets readers
go on while one writer commits. Every write is a single SQL statement, so it is
atomic on its own: the compare-and-set is an ``UPDATE ... WHERE version = ?``.

Durability: the file runs in WAL mode with ``synchronous=NORMAL``, so a commit does
not wait for the disk; the disk is flushed at checkpoints, run by the commit that
leaves the log over 1,000 pages, inside its request. A committed session survives
the app crashing or being restarted; a power cut or an operating-system crash may
undo the writes since the last checkpoint, but never corrupts the file.

Faults: a connection that fails for any reason but a lock or a full disk is closed,
and the next call opens a new one, so that the app writes again as soon as the
file is fixed (made writable again, say), without a restart.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

from .store import StoredSession, UserSession

#: Seconds a write waits for another process's write to finish before it fails.
BUSY_TIMEOUT = 5.0
#: Expired rows are deleted by the first write after this many seconds, and by
#: every write after it while each finds a full batch.
SWEEP_INTERVAL = 60.0
#: Expired rows one write deletes at most: the most a sweep adds to a request.
SWEEP_BATCH = 500

#: SQLite's result codes for a lock held too long by another connection, and for a
#: full disk: the same connection writes again once the lock is free or room is made.
_SOUND_CONNECTION_CODES = (5, 6, 13)  # SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL

_TABLE = """CREATE TABLE IF NOT EXISTS wsgi_session (
    id TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    user_id TEXT,
    user_entry TEXT
)"""
# Columns a file written by an older version lacks, added at start-up.
_ADDED_COLUMNS = {"user_id": "TEXT", "user_entry": "TEXT"}
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS wsgi_session_expires_at ON wsgi_session (expires_at)",
    "CREATE INDEX IF NOT EXISTS wsgi_session_user_id ON wsgi_session (user_id)",
)
_GET = "SELECT payload, version FROM wsgi_session WHERE id = ? AND expires_at > ?"
_EXPIRES_AT = "SELECT expires_at FROM wsgi_session WHERE id = ? AND expires_at > ?"
_COUNT = "SELECT COUNT(*) FROM wsgi_session WHERE expires_at > ?"
# An unconditional write takes a random version, so that an ID deleted and written
# again never repeats a version a reader may still hold; a compare-and-set adds one.
_SET = "INSERT OR REPLACE INTO wsgi_session (id, payload, version, expires_at) VALUES (?, ?, ?, ?)"
_DELETE = "DELETE FROM wsgi_session WHERE id = ?"
_TOUCH = "UPDATE wsgi_session SET expires_at = ? WHERE id = ? AND expires_at > ?"
_REPLACE = """UPDATE wsgi_session SET payload = ?, version = version + 1, expires_at = ?
    WHERE id = ? AND version = ? AND expires_at > ?"""
_DELETE_VERSION = "DELETE FROM wsgi_session WHERE id = ? AND version = ? AND expires_at > ?"
_SWEEP = """DELETE FROM wsgi_session WHERE id IN
    (SELECT id FROM wsgi_session WHERE expires_at <= ? LIMIT ?)"""
_BIND_USER = "UPDATE wsgi_session SET user_id = ?, user_entry = ? WHERE id = ? AND expires_at > ?"
_COUNT_USER = "SELECT COUNT(*) FROM wsgi_session WHERE user_id = ? AND expires_at > ?"
_UNBIND_USER = "UPDATE wsgi_session SET user_id = NULL, user_entry = NULL WHERE user_id = ? AND id IN"
_USER_SESSIONS = """SELECT id, user_entry, payload, version, expires_at FROM wsgi_session
    WHERE user_id = ? AND expires_at > ?"""
# Session IDs per statement that unbinds them: under SQLite's oldest limit of 999
# parameters to a statement.
_IDS_PER_STATEMENT = 500


class SQLiteStore:
    """Sessions in the table ``wsgi_session`` of one SQLite file.

    Connections are kept per thread and per process: a connection opened before a
    ``fork`` is never used after it, as SQLite requires.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._next_sweep = 0.0

    def __repr__(self) -> str:
        return f"<SQLiteStore path={self.path!r}>"

    def __len__(self) -> int:
        """The number of live sessions, as for the memory store."""
        count: int = self._execute(_COUNT, (time.time(),)).fetchone()[0]
        return count

    def get(self, session_id: str) -> StoredSession | None:
        row = self._execute(_GET, (session_id, time.time())).fetchone()
        if row is None or not isinstance(row[1], int):
            return None  # a version this store never wrote: not a session
        return StoredSession(row[0], row[1])

    def set(self, session_id: str, payload: str, ttl: int) -> None:
        now = time.time()
        self._write(now, _SET, (session_id, payload, secrets.randbits(62), now + ttl))

    def delete(self, session_id: str) -> None:
        self._execute(_DELETE, (session_id,))

    def touch(self, session_id: str, ttl: int) -> None:
        now = time.time()
        self._write(now, _TOUCH, (now + ttl, session_id, now))

    def compare_and_set(self, session_id: str, version: Hashable, payload: str | None, ttl: int) -> bool:
        now = time.time()
        if payload is None:
            return self._write(now, _DELETE_VERSION, (session_id, version, now)) == 1
        return self._write(now, _REPLACE, (payload, now + ttl, session_id, version, now)) == 1

    # -- the user index: the sessions of each user, found without a scan ------

    def add_user_session(self, user_id: str, session_id: str, entry: str) -> int:
        """Bind the live session ``session_id`` to ``user_id``, to be listed with ``entry``.

        Returns how many live sessions the user now has. The binding is kept on the
        session's row: it goes with the row when the session is deleted, expires or
        is written anew by :meth:`set`, and a session without a live row (not yet
        written, or gone) is bound to no one.
        """
        now = time.time()
        self._execute(_BIND_USER, (user_id, entry, session_id, now))
        count: int = self._execute(_COUNT_USER, (user_id, now)).fetchone()[0]
        return count

    def remove_user_sessions(self, user_id: str, session_ids: Sequence[str]) -> None:
        """Unbind these sessions from ``user_id``; the sessions themselves stay."""
        for start in range(0, len(session_ids), _IDS_PER_STATEMENT):
            chunk = session_ids[start : start + _IDS_PER_STATEMENT]
            marks = ", ".join("?" * len(chunk))
            self._execute(f"{_UNBIND_USER} ({marks})", (user_id, *chunk))

    def user_sessions(self, user_id: str) -> list[UserSession]:
        """The live sessions bound to ``user_id``: ID, entry, stored session, expiry.

        A row whose version this store never wrote lists no stored session, as
        :meth:`get` reads none.
        """
        rows = self._execute(_USER_SESSIONS, (user_id, time.time())).fetchall()
        return [
            UserSession(
                session_id.decode(errors="replace"),  # bytes, as every text column here
                entry,
                StoredSession(payload, version) if isinstance(version, int) else None,
                expires_at,
            )
            for session_id, entry, payload, version, expires_at in rows
        ]

    # -- for the command line ---------------------------------------------------

    def expires_at(self, session_id: str) -> float | None:
        """When the live session ``session_id`` expires, in seconds since the epoch."""
        row = self._execute(_EXPIRES_AT, (session_id, time.time())).fetchone()
        return None if row is None else float(row[0])

    def purge_expired(self) -> Iterator[int]:
        """Delete every expired row, one batch per statement; yield each batch's count."""
        while True:
            deleted = self._execute(_SWEEP, (time.time(), SWEEP_BATCH)).rowcount
            yield deleted
            if deleted < SWEEP_BATCH:
                return

    def _write(self, now: float, statement: str, parameters: tuple[Any, ...]) -> int:
        """Run one writing statement; first delete one batch of expired rows when due."""
        # No lock: two threads that both find a sweep due only delete two batches.
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL
            if self._execute(_SWEEP, (now, SWEEP_BATCH)).rowcount == SWEEP_BATCH:
                # More may be waiting: the next write takes the next batch, so that
                # a backlog drains over many requests and none pays for all of it.
                self._next_sweep = now
        return self._execute(statement, parameters).rowcount

    def _execute(self, statement: str, parameters: tuple[Any, ...]) -> sqlite3.Cursor:
        """Run one statement, in its own transaction, on this thread's connection.

        A connection that fails for any reason but a lock or a full disk is closed
        and forgotten, and the next call opens a new one: whatever broke it (a file
        made read-only, an I/O error) is then met afresh, and once it is fixed the
        next request writes, without restarting the app.
        """
        connection = self._connection()
        try:
            return connection.execute(statement, parameters)
        except sqlite3.Error as error:
            if not _leaves_connection_sound(error):
                self._forget()
            raise

    def _connection(self) -> sqlite3.Connection:
        local, pid = self._local, os.getpid()
        if getattr(local, "pid", None) == pid:
            if local.writable:
                kept: sqlite3.Connection = local.connection
                return kept
            # Opened while it could not write: serve one call only, so that a
            # connection from a read-only episode never outlives it.
            self._forget()
        connection = _connect(self.path)
        try:
            _check_writable(connection)
        except sqlite3.Error as error:
            local.writable = _leaves_connection_sound(error)  # locked: it can write later
        else:
            local.writable = True
        local.connection, local.pid = connection, pid
        return connection

    def _forget(self) -> None:
        """Close this thread's connection; the next call opens a new one."""
        self._local.connection.close()
        self._local.pid = None


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions, each statement commits alone.
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    # Payloads come back as bytes: a row that is not valid UTF-8 then reads as a
    # corrupt session instead of failing in the driver.
    connection.text_factory = bytes
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


def _check_writable(connection: sqlite3.Connection) -> None:
    """Raise the error SQLite gives if ``connection`` cannot write.

    SQLite opens a connection read-only, without a word, when it may not write the
    file, its -wal or -shm, or their directory; only a write tells. Taking the write
    lock and letting it go writes nothing.
    """
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("ROLLBACK")


def _leaves_connection_sound(error: sqlite3.Error) -> bool:
    """Whether ``error`` only says that another connection held a lock too long, or
    that the disk is full: the connection is sound, and writes once that passes.

    Any other error may mean a connection that fails until it is reopened (opened
    read-only, or on a file since replaced): a new one costs little, so every other
    error drops it. A full disk keeps it: closing the last connection of a file
    deletes its -wal and -shm, which SQLite could not create again, even to read,
    until room is made.
    """
    code = getattr(error, "sqlite_errorcode", None)  # Python 3.11+
    if code is None:
        message = str(error)  # "database is locked", "database table is locked", "database or disk is full"
        return message.endswith(" is full") or " is locked" in message
    # An extended code (SQLITE_BUSY_SNAPSHOT) keeps its primary code in the low byte.
    return code & 0xFF in _SOUND_CONNECTION_CODES


def _unwritable(path: str) -> str | None:
    """The first of the directory, the file, its -wal and -shm this process may not write.

    The directory too, even when the three files exist: SQLite deletes -wal and
    -shm when the last connection closes, and must create them again beside the file.
    """
    directory = os.path.dirname(path)
    if not os.access(directory, os.W_OK | os.X_OK):
        return directory
    for name in (path, path + "-wal", path + "-shm"):
        if os.path.lexists(name) and not os.access(name, os.W_OK):
            return name
    return None


def _create_schema(connection: sqlite3.Connection) -> None:
    """Create the table and its indexes, or add what a file of an older version lacks.

    All under the write lock, so that workers starting together never both add a
    column; taking it is also SQLite's own word that this process can write.
    """
    connection.execute("BEGIN IMMEDIATE")
    connection.execute(_TABLE)
    present = {row[1] for row in connection.execute("PRAGMA table_info(wsgi_session)")}
    for column, kind in _ADDED_COLUMNS.items():
        if column not in present:
            connection.execute(f"ALTER TABLE wsgi_session ADD COLUMN {column} {kind}")
    for index in _INDEXES:
        connection.execute(index)
    connection.execute("COMMIT")


def create_sqlite_store(path: str | os.PathLike[str]) -> SQLiteStore:
    """Return a store keeping sessions in the SQLite file at ``path``, created if absent.

    Safe for many threads and many processes on one machine (gunicorn workers), but
    not on a network file system. The file is switched to WAL mode and the table
    ``wsgi_session`` created (a file written by version 0.1 gains the columns of the
    user index); the connection that does so is closed at once, so none is inherited
    by workers forked after this call.

    A path that SQLite cannot use, or whose file, -wal, -shm or directory this
    process may not write, is a ``ValueError`` naming it: started anyway, every
    write of every worker would fail.
    """
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
    if not isinstance(text, str):
        raise ValueError(f"path must be a file path as text, not {path!r}")
    if text in ("", ":memory:"):
        raise ValueError(f"path must name a database file, shared by every connection, not {text!r}")
    # Absolute, so that a later change of directory (gunicorn --chdir) changes nothing.
    text = os.path.abspath(text)
    if os.path.isdir(text):
        raise ValueError(f"path {text!r} is a directory, not a database file")
    directory = os.path.dirname(text)
    if not os.path.isdir(directory):
        raise ValueError(f"path {text!r}: the directory {directory!r} does not exist")
    unwritable = _unwritable(text)
    if unwritable is not None:
        raise ValueError(
            f"path {text!r}: this process (uid {os.geteuid()}) may not write {unwritable!r}; the app's "
            "user must be able to write the database file, its -wal and -shm files, and their directory"
        )
    try:
        setup = sqlite3.connect(text, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            mode = setup.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise ValueError(f"path {text!r}: SQLite cannot use WAL mode there (journal mode {mode!r})")
            _create_schema(setup)
        finally:
            setup.close()
    except sqlite3.Error as error:
        if _leaves_connection_sound(error):
            raise  # a lock or a full disk: not a matter of configuration
        raise ValueError(f"path {text!r}: SQLite cannot use it as a session store: {error}") from error
    return SQLiteStore(text)
