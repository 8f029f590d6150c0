"""Pyramid's ``request.session``, backed by wsgi_session.

The middleware wraps the Pyramid app and this factory shows its session as an
``ISession``::

    config.set_session_factory(wsgi_session.pyramid.session_factory)
    app = SessionMiddleware(config.make_wsgi_app(), store=..., secret=...)

Every key write or delete, flash and CSRF token is an update of the session,
replayed if a concurrent request of the same session wrote first. In-place changes
to a value (``session["cart"].append(x)``) need ``session.changed()``, as in Pyramid.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from pyramid.interfaces import ISession  # type: ignore[import-untyped]
from pyramid.request import Request  # type: ignore[import-untyped]
from zope.interface import implementer  # type: ignore[import-untyped]

from .record import encode_data
from .session import DELETE
from .session_dict import SessionDict

logger = logging.getLogger("wsgi_session")

#: The key of the CSRF token: the one Pyramid's own session and SessionCSRFStoragePolicy use.
CSRF_TOKEN_KEY = "_csrft_"
FLASH_KEY_PREFIX = "_f_"


def _messages(data: Mapping[str, Any], key: str) -> list[Any]:
    """A copy of the flash queue ``key`` of ``data``; none if it holds no list.

    The session may hold anything under that key (stored by another program, or by
    ``update_session``): a queue that is not a list reads as empty, and the next
    flash starts a new one.
    """
    queue = data.get(key, [])
    if isinstance(queue, list):
        return list(queue)
    logger.warning("the flash queue %r is not a list; it reads as empty", key)
    return []


def _without(queue: list[Any], messages: list[Any]) -> list[Any]:
    """``queue`` less one occurrence of each of ``messages``."""
    rest = list(queue)
    for message in messages:
        if message in rest:
            rest.remove(message)
    return rest


@implementer(ISession)
class PyramidSession(SessionDict):
    """``request.session``: a dict whose writes are updates of the request's session.

    Any write, or :meth:`changed`, makes the response write back each top-level
    value the request read or assigned and then changed in place, as an update of
    its key.
    """

    def __init__(self, request: Request) -> None:
        super().__init__(request.environ)
        self._request = request
        self._changed = False

    def _on_write(self) -> None:
        self.changed()

    @property
    def new(self) -> bool:
        """True while the session was not loaded from the store."""
        return self._request_session().is_new

    @property
    def created(self) -> float:
        """When the session started, in seconds since the epoch."""
        return self._request_session().created

    def changed(self) -> None:
        """Say that a value was changed in place; it is written back with the response."""
        if not self._changed:
            self._changed = True
            self._request.add_response_callback(lambda request, response: self.write_back_changed_values())

    def invalidate(self) -> None:
        """Destroy the session; a later write in this request starts a new one."""
        self._held.clear()
        self._request_session().destroy()

    # -- flash messages ---------------------------------------------------------

    def flash(self, msg: Any, queue: str = "", allow_duplicate: bool = True) -> None:
        """Append ``msg`` to the queue, unless it is there already and duplicates are refused.

        Appended to the queue as it is at write-back, so a message another request
        flashes at the same time is kept too.
        """
        key = FLASH_KEY_PREFIX + queue
        message = json.loads(encode_data({key: msg}))[key]

        def append(data: Mapping[str, Any]) -> Mapping[str, Any]:
            current = _messages(data, key)
            if not allow_duplicate and message in current:
                return {}
            return {key: [*current, message]}

        self._update(append)

    def peek_flash(self, queue: str = "") -> list[Any]:
        """The messages of the queue, left in place."""
        return _messages(self, FLASH_KEY_PREFIX + queue)

    def pop_flash(self, queue: str = "") -> list[Any]:
        """The messages of the queue, removed from the session.

        Only the messages returned are removed, so one another request flashes
        meanwhile stays for the next.
        """
        key = FLASH_KEY_PREFIX + queue
        popped = _messages(self, key)
        if not popped:
            return []

        def remove(data: Mapping[str, Any]) -> Mapping[str, Any]:
            rest = _without(_messages(data, key), popped)
            return {key: rest or DELETE}

        self._update(remove)
        return popped

    # -- CSRF -------------------------------------------------------------------

    def new_csrf_token(self) -> str:
        """Store a new CSRF token and return it."""
        token = secrets.token_hex(32)
        self[CSRF_TOKEN_KEY] = token
        return token

    def get_csrf_token(self) -> str:
        """The session's CSRF token, made on first use."""
        token = self.get(CSRF_TOKEN_KEY)
        return token if isinstance(token, str) and token else self.new_csrf_token()


def session_factory(request: Request) -> PyramidSession:
    """Pyramid's session factory: ``config.set_session_factory(session_factory)``."""
    return PyramidSession(request)
