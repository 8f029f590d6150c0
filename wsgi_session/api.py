"""The four session functions: the whole of what an app calls.

Each takes the WSGI environ, or any request object with an ``.environ`` (Werkzeug,
Flask, WebOb, Pyramid, Bottle) or an ``.env`` (Falcon), so an app needs no adapter
to use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import SessionError
from .middleware import ENVIRON_KEY
from .session import RequestSession, Updater


def _environ(environ_or_request: Any) -> dict[str, Any]:
    """The WSGI environ itself, or the one a request object holds; else ``TypeError``.

    So that a request of a framework not known here is named as such, and never
    taken for a request without the middleware.
    """
    if isinstance(environ_or_request, dict):
        return environ_or_request
    for attribute in ("environ", "env"):
        environ = getattr(environ_or_request, attribute, None)
        if isinstance(environ, dict):
            return environ
    raise TypeError(
        "expected a WSGI environ or a request with an .environ or .env dict, "
        f"not {type(environ_or_request).__name__}"
    )


def request_session(environ_or_request: Any) -> RequestSession:
    """The session of this request, or :class:`SessionError` if there is no middleware."""
    session = _environ(environ_or_request).get(ENVIRON_KEY)
    if not isinstance(session, RequestSession):
        raise SessionError(
            "SessionMiddleware is not installed: wrap the WSGI app in "
            "wsgi_session.SessionMiddleware before using the session"
        )
    return session


def get_session(environ: Any) -> Mapping[str, Any] | None:
    """The session data as a read-only mapping; ``None`` after :func:`destroy_session`."""
    return request_session(environ).get()


def update_session(environ: Any, updater: Updater) -> Mapping[str, Any]:
    """Merge ``updater(current_data)`` into the session (shallowly); return the data so made.

    The updater may be called again at write-back, on fresher data, if another
    request of the same session wrote meanwhile: it must be a pure function of its
    argument. The stored session then holds both requests' changes, and differs
    from what this call returned. Return :data:`DELETE` as a value to remove that
    key. A value JSON cannot encode raises ``TypeError`` naming the key.
    """
    return request_session(environ).update(updater)


def destroy_session(environ: Any) -> None:
    """Delete the session from the store and expire its cookie (logout)."""
    request_session(environ).destroy()


def regenerate_session(environ: Any) -> None:
    """Give the session a new ID, keeping its data; the old ID stops working.

    Call it at login and at every change of privilege: it defeats session fixation.
    """
    request_session(environ).regenerate()
