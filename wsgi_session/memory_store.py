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
from collections.abc import Hashable, Sequence
from typing import NamedTuple

from .errors import SessionStoreError
from .store import StoredSession, UserSession

DEFAULT_MAX_ENTRIES = 10_000
#: Seconds between two full sweeps for expired entries when the store is full.
FULL_SWEEP_INTERVAL = 1.0


class _Entry(NamedTuple):
    payload: str
    version: int
    expires_at: float


class MemoryStore:
    """A bounded, thread-safe mapping of session ID to payload, with expiry.

    Entries are kept in the order they were last written or touched, which is
    nearly the order in which they expire. When the store is full, expired entries
    make room; a live session is never evicted: a new one is refused instead, so that
    a flood of new visitors cannot log everyone out.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if not isinstance(max_entries, int) or isinstance(max_entries, bool) or max_entries < 1:
            raise ValueError("max_entries must be a positive integer")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._users: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._versions = itertools.count(1)
        self._next_full_sweep = 0.0

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

    # -- for the command line ---------------------------------------------------------

    def expires_at(self, session_id: str) -> float | None:
        with self._lock:
            entry = self._live(session_id)
            return None if entry is None else entry.expires_at

    # -- the index of sessions by user ------------------------------------------------

    def add_user_session(self, user_id: str, session_id: str, entry: str) -> int:
        with self._lock:
            sessions = self._users.setdefault(user_id, {})
            sessions[session_id] = entry
            return len(sessions)

    def remove_user_sessions(self, user_id: str, session_ids: Sequence[str]) -> None:
        with self._lock:
            sessions = self._users.get(user_id, {})
            for session_id in session_ids:
                sessions.pop(session_id, None)
            if not sessions:
                self._users.pop(user_id, None)

    def user_sessions(self, user_id: str) -> list[UserSession]:
        with self._lock:
            found = []
            for session_id, entry in self._users.get(user_id, {}).items():
                live = self._live(session_id)
                stored = None if live is None else StoredSession(live.payload, live.version)
                found.append(
                    UserSession(session_id, entry, stored, None if live is None else live.expires_at)
                )
            return found

    # -- under the lock ---------------------------------------------------------------

    def _live(self, session_id: str) -> _Entry | None:
        entry = self._entries.get(session_id)
        if entry is not None and entry.expires_at <= time.time():
            del self._entries[session_id]
            return None
        return entry

    def _put(self, session_id: str, payload: str, ttl: int) -> None:
        now = time.time()
        if self._entries.pop(session_id, None) is None and len(self._entries) >= self.max_entries:
            self._make_room(now)
        self._entries[session_id] = _Entry(payload, next(self._versions), now + ttl)

    def _make_room(self, now: float) -> None:
        """Drop expired entries, oldest first; refuse the new entry if none has expired.

        The oldest entry is almost always the first to expire. Entries of shorter
        lives (a replaced ID's marker) may expire behind it: a full sweep finds
        those, at most once a second, so that a flood of refused sessions costs no
        scan each.
        """
        entries = self._entries
        while entries and next(iter(entries.values())).expires_at <= now:
            entries.popitem(last=False)
        if len(entries) >= self.max_entries and now >= self._next_full_sweep:
            self._next_full_sweep = now + FULL_SWEEP_INTERVAL
            for session_id in [key for key, entry in entries.items() if entry.expires_at <= now]:
                del entries[session_id]
        if len(entries) >= self.max_entries:
            raise SessionStoreError(
                f"the memory store is full: {self.max_entries} live sessions (max_entries); "
                "a new session is refused so that no live one is evicted"
            )


def create_memory_store(*, max_entries: int = DEFAULT_MAX_ENTRIES) -> MemoryStore:
    """Return an in-process store holding at most ``max_entries`` sessions.

    Thread-safe and expiry-enforcing, but private to one process: for development
    and tests, not for several workers. When full of live sessions it refuses new
    ones (``SessionStoreError``) rather than evict a live one.
    """
    return MemoryStore(max_entries)
