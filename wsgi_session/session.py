"""The session of one request: loaded on first use, written back once.

:class:`RequestSession` is what the middleware puts in the environ. It records the
updaters the request applied, so that at write-back, if another request of the
same session wrote first, it can apply them again to the fresh data and retry the
compare-and-set: no update is lost, and no lock is held across a request.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import random
import time
from collections.abc import Hashable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from .errors import SessionConflictError, SessionError, SessionStoreError
from .record import Data, Record, decode_record, encode_data, encode_record
from .signing import new_session_id

if TYPE_CHECKING:
    from .middleware import SessionMiddleware

logger = logging.getLogger("wsgi_session")

#: Tries of the compare-and-set at write-back before SessionConflictError. With eight
#: threads writing one session without pause, about half the tries lose to another
#: write, so 20 tries let about one request in 100,000 fail; 50 make that negligible,
#: and a request that truly cannot win still gives up after one to two seconds.
MAX_ATTEMPTS = 50
#: Longest pause, in seconds, between two tries. The pause is random and grows with
#: each try, so that racing requests stop colliding instead of failing in lockstep.
MAX_BACKOFF = 0.05

Updater = Callable[[Mapping[str, Any]], Mapping[str, Any]]
T = TypeVar("T")


class _Delete(enum.Enum):
    DELETE = "DELETE"

    def __repr__(self) -> str:
        return "wsgi_session.DELETE"


#: Return this as a value from an updater to remove that key from the session.
DELETE = _Delete.DELETE


def short_hash(session_id: str) -> str:
    """A log-safe stand-in for a session ID: enough to correlate, useless to replay."""
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()[:12]


def apply_updater(data: Data, updater: Updater, max_size: int | None) -> tuple[Data, str]:
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
    encoded = encode_data(merged)
    if max_size is not None and len(encoded) > max_size:
        raise ValueError(f"session data would be {len(encoded)} bytes, over max_size={max_size}")
    return merged, encoded


class RequestSession:
    """The session accessor of one request, found at ``environ["wsgi_session"]``.

    Use it through :func:`get_session` and its siblings; its methods are theirs.
    """

    __slots__ = (
        "_cookie_header",
        "_created",
        "_data",
        "_encoded",
        "_finished",
        "_middleware",
        "_regenerated",
        "_restarted",
        "_session_id",
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
    _restarted: bool  # updated after destroy: a new session, the old ID to delete

    def __init__(self, middleware: SessionMiddleware, cookie_header: str | None) -> None:
        # The header, not the environ: the environ holds this session, and a
        # reference back would leave every request as a cycle for the garbage collector.
        self._middleware = middleware
        self._cookie_header = cookie_header
        self.accessed = False
        self._finished = False

    # -- what the functional API calls ----------------------------------------

    def get(self) -> Mapping[str, Any] | None:
        self._ensure_loaded()
        return None if self._data is None else MappingProxyType(self._data)

    def update(self, updater: Updater) -> Mapping[str, Any]:
        self._ensure_loaded()
        if self._data is None:  # destroyed: an update starts a new session
            self._start_new()
            self._restarted = True
        assert self._data is not None
        self._data, self._encoded = apply_updater(self._data, updater, self._middleware.max_size)
        self._updaters.append(updater)
        return MappingProxyType(self._data)

    def destroy(self) -> None:
        self._ensure_loaded()
        self._session_id = self._data = self._encoded = None
        self._updaters = []

    def regenerate(self) -> None:
        self._ensure_loaded()
        if self._data is not None:
            self._session_id = new_session_id()
            self._regenerated = True

    # -- what framework adapters read -----------------------------------------

    @property
    def is_new(self) -> bool:
        """True while the session was not loaded from the store."""
        self._ensure_loaded()
        return self._stored_id is None or self._restarted

    @property
    def created(self) -> float:
        """When the session started, in seconds since the epoch."""
        self._ensure_loaded()
        return self._created

    # -- loading ----------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if self._finished:
            raise SessionError(
                "the response has already started: session functions must be called before start_response"
            )
        if self.accessed:
            return
        self._signed_cookie = None
        self._updaters = []
        self._regenerated = self._restarted = False
        self._encoded = None
        self._stored_id = None
        found = self._middleware.session_id_from_cookie(self._cookie_header)
        if found is not None:
            session_id, self._signed_cookie = found
            stored = self._store_call(self._middleware.store.get, session_id)
            record = self._decode(session_id, stored.payload) if stored is not None else None
            if record is not None and stored is not None:
                created, data = record
                timeout = self._middleware.absolute_timeout
                if timeout is None or time.time() - created < timeout:
                    self._stored_id = self._session_id = session_id
                    self._version = stored.version
                    self._created, self._data = created, data
                else:
                    self._store_call(self._middleware.store.delete, session_id)  # past the absolute timeout
        if self._stored_id is None:
            self._start_new()
        self.accessed = True  # only now: if the store failed, the request did not touch the session

    def _start_new(self) -> None:
        self._session_id = new_session_id()
        self._version = None
        self._created = time.time()
        self._data = self._middleware.initial_data()
        self._encoded = None

    @staticmethod
    def _decode(session_id: str, payload: str | bytes) -> Record | None:
        record = decode_record(payload)
        if record is None:
            logger.warning(
                "session %s: stored data is not a session; starting a new one",
                short_hash(session_id),
            )
        return record

    # -- write-back -------------------------------------------------------------

    def finish(self) -> str | None:
        """Write the session back; return the value its cookie must take. Runs once.

        The value is the signed session ID, ``""`` to expire the cookie (as a
        ``Set-Cookie`` that deletes one does), or ``None`` to send no cookie. Called
        by the middleware when the app calls ``start_response``. After it, every
        session function raises :class:`SessionError`.
        """
        if self._finished:
            raise SessionError("the session was already written back")
        self._finished = True
        if not self.accessed:
            return None
        store, ttl = self._middleware.store, self._middleware.max_age
        old_id, new_id = self._stored_id, self._session_id
        if new_id is None:  # destroyed
            if old_id is not None:
                self._store_call(store.delete, old_id)
            return ""
        if new_id == old_id:
            if self._updaters:
                if not self._commit(delete=False):
                    return None  # destroyed meanwhile: a destroy wins over an update
            elif self._middleware.rolling:
                self._store_call(store.touch, old_id, ttl)
            elif self._signed_cookie:
                return None  # only read: the browser's cookie still holds
            # The request's own cookie goes back as it came, unless an older secret signed it.
            return self._signed_cookie or self._middleware.sign(new_id)
        # A new ID: a new session, a regenerated one, or one restarted after destroy.
        if old_id is not None and self._restarted:
            self._store_call(store.delete, old_id)
        elif old_id is not None:
            # Regenerated: take the old record away only if no one changed it since,
            # else carry their changes over to the new ID.
            if not self._commit(delete=True):
                return None
        elif not (self._updaters or self._regenerated or self._middleware.save_uninitialized):
            return None
        self._store_call(store.set, new_id, self._payload(), ttl)
        return self._middleware.sign(new_id)

    def _commit(self, *, delete: bool) -> bool:
        """Compare-and-set the loaded record to the data, or ``delete`` it if unchanged.

        On a conflict, replay the updaters on fresh data and try again. Returns
        ``False`` if the stored session disappeared (destroyed, or expired).
        """
        store, ttl, session_id = self._middleware.store, self._middleware.max_age, self._stored_id
        assert session_id is not None
        for attempt in range(MAX_ATTEMPTS):
            payload = None if delete else self._payload()
            if self._store_call(store.compare_and_set, session_id, self._version, payload, ttl):
                return True
            time.sleep(random.uniform(0, min(MAX_BACKOFF, 0.0005 * 2**attempt)))
            stored = self._store_call(store.get, session_id)
            record = self._decode(session_id, stored.payload) if stored is not None else None
            if stored is None or record is None:
                return False
            self._version = stored.version
            self._created, data = record
            self._encoded = None
            for updater in self._updaters:
                data, self._encoded = apply_updater(data, updater, self._middleware.max_size)
            self._data = data
        raise SessionConflictError(
            f"the session kept changing under concurrent requests; gave up after {MAX_ATTEMPTS} tries"
        )

    def _payload(self) -> str:
        assert self._data is not None
        if self._encoded is None:
            self._encoded = encode_data(self._data)
        return encode_record(self._created, self._encoded)

    @staticmethod
    def _store_call(operation: Callable[..., T], *args: Any) -> T:
        try:
            return operation(*args)
        except SessionStoreError:
            raise
        except Exception as exc:
            raise SessionStoreError(f"the session store failed: {type(exc).__name__}: {exc}") from exc
