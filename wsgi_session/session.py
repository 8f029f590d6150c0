"""The session of one request: loaded on first use, written back once.

:class:`RequestSession` is what the middleware puts in the environ. It records the
updaters the request applied, so that at write-back, if another request of the
same session wrote first, it can apply them again to the fresh data and retry the
compare-and-set: no update is lost, and no lock is held across a request.

A request's session is in one of three states once loaded:

- *stored*: the cookie's ID has a record, which write-back updates with a
  compare-and-set;
- *new*: a fresh ID, stored only if the request writes to it;
- *detached*: an empty session that is never stored and never sends a cookie,
  for a request that carries an ID a regenerate replaced moments ago (see
  ``regenerate_window``) or that met a store outage under
  ``on_store_error="anonymous"``.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Hashable, Mapping
from time import perf_counter
from types import MappingProxyType
from typing import Any, Callable, TypeVar

from .errors import SessionConflictError, SessionError, SessionStoreError
from .record import Data, Replaced, decode_record, encode_data, encode_record, encode_replaced
from .settings import Settings
from .signing import new_session_id

#: Tries of the compare-and-set at write-back before SessionConflictError. With eight
#: threads writing one session without pause, about half the tries lose to another
#: write, so 20 tries let about one request in 100,000 fail; 50 make that negligible,
#: and a request that truly cannot win still gives up after one to two seconds.
MAX_ATTEMPTS = 50
#: Longest pause, in seconds, between two tries. The pause is random and grows with
#: each try, so that racing requests stop colliding instead of failing in lockstep.
MAX_BACKOFF = 0.05
#: Regenerates a destroy follows from an old ID to the session that replaced it.
MAX_SUCCESSORS = 8
#: Seconds a stored creation time may lie ahead of this clock (hosts' clocks differ a
#: little); further ahead, the record is not a session: it would stretch
#: ``absolute_timeout``.
MAX_CLOCK_SKEW = 60.0

#: Session keys a regenerate drops, so that the framework makes a new CSRF token: a
#: token an attacker learned in a session planted in the victim's browser must not
#: outlive the victim's login. Pyramid's key (also the Pyramid adapter's) and
#: Flask-WTF's default; an adapter adds a key configured otherwise.
CSRF_TOKEN_KEYS = ("_csrft_", "csrf_token")

Updater = Callable[[Mapping[str, Any]], Mapping[str, Any]]
T = TypeVar("T")


class _Delete(enum.Enum):
    DELETE = "DELETE"

    def __repr__(self) -> str:
        return "wsgi_session.DELETE"


#: Return this as a value from an updater to remove that key from the session.
DELETE = _Delete.DELETE


def apply_updater(data: Data, updater: Updater, settings: Settings) -> tuple[Data, str]:
    """Merge what ``updater`` returns into a copy of ``data``; return it and its JSON.

    The copy leaves ``data`` untouched when the update is refused.
    """
    changes = updater(MappingProxyType(data))
    # dict first: it is what updaters return, and its check skips the ABC machinery.
    if not isinstance(changes, (dict, Mapping)):
        raise TypeError(f"an updater must return a mapping, not {type(changes).__name__}")
    merged = dict(data)
    for key, value in changes.items():
        if not isinstance(key, str):
            raise TypeError(f"session keys must be strings, not {key!r}")
        if value is DELETE:
            merged.pop(key, None)
        else:
            merged[key] = value
    if settings.users is not None:
        settings.users.check(merged)
    encoded = encode_data(merged)
    if settings.max_size is not None and len(encoded) > settings.max_size:
        raise ValueError(f"session data would be {len(encoded)} bytes, over max_size={settings.max_size}")
    return merged, encoded


def initial_data(settings: Settings) -> Data:
    """A new session's data, checked as an update is.

    So a value of ``generate`` that JSON cannot encode fails at first use, naming
    its key, and not later at write-back.
    """
    generate = settings.generate
    if generate is None:
        return {}
    data, _ = apply_updater({}, lambda _: generate(), settings)
    return data


class RequestSession:
    """The session accessor of one request, found at ``environ["wsgi_session"]``.

    Use it through :func:`get_session` and its siblings; its methods are theirs.
    """

    __slots__ = (
        "_client",
        "_cookie_header",
        "_created",
        "_data",
        "_detached",
        "_encoded",
        "_finished",
        "_loaded_user",
        "_regenerated",
        "_renewed_keys",
        "_replaced_id",
        "_restarted",
        "_session_id",
        "_settings",
        "_signed_cookie",
        "_stored_id",
        "_updaters",
        "_version",
        "accessed",
    )
    accessed: bool  # the request touched the session, which is then loaded
    _stored_id: str | None  # the ID whose record was loaded; None for a new session
    _version: Hashable  # the loaded record's version, for the compare-and-set
    _session_id: str | None  # the ID to write back; None once destroyed
    _signed_cookie: str | None  # the request's cookie, if it can be sent back as is
    _created: float
    _data: Data | None
    _encoded: str | None  # _data as JSON, kept from the last update
    _updaters: list[Updater]  # replayed on fresh data when a write conflicts
    _regenerated: bool
    _restarted: bool  # updated after destroy: a new session, the old ID to end
    _detached: bool  # never stored, never sends a cookie, until destroyed
    _replaced_id: str | None  # the cookie's ID, when a regenerate replaced it
    _loaded_user: str | None  # the user the loaded record belongs to (with user_key)
    _renewed_keys: tuple[str, ...]  # keys a regenerate drops (framework CSRF tokens)

    def __init__(self, settings: Settings, environ: Mapping[str, Any]) -> None:
        # Only what the session needs, not the environ: the environ holds this
        # session, and a reference back would leave every request as a cycle for
        # the garbage collector.
        self._settings = settings
        self._cookie_header: str | None = environ.get("HTTP_COOKIE")
        self._client: tuple[str | None, str | None] | None = (
            None if settings.users is None else (environ.get("HTTP_USER_AGENT"), environ.get("REMOTE_ADDR"))
        )
        self._renewed_keys = CSRF_TOKEN_KEYS
        self.accessed = False
        self._finished = False

    # -- what the functional API calls ----------------------------------------

    def get(self) -> Mapping[str, Any] | None:
        # Allowed after the response started: a streamed body may read the session,
        # as it was written back.
        if not self.accessed:
            self._load()
        return None if self._data is None else MappingProxyType(self._data)

    def update(self, updater: Updater) -> Mapping[str, Any]:
        self._ensure_open()
        if self._data is None:  # destroyed: an update starts a new session
            self._start_new()
            self._restarted = True
        assert self._data is not None
        self._data, self._encoded = apply_updater(self._data, updater, self._settings)
        self._updaters.append(updater)
        return MappingProxyType(self._data)

    def destroy(self) -> None:
        self._ensure_open()
        self._session_id = self._data = self._encoded = None
        self._updaters = []
        # A logout is written back even from a detached session: through a replaced
        # ID it ends the successor; in an outage the browser at least forgets its
        # cookie. What the request writes after it is a new session, as always.
        self._detached = False

    def regenerate(self) -> None:
        self._ensure_open()
        if self._data is None or self._detached:
            return
        self._session_id = new_session_id()
        self._regenerated = True
        stale = [key for key in self._renewed_keys if key in self._data]
        if stale:
            self.update(lambda _: dict.fromkeys(stale, DELETE))

    # -- what framework adapters use --------------------------------------------

    def renew_at_regenerate(self, key: str) -> None:
        """Have :meth:`regenerate` drop ``key`` too: a CSRF token of another name."""
        if key not in self._renewed_keys:
            self._renewed_keys += (key,)

    @property
    def is_new(self) -> bool:
        """True while the session was not loaded from the store."""
        self.get()
        return self._stored_id is None or self._restarted

    @property
    def created(self) -> float:
        """When the session started, in seconds since the epoch."""
        self.get()
        return self._created

    @property
    def stored_id(self) -> str | None:
        """The ID whose record this request loaded: the browser's session; else ``None``."""
        self.get()
        return self._stored_id

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def user(self) -> str | None:
        """The user the session belongs to (``user_key``), as loaded or as changed since."""
        users = self._settings.users
        data = self.get()
        return None if users is None or data is None or self._detached else users.user_of(data)

    # -- loading ----------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._finished:
            raise SessionError(
                "the response has already started: session functions that change the "
                "session must be called before start_response"
            )
        if not self.accessed:
            self._load()

    def _load(self) -> None:
        settings = self._settings
        self._signed_cookie = self._replaced_id = self._loaded_user = self._encoded = None
        self._updaters = []
        self._regenerated = self._restarted = self._detached = False
        self._stored_id = None
        session_id, resend, rejected = settings.cookie.read(self._cookie_header)
        if session_id is None:
            outcome = "bad_cookie" if rejected else "new"
        else:
            self._signed_cookie = resend
            outcome = self._load_record(session_id)
        settings.events.loaded(outcome, session_id or self._cookie_header)
        if self._stored_id is None:
            self._start_new()
        self.accessed = True  # only now: if the store failed, the request did not touch the session

    def _load_record(self, session_id: str) -> str:
        """Load what the store holds for a verified ID; return the outcome, for the events."""
        settings = self._settings
        try:
            stored = store_call(settings, settings.store.get, session_id)
        except SessionStoreError as exc:
            if not settings.anonymous_on_store_error:
                raise
            settings.events.outage(exc)
            self._detached = True
            return "unavailable"
        if stored is None:
            return "unknown"
        found = decode_record(stored.payload)
        if isinstance(found, Replaced):
            self._replaced_id, self._detached = session_id, True
            return "replaced"
        if found is None:
            return "corrupt"
        created, data = found
        now = time.time()
        if created > now + MAX_CLOCK_SKEW:
            return "corrupt"  # no session of ours: it would never reach absolute_timeout
        user = None if settings.users is None else settings.users.user_of(data)
        if not within_lifetime(created, now, settings.absolute_timeout):
            end_session(settings, session_id, stored.version, user)
            return "expired"
        self._stored_id = self._session_id = session_id
        self._version = stored.version
        self._created, self._data, self._loaded_user = created, data, user
        return "found"

    def _start_new(self) -> None:
        self._session_id = new_session_id()
        self._version = None
        self._created = time.time()
        self._data = initial_data(self._settings)
        self._encoded = None

    # -- write-back -------------------------------------------------------------

    def finish(self) -> str | None:
        """Write the session back; return the value its cookie must take. Runs once.

        The value is the signed session ID, ``""`` to expire the cookie (as a
        ``Set-Cookie`` that deletes one does), or ``None`` to send no cookie. Called
        by the middleware when the app calls ``start_response``. After it, session
        functions that change the session raise :class:`SessionError`.
        """
        if self._finished:
            raise SessionError("the session was already written back")
        self._finished = True
        if not self.accessed:
            return None
        try:
            return self._write_back()
        except SessionStoreError as exc:
            if not self._settings.anonymous_on_store_error:
                raise
            self._settings.events.outage(exc)
            return None  # dropped: the browser keeps its cookie for when the store is back

    def _write_back(self) -> str | None:
        settings = self._settings
        store, ttl, events = settings.store, settings.max_age, settings.events
        old_id, new_id = self._stored_id, self._session_id
        if self._detached:
            return None
        if self._replaced_id is not None:
            # A logout through a replaced ID (the one way out of a detached session)
            # ends the session that replaced it: a logout racing a login in another
            # tab must still log out.
            end_session(settings, self._replaced_id)
        if new_id is None:  # destroyed
            if old_id is not None:
                end_session(settings, old_id, self._version, self._loaded_user)
            return ""
        if new_id == old_id:
            if self._updaters:
                if not self._commit(replace=False):
                    return None  # ended meanwhile: an end wins over an update
                events.wrote("update")
            elif settings.rolling:
                store_call(settings, store.touch, old_id, ttl)
                events.wrote("touch")
            elif self._signed_cookie:
                return None  # only read: the browser's cookie still holds
            self._index(self._loaded_user, old_id)
            # The request's own cookie goes back as it came, unless an older secret signed it.
            return self._signed_cookie or settings.cookie.sign(new_id)
        # A new ID: a new session, a regenerated one, or one restarted after destroy.
        previous_user, previous_id = self._loaded_user, old_id
        if old_id is not None and self._restarted:
            end_session(settings, old_id, self._version, self._loaded_user)
            kind, previous_user, previous_id = "create", None, None
        elif old_id is not None:
            # Regenerated: the old record becomes a marker of its successor, or goes,
            # only if no one changed it since; else their changes are carried over.
            if not self._commit(replace=True):
                return None
            kind = "regenerate"
        elif self._updaters or self._regenerated or settings.save_uninitialized:
            kind = "create"
        else:
            return None
        store_call(settings, store.set, new_id, self._payload(), ttl)
        events.wrote(kind)
        self._index(previous_user, previous_id)
        return settings.cookie.sign(new_id)

    def _commit(self, *, replace: bool) -> bool:
        """Compare-and-set the loaded record to the data, or to a marker of its successor.

        ``replace`` is for a regenerate: the old ID then holds a marker of the new one
        for ``regenerate_window`` seconds, or nothing at all without a window. On a
        conflict, replay the updaters on the fresh data and try again. Returns
        ``False``, writing nothing, if the stored session was ended or replaced
        meanwhile: the write is dropped, as it must not reach a successor.
        """
        settings = self._settings
        store, events, session_id = settings.store, settings.events, self._stored_id
        assert session_id is not None and self._session_id is not None
        window = settings.regenerate_window
        for attempt in range(MAX_ATTEMPTS):
            if not replace:
                payload, ttl = self._payload(), settings.max_age
            elif window:
                payload, ttl = encode_replaced(self._session_id), window
            else:
                payload, ttl = None, settings.max_age
            if store_call(settings, store.compare_and_set, session_id, self._version, payload, ttl):
                return True
            events.conflict()
            time.sleep(random.uniform(0, min(MAX_BACKOFF, 0.0005 * 2**attempt)))
            stored = store_call(settings, store.get, session_id)
            found = None if stored is None else decode_record(stored.payload)
            if isinstance(found, Replaced):
                events.dropped_after_replace(session_id)
                return False
            if stored is None or found is None:
                return False
            self._version = stored.version
            self._created, data = found
            self._encoded = None
            for updater in self._updaters:
                data, self._encoded = apply_updater(data, updater, settings)
            self._data = data
        events.gave_up(session_id, MAX_ATTEMPTS)
        raise SessionConflictError(
            f"the session kept changing under concurrent requests; gave up after {MAX_ATTEMPTS} tries"
        )

    def _payload(self) -> str:
        assert self._data is not None
        if self._encoded is None:
            self._encoded = encode_data(self._data)
        return encode_record(self._created, self._encoded)

    def _index(self, previous_user: str | None, previous_id: str | None) -> None:
        """Keep the user's sessions up to date after a write, if ``user_key`` is set."""
        users = self._settings.users
        if users is None:
            return
        assert self._session_id is not None and self._data is not None and self._client is not None
        users.written(
            self._settings,
            previous_user,
            previous_id,
            users.user_of(self._data),
            self._session_id,
            self._client,
        )


