"""An in-process store for development and tests.

Each process has its own: under several gunicorn workers a user's next request may
land in a worker that never saw the session. Use the SQLite store on one host and
the Redis store across hosts.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import NamedTuple

from .store import StoredSession

DEFAULT_MAX_ENTRIES = 10_000


class _Entry(NamedTuple):
    payload: str
    version: int
    expires_at: float


class MemoryStore:
    """A bounded, thread-safe mapping of session ID to payload, with expiry.

    Entries are kept in the order they were last written or touched. With one
    ``max_age`` for all sessions that is also the order in which they expire, so
    when the store is full the first entry, expired or about to, makes room.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if not isinstance(max_entries, int) or isinstance(max_entries, bool) or max_entries < 1:
            raise ValueError("max_entries must be a positive integer")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._versions = itertools.count(1)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, session_id: str) -> StoredSession | None:
        with self._lock:
            entry = self._live(session_id)
            return None if entry is None else StoredSession(entry.payload, entry.version)

    def set(self, session_id: str, payload: str, ttl: int) -> None:
        with self._lock:
            self._put(session_id, payload, ttl)

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._entries.pop(session_id, None)

    def touch(self, session_id: str, ttl: int) -> None:
        with self._lock:
            entry = self._live(session_id)
            if entry is not None:
                self._entries[session_id] = entry._replace(expires_at=time.time() + ttl)
                self._entries.move_to_end(session_id)

    def compare_and_set(self, session_id: str, version: Hashable, payload: str | None, ttl: int) -> bool:
        with self._lock:
            entry = self._live(session_id)
            if entry is None or entry.version != version:
                return False
            if payload is None:
                del self._entries[session_id]
            else:
                self._put(session_id, payload, ttl)
            return True

    def _live(self, session_id: str) -> _Entry | None:
        entry = self._entries.get(session_id)
        if entry is not None and entry.expires_at <= time.time():
            del self._entries[session_id]
            return None
        return entry

    def _put(self, session_id: str, payload: str, ttl: int) -> None:
        self._entries.pop(session_id, None)
        while len(self._entries) >= self.max_entries:
            self._entries.popitem(last=False)
        self._entries[session_id] = _Entry(payload, next(self._versions), time.time() + ttl)


def create_memory_store(*, max_entries: int = DEFAULT_MAX_ENTRIES) -> MemoryStore:
    """Return an in-process store holding at most ``max_entries`` sessions.

    Thread-safe and expiry-enforcing, but private to one process: for development
    and tests, not for several workers.
    """
    return MemoryStore(max_entries)
