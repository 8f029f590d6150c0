"""The store protocol: what a backend must do for the middleware.

A store keeps one opaque payload (a JSON text) per session ID, with a time to live,
and a version that changes on every write. The version lets the middleware write
back with a compare-and-set, so that two requests of one session updating it at the
same time both count. What a version is belongs to the store: a counter, a row
version, the previous payload itself. The middleware only hands it back.

Every ID a store sees has already been validated: 43 URL-safe characters.
"""

from __future__ import annotations

from collections.abc import Hashable
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