def store_call(settings: Settings, operation: Callable[..., T], *args: Any) -> T:
    """Call the store; any failure becomes a :class:`SessionStoreError`, and is counted."""
    metrics = settings.events.metrics
    started = perf_counter() if metrics is not None else 0.0
    try:
        return operation(*args)
    except Exception as exc:
        settings.events.store_error(getattr(operation, "__name__", "?"))
        if isinstance(exc, SessionStoreError):
            raise
        raise SessionStoreError(f"the session store failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if metrics is not None:
            metrics.store_call(getattr(operation, "__name__", "?"), perf_counter() - started)


def within_lifetime(created: float, now: float, absolute_timeout: int | None) -> bool:
    """Whether a session created then is still young enough to live.

    A creation time further ahead than :data:`MAX_CLOCK_SKEW` is no session's: it
    would never reach ``absolute_timeout``.
    """
    if created > now + MAX_CLOCK_SKEW:
        return False
    return absolute_timeout is None or now - created < absolute_timeout


def end_session(
    settings: Settings,
    session_id: str,
    version: Hashable = None,
    user: str | None = None,
    *,
    kind: str = "destroy",
) -> None:
    """End the session ``session_id`` holds, following regenerates to their successor.

    ``version`` and ``user`` are the record's as the caller loaded it, if it did.
    The record is deleted with a compare-and-set, so that a racing update cannot
    slip in and keep it alive; an ID replaced by a regenerate leads to the session
    that replaced it, which ends too. ``kind`` names the write for the metrics.
    """
    store, users = settings.store, settings.users
    for _ in range(MAX_SUCCESSORS):
        successor = None
        for attempt in range(MAX_ATTEMPTS):
            if version is None:
                stored = store_call(settings, store.get, session_id)
                if stored is None:
                    return
                found = decode_record(stored.payload)
                if isinstance(found, Replaced):
                    store_call(settings, store.delete, session_id)
                    successor = found.successor
                    break
                if found is None:  # not a session: in no user's index
                    store_call(settings, store.delete, session_id)
                    return
                version = stored.version
                user = None if users is None else users.user_of(found[1])
            if store_call(settings, store.compare_and_set, session_id, version, None, settings.max_age):
                settings.events.wrote(kind)
                if users is not None and user is not None:
                    users.ended(settings, user, session_id)
                return
            version = None
            time.sleep(random.uniform(0, min(MAX_BACKOFF, 0.0005 * 2**attempt)))
        else:
            settings.events.gave_up(session_id, MAX_ATTEMPTS)
            raise SessionConflictError(
                f"the session kept changing while it was being ended; gave up after {MAX_ATTEMPTS} tries"
            )
        if successor is None:
            return
        session_id, version, user = successor, None, None
