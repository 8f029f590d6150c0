"""Sessions of a user: list them, end one, end all the others.

With ``SessionMiddleware(..., user_key="user_id")``, a session whose data holds a
user under that key joins the user's index in the store when it is written, so
that "where you are signed in", "sign out everywhere else" and "end every session
after a password change" need no scan of the store. The index is a hint, the
records are the truth: a session is the user's while its live record says so.
Entries of sessions that ended, expired, were regenerated away or changed user
are dropped as they are met, and every time a user's index doubles past
:data:`CLEAN_FROM` entries, so that it never grows without bound.

A session is shown to its user by a *handle*: a keyed hash of its ID, stable while
the ID lives, useless as a cookie and never turned back into the ID.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json
import time
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .record import decode_record
from .session import RequestSession, end_session, store_call, within_lifetime
from .store import SessionStore

if TYPE_CHECKING:
    from .middleware import SessionMiddleware
    from .settings import Settings

#: A user's index is cleaned when a join brings it to this many entries, or to any
#: power of two above: each clean at least halves what the next must read.
CLEAN_FROM = 64
#: Longest ``User-Agent`` kept in an index entry.
MAX_USER_AGENT = 512
_INDEX_METHODS = ("add_user_session", "remove_user_sessions", "user_sessions")


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    """One live session of a user, as :func:`list_sessions` shows it.

    ``handle`` names the session to :func:`revoke_session`; ``created`` and
    ``last_active`` (its last write or renewal) are epoch seconds; ``current`` tells
    the request's own session; ``user_agent`` and ``ip`` are the request's that made
    the session the user's (behind a proxy, what ``ProxyFix`` gives as
    ``REMOTE_ADDR``).
    """

    handle: str
    created: float
    last_active: float
    current: bool
    user_agent: str | None
    ip: str | None


class _Live(NamedTuple):
    session_id: str
    version: Hashable
    info: SessionInfo


class UserIndex:
    """The ``user_key`` of a middleware, and its store's index of sessions by user."""

    def __init__(self, store: SessionStore, user_key: Any, key: bytes) -> None:
        if not isinstance(user_key, str) or not user_key:
            raise ValueError(f"user_key must be a non-empty string naming a session key, not {user_key!r}")
        missing = [name for name in _INDEX_METHODS if not callable(getattr(store, name, None))]
        if missing:
            raise ValueError(
                f"user_key needs a store that finds sessions by user; {type(store).__name__} "
                f"lacks {', '.join(missing)}"
            )
        self.store: Any = store
        self.key = user_key
        # A key of its own, derived from the signing secret: a handle is no signature.
        handle_key = hmac.new(key, b"wsgi_session session handle", "sha256").digest()
        self._handle_mac = hmac.new(handle_key, digestmod="sha256")

    def check(self, data: Mapping[str, Any]) -> None:
        """Refuse a user that is neither ``str`` nor ``int``: ``TypeError`` naming the key."""
        value = data.get(self.key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
            raise TypeError(
                f"session value for key {self.key!r} (the user_key) must be a str or an int, "
                f"not {type(value).__name__}"
            )

    def user_of(self, data: Mapping[str, Any]) -> str | None:
        """The user ``data`` belongs to, as text: ``42`` and ``"42"`` are one user."""
        value = data.get(self.key)
        if value is None or isinstance(value, bool) or not isinstance(value, (str, int)):
            return None
        return str(value)

    def handle(self, session_id: str) -> str:
        mac = self._handle_mac.copy()
        mac.update(session_id.encode("ascii"))
        return base64.urlsafe_b64encode(mac.digest()[:16]).decode("ascii").rstrip("=")

    # -- what write-back calls ----------------------------------------------------

    def written(
        self,
        settings: Settings,
        previous_user: str | None,
        previous_id: str | None,
        user: str | None,
        session_id: str,
        client: tuple[str | None, str | None],
    ) -> None:
        """A session was written under ``session_id``: move its entry if its user or ID changed.

        A regenerate keeps the user and changes the ID: the new ID joins, and the
        old one's entry goes when next met (its record is a marker, or gone).
        """
        if previous_user is not None and previous_user != user and previous_id is not None:
            store_call(settings, self.store.remove_user_sessions, previous_user, [previous_id])
        if user is None or (user == previous_user and session_id == previous_id):
            return
        user_agent, ip = client
        entry = json.dumps({"user_agent": user_agent and user_agent[:MAX_USER_AGENT], "ip": ip})
        count = store_call(settings, self.store.add_user_session, user, session_id, entry)
        if count >= CLEAN_FROM and count & (count - 1) == 0:
            self.live(settings, user, None)

    def ended(self, settings: Settings, user: str, session_id: str) -> None:
        store_call(settings, self.store.remove_user_sessions, user, [session_id])

    # -- reading ------------------------------------------------------------------

    def live(self, settings: Settings, user: str, current_id: str | None) -> list[_Live]:
        """The user's live sessions, most recently active first; drops the index's dead entries."""
        now = time.time()
        live, dead = [], []
        for session_id, entry, stored, expires_at in store_call(settings, self.store.user_sessions, user):
            found = None if stored is None else decode_record(stored.payload)
            if (
                stored is None
                or not isinstance(found, tuple)
                or self.user_of(found[1]) != user
                or not within_lifetime(found[0], now, settings.absolute_timeout)
            ):
                dead.append(session_id)
                continue
            created = found[0]
            shown = _entry(entry)
            last_active = created if expires_at is None else max(created, expires_at - settings.max_age)
            info = SessionInfo(
                handle=self.handle(session_id),
                created=created,
                last_active=last_active,
                current=session_id == current_id,
                user_agent=shown.get("user_agent"),
                ip=shown.get("ip"),
            )
            live.append(_Live(session_id, stored.version, info))
        if dead:
            store_call(settings, self.store.remove_user_sessions, user, dead)
        live.sort(key=lambda session: session.info.last_active, reverse=True)
        return live


def _entry(entry: str | bytes) -> dict[str, str | None]:
    """An index entry's fields; an entry that is not ours shows nothing."""
    try:
        shown = json.loads(entry)
    except (ValueError, TypeError, RecursionError):
        return {}
    if not isinstance(shown, dict):
        return {}
    return {key: value for key, value in shown.items() if isinstance(value, str)}


# -- the public functions ---------------------------------------------------------


class _Target(NamedTuple):
    settings: Settings
    users: UserIndex
    request: RequestSession | None  # None when called with the middleware
    user: str | None
    current_id: str | None  # the request's own session, shown as "current"

    def live(self) -> list[_Live]:
        assert self.user is not None
        return self.users.live(self.settings, self.user, self.current_id)


def _target(target: Any, user_id: str | int | None) -> _Target:
    """Who is asking, and about whom.

    From the middleware, any user (``user_id`` required). From a request, the current
    session's user only: a ``user_id`` naming someone else matches no session.
    """
    from .api import request_session
    from .middleware import SessionMiddleware

    if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, (str, int))):
        raise TypeError(f"user_id must be a str or an int, not {type(user_id).__name__}")
    if isinstance(target, SessionMiddleware):
        settings, request = target.settings, None
        if user_id is None:
            raise TypeError("user_id is required when the target is the SessionMiddleware")
    else:
        request = request_session(target)
        settings = request.settings
    users = settings.users
    if users is None:
        raise ValueError("sessions of a user need SessionMiddleware(..., user_key=...)")
    if request is None:
        return _Target(settings, users, None, str(user_id), None)
    user = request.user
    if user_id is not None and str(user_id) != user:
        user = None
    return _Target(settings, users, request, user, request.stored_id)


