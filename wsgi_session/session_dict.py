"""The request's session as a mutable dict: what the framework adapters build on.

Frameworks hand apps a session that is a plain ``dict`` to write into. Here every
write is turned into an update of the request's
:class:`~wsgi_session.session.RequestSession` as it happens: ``session[k] = v``
records ``{k: v}``, ``del session[k]`` records ``{k: DELETE}``. At write-back those
updates are replayed on fresher data if another request of the same session wrote
meanwhile, so two requests writing different keys both keep their key.

Values are never shared between the app and the session's data: a value read is a
copy, a value written is encoded to JSON and decoded back. So an in-place change
(``session["cart"].append(x)``) reaches the session only when the app says so
(Flask's ``session.modified = True``, Pyramid's ``session.changed()``), through
:meth:`SessionDict.write_back_changed_values`, which writes back each top-level
value this request read or assigned and has changed since, and nothing else.

An adapter may keep values in a JSON form of its own (Flask tags tuples, bytes,
datetimes) through :meth:`SessionDict._to_json` and :meth:`SessionDict._from_json`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from .api import request_session
from .middleware import ENVIRON_KEY
from .record import encode_data
from .session import DELETE, RequestSession, Updater

_SCALARS = (str, int, float, bool, type(None))


def _json(key: str, value: Any) -> str:
    """``value`` as JSON text, or ``TypeError`` naming ``key``."""
    return encode_data({key: value})


def _setting(key: str, value: Any) -> Updater:
    return lambda _: {key: value}


class SessionDict(MutableMapping[str, Any]):
    """A dict view of the request's session that records each write as an update.

    Nothing is loaded until a key is read or written, so a request that never
    looks into the session costs no store call and sends no cookie.
    """

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._environ = environ
        self._bound: RequestSession | None = None
        # key -> (the session's value when the app got hold of the object, the object)
        self._held: dict[str, tuple[Any, Any]] = {}

    # -- hooks for the adapters -------------------------------------------------

    def _on_write(self) -> None:
        """Called after every write; the adapters set their "modified" flag here."""

    def _request_session(self) -> RequestSession:
        if self._bound is None:
            self._bound = request_session(self._environ)
        return self._bound

    def _renew_at_regenerate(self, key: str) -> None:
        """Have :func:`~wsgi_session.regenerate_session` drop ``key``, a CSRF token.

        Nothing is loaded; without the middleware there is nothing to register with.
        """
        bound = self._bound or self._environ.get(ENVIRON_KEY)
        if isinstance(bound, RequestSession):
            bound.renew_at_regenerate(key)

    def _to_json(self, value: Any) -> Any:
        """The app's value in the form it is stored in: JSON types only."""
        return value

    def _from_json(self, stored: Any) -> Any:
        """The app's own copy of a stored value, sharing nothing with the session's data."""
        return copy.deepcopy(stored)

    # -- reading ------------------------------------------------------------------

    def _data(self) -> Mapping[str, Any]:
        """The session's current data; empty once the session is destroyed."""
        return self._request_session().get() or {}

    def __getitem__(self, key: str) -> Any:
        stored = self._data()[key]
        if isinstance(stored, _SCALARS):
            return stored
        held = self._held.get(key)
        # Identity tells whether the value is still the one the app holds a copy of:
        # any update of the key, from here or from update_session, replaces it.
        if held is not None and held[0] is stored:
            return held[1]
        value = self._from_json(stored)
        self._held[key] = (stored, value)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._data()

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    # -- writing ------------------------------------------------------------------

    def _update(self, updater: Updater) -> Mapping[str, Any]:
        data = self._request_session().update(updater)
        self._on_write()
        return data

    def _store(self, key: str, value: Any, encoded: str) -> None:
        # Decoded from JSON, the stored value shares nothing with the app's object.
        stored = self._update(_setting(key, json.loads(encoded)[key]))[key]
        self._hold(key, stored, value)

    def _encode(self, key: str, value: Any) -> str:
        """``{key: value}`` as JSON text, ``value`` as it is stored; ``TypeError`` naming ``key``."""
        return _json(key, self._to_json(value))

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys must be strings, not {key!r}")
        encoded = self._encode(key, value)
        current = self._data()
        if key in current and _json(key, current[key]) == encoded:
            # Same value: nothing to store, so a concurrent change of this key survives.
            self._hold(key, current[key], value)
            self._on_write()
        else:
            self._store(key, value, encoded)

    def __delitem__(self, key: str) -> None:
        if key not in self._data():
            raise KeyError(key)
        self._held.pop(key, None)
        self._update(_setting(key, DELETE))

    def clear(self) -> None:
        """Remove every key the session has now, each as its own delete.

        A key that a concurrent request adds meanwhile survives. This is not a
        logout: to end the session, use :func:`wsgi_session.destroy_session`.
        """
        keys = list(self._data())
        self._held.clear()
        if keys:
            self._update(lambda _: dict.fromkeys(keys, DELETE))
        else:
            self._on_write()

    def _hold(self, key: str, stored: Any, value: Any) -> None:
        if isinstance(value, _SCALARS):
            self._held.pop(key, None)
        else:
            self._held[key] = (stored, value)

    def holds_values(self) -> bool:
        """Whether the app holds values it read or assigned: only those can change in place."""
        return bool(self._held)

    def write_back_changed_values(self) -> None:
        """Store the in-place changes the app made to values it read or assigned.

        Only values that still belong to the session (no update of their key came
        after) and whose JSON differs from the session's value are written, each
        as an update of its own key.
        """
        if not self._held:
            return
        for key, (stored, value) in list(self._held.items()):
            current = self._data()
            if key not in current or current[key] is not stored:
                continue
            encoded = self._encode(key, value)
            if encoded != _json(key, stored):
                self._store(key, value, encoded)
