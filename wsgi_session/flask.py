"""Flask's ``session``, backed by wsgi_session.

The middleware wraps Flask's WSGI app and this interface shows its session as
``flask.session``::

    app.wsgi_app = SessionMiddleware(app.wsgi_app, store=..., secret=...)
    app.session_interface = wsgi_session.flask.SessionInterface()

Every key write or delete is an update of the session, replayed if a concurrent
request of the same session wrote first. In-place changes to a value
(``session["cart"].append(x)``) need ``session.modified = True``, as in Flask.
Cookies are the middleware's job, so :meth:`SessionInterface.save_session` sets none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import flask.sessions

from .errors import SessionError
from .session import RequestSession
from .session_dict import SessionDict

if TYPE_CHECKING:
    from flask import Flask, Request, Response


class FlaskSession(SessionDict, flask.sessions.SessionMixin):
    """``flask.session``: a dict whose writes are updates of the request's session.

    ``modified`` turns true on any write; set it yourself after changing a value in
    place. At the end of a request with ``modified`` true, each top-level value the
    request read or assigned and then changed in place is written back as an update
    of its key. ``new`` tells whether the session was not loaded from the store.
    ``permanent`` is kept in the ``_permanent`` key as Flask does, but the cookie's
    lifetime is always the middleware's ``max_age``.
    """

    def __init__(self, environ: Mapping[str, Any]) -> None:
        super().__init__(environ)
        self.modified = False

    def _on_write(self) -> None:
        self.modified = True

    def _request_session(self) -> RequestSession:
        try:
            return super()._request_session()
        except SessionError as exc:
            raise SessionError(
                f"{exc}. With Flask: app.wsgi_app = SessionMiddleware(app.wsgi_app, ...); "
                "app.test_request_context() and the test client's session_transaction() "
                "do not pass through app.wsgi_app; make requests with the test client instead"
            ) from None

    @property
    def new(self) -> bool:  # type: ignore[override]
        return self._request_session().is_new


class SessionInterface(flask.sessions.SessionInterface):
    """Puts the middleware's session behind ``flask.session``."""

    def open_session(self, app: Flask, request: Request) -> FlaskSession:
        return FlaskSession(request.environ)

    def save_session(self, app: Flask, session: flask.sessions.SessionMixin, response: Response) -> None:
        """Write back in-place changes if ``session.modified``; the middleware does the rest."""
        if isinstance(session, FlaskSession) and session.modified:
            session.write_back_changed_values()