def list_sessions(target: SessionMiddleware | Any, user_id: str | int | None = None) -> list[SessionInfo]:
    """The live sessions of a user, most recently active first.

    ``target`` is a request (or its environ): the current session's user, ``[]`` if
    the session has none. Or the :class:`SessionMiddleware`, with ``user_id``: any
    user, for an admin page or a job.
    """
    found = _target(target, user_id)
    if found.user is None:
        return []
    return [session.info for session in found.live()]


def revoke_session(target: SessionMiddleware | Any, handle: str, user_id: str | int | None = None) -> bool:
    """End the session ``handle`` names, if it is one of the user's live sessions.

    From a request, only the current user's; revoking the request's own session is
    :func:`~wsgi_session.destroy_session`. ``True`` if a session ended. A handle that
    is garbage, stale or another user's ends nothing.
    """
    found = _target(target, user_id)
    if found.user is None or not isinstance(handle, str):
        return False
    for session in found.live():
        if hmac.compare_digest(session.info.handle.encode(), handle.encode("utf-8", "replace")):
            _end(found, session)
            return True
    return False


def revoke_sessions(
    target: SessionMiddleware | Any, user_id: str | int | None = None, *, keep_current: bool = True
) -> int:
    """End every live session of the user; return how many ended.

    From a request, all but its own unless ``keep_current=False``: "sign out
    everywhere else", or everywhere after a password change.
    """
    found = _target(target, user_id)
    if found.user is None:
        return 0
    ended = 0
    for session in found.live():
        if session.info.current and keep_current:
            continue
        _end(found, session)
        ended += 1
    return ended


def _end(found: _Target, session: _Live) -> None:
    if session.info.current and found.request is not None:
        found.request.destroy()  # its response expires the cookie too
        return
    found.settings.events.revoked(session.session_id)
    end_session(found.settings, session.session_id, session.version, found.user, kind="revoke")
