"""The store protocol: what a backend must do for the middleware.

A store keeps one opaque payload (a JSON text) per session ID, with a time to live,
and a version that changes on every write. The version lets the middleware write
back with a compare-and-set, so that two requests of one session updating it at the
same time both count. What a version is belongs to the store: a counter, a row
version, the previous payload itself. The middleware only hands it back.

Every ID a store sees has already been validated: 43 URL-safe characters.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import NamedTuple, Protocol


class StoredSession(NamedTuple):
    """What :meth:`SessionStore.get` returns: the payload and its version."""

    payload: str | bytes
    version: Hashable


class SessionStore(Protocol):
    """The methods a session store provides. All of them may block.

    A store raises :class:`~wsgi_session.SessionStoreError` (or lets any exception
    escape, which the middleware wraps in one) when it cannot answer. It never
    answers "missing" for "unreachable".
    """

    def get(self, session_id: str) -> StoredSession | None:
        """The live record of ``session_id``, or ``None`` if absent or expired."""

    def set(self, session_id: str, payload: str, ttl: int) -> None:
        """Write the record unconditionally, to expire ``ttl`` seconds from now."""

    def delete(self, session_id: str) -> None:
        """Remove the record; removing an absent one is not an error."""

    def touch(self, session_id: str, ttl: int) -> None:
        """Push the record's expiry to ``ttl`` seconds from now, if it still exists."""

    def compare_and_set(self, session_id: str, version: Hashable, payload: str | None, ttl: int) -> bool:
        """Replace the record only if its version is still ``version``.

        ``payload=None`` deletes it instead. Returns ``False``, writing nothing, when
        the record changed or disappeared since that version was read.
        """


class UserSession(NamedTuple):
    """One entry of a user's index, as :meth:`UserIndexStore.user_sessions` returns it."""

    session_id: str
    entry: str | bytes  # the text given to add_user_session
    stored: StoredSession | None  # the session's live record, or None if it is gone
    expires_at: float | None  # when that record expires, in epoch seconds, if known


class UserIndexStore(SessionStore, Protocol):
    """What a store adds so that ``user_key`` can find a user's sessions without a scan.

    The index may keep entries of sessions that ended: the middleware checks each
    record and removes what is stale. It must never lose the entry of a live
    session that was added and not removed.
    """

    def add_user_session(self, user_id: str, session_id: str, entry: str) -> int:
        """Note that ``session_id`` belongs to ``user_id``; return the user's entry count."""

    def remove_user_sessions(self, user_id: str, session_ids: Sequence[str]) -> None:
        """Drop those entries from the user's index; absent ones are not an error."""

    def user_sessions(self, user_id: str) -> list[UserSession]:
        """Every entry of the user's index, with its session's live record if any."""
