"""A store in one SQLite file: durable, shared by every process on one machine.

The default for a single host, such as several gunicorn workers: each process, and
each thread in it, opens its own connection, and write-ahead logging lets readers
go on while one writer commits. Every write is a single SQL statement, so it is
atomic on its own: the compare-and-set is an ``UPDATE ... WHERE version = ?``.

Durability: the file runs in WAL mode with ``synchronous=NORMAL``, so a commit does
not wait for the disk. A committed session survives the app crashing or being
restarted; a power cut or an operating-system crash may undo the last moments of
writes, but never corrupts the file.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Hashable
from typing import Any

from .store import StoredSession

#: Seconds a write waits for another process's write to finish before it fails.
BUSY_TIMEOUT = 5.0
#: Expired rows are deleted by the first write after this many seconds.
SWEEP_INTERVAL = 60.0
#: Rows deleted per statement of a sweep, so that it never blocks other writers long.
SWEEP_BATCH = 500

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS wsgi_session (
        id TEXT PRIMARY KEY,
        payload TEXT NOT NULL,
        version INTEGER NOT NULL,
        expires_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS wsgi_session_expires_at ON wsgi_session (expires_at)",
)
_GET = "SELECT payload, version FROM wsgi_session WHERE id = ? AND expires_at > ?"
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
        count: int = self._connection().execute(_COUNT, (time.time(),)).fetchone()[0]
        return count

    def get(self, session_id: str) -> StoredSession | None:
        row = self._connection().execute(_GET, (session_id, time.time())).fetchone()
        if row is None or not isinstance(row[1], int):
            return None  # a version this store never wrote: not a session
        return StoredSession(row[0], row[1])

    def set(self, session_id: str, payload: str, ttl: int) -> None:
        now = time.time()
        self._write(now, _SET, (session_id, payload, secrets.randbits(62), now + ttl))

    def delete(self, session_id: str) -> None:
        self._connection().execute(_DELETE, (session_id,))

    def touch(self, session_id: str, ttl: int) -> None:
        now = time.time()
        self._write(now, _TOUCH, (now + ttl, session_id, now))

    def compare_and_set(self, session_id: str, version: Hashable, payload: str | None, ttl: int) -> bool:
        now = time.time()
        if payload is None:
            return self._write(now, _DELETE_VERSION, (session_id, version, now)) == 1
        return self._write(now, _REPLACE, (payload, now + ttl, session_id, version, now)) == 1

    def _write(self, now: float, statement: str, parameters: tuple[Any, ...]) -> int:
        """Run one writing statement, in its own transaction; sweep first when due."""
        connection = self._connection()
        # No lock: two threads that both find a sweep due only repeat a cheap delete.
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL
            self._sweep(connection, now)
        return connection.execute(statement, parameters).rowcount

    @staticmethod
    def _sweep(connection: sqlite3.Connection, now: float) -> None:
        # One short transaction per batch, so other writers get in between.
        while connection.execute(_SWEEP, (now, SWEEP_BATCH)).rowcount == SWEEP_BATCH:
            pass

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        pid = os.getpid()
        if getattr(local, "pid", None) != pid:
            local.connection = _connect(self.path)
            local.pid = pid
        connection: sqlite3.Connection = local.connection
        return connection


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions, each statement commits alone.
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    # Payloads come back as bytes: a row that is not valid UTF-8 then reads as a
    # corrupt session instead of failing in the driver.
    connection.text_factory = bytes
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


def create_sqlite_store(path: str | os.PathLike[str]) -> SQLiteStore:
    """Return a store keeping sessions in the SQLite file at ``path``, created if absent.

    Safe for many threads and many processes on one machine (gunicorn workers), but
    not on a network file system. The file is switched to WAL mode and the table
    ``wsgi_session`` created; the connection that does so is closed at once, so none
    is inherited by workers forked after this call.
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
    setup = sqlite3.connect(text, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        mode = setup.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise ValueError(f"path {text!r}: SQLite cannot use WAL mode there (journal mode {mode!r})")
        for statement in _SCHEMA:
            setup.execute(statement)
    finally:
        setup.close()
    return SQLiteStore(text)
