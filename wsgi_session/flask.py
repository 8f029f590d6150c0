"""Flask's ``session``, backed by wsgi_session.

The middleware wraps Flask's WSGI app and this interface shows its session as
``flask.session``::

    app.wsgi_app = SessionMiddleware(app.wsgi_app, store=..., secret=...)
    app.session_interface = wsgi_session.flask.SessionInterface()

Every key write or delete is an update of the session, replayed if a concurrent
request of the same session wrote first. Values go through Flask's tagged JSON, as
in Flask's own session, so tuples, bytes, ``Markup``, ``UUID`` and ``datetime``
come back as they went in: still JSON in the store, never pickle. In-place changes
to a value (``session["cart"].append(x)``) are saved when Flask would save the
session: once ``session.modified = True``, or in every request of a permanent one.
Flask-Login's ``_remember`` instruction stays in the request (see
:data:`REMEMBER_KEY`), and ``SessionInterface(migrate_cookie_sessions=True)`` takes
over the sessions Flask kept in signed cookies.

Cookies are the middleware's job, so :meth:`SessionInterface.save_session` sets none
for a request. The exception is the test client's ``session_transaction()``: it
opens and saves the session in a test request context, which never passes through
``app.wsgi_app``, so there the interface asks the middleware to do both and puts
its cookie on the response Flask hands over.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import flask.sessions
from flask.json.tag import TaggedJSONSerializer
from itsdangerous import BadData

from .errors import SessionError
from .middleware import ENVIRON_KEY, SessionMiddleware
from .session import RequestSession
from .session_dict import SessionDict

if TYPE_CHECKING:
    from flask import Flask, Request, Response

logger = logging.getLogger("wsgi_session")

#: Flask's own session interface: the cookie and serializer of the sessions it
#: kept in signed cookies, for ``migrate_cookie_sessions``.
FLASK_COOKIE_SESSIONS = flask.sessions.SecureCookieSessionInterface()


def _untagged(serializer: TaggedJSONSerializer, stored: Any) -> Any:
    """A copy of a stored value with each of its tagged parts turned back into its type.

    What Flask's own session does as it reads its cookie, through the serializer's
    public :meth:`~flask.json.tag.TaggedJSONSerializer.untag`, innermost first. A
    cookie of Flask's is signed, but a store may hold what someone else wrote: a tag
    whose value is not of its type (``{" u": 5}``) stays the plain JSON it is, and
    is logged, instead of failing every request of the session.
    """
    if isinstance(stored, dict):
        untagged = {key: _untagged(serializer, value) for key, value in stored.items()}
        try:
            return serializer.untag(untagged)
        except (ValueError, TypeError, AttributeError) as exc:
            logger.warning(
                "a session value tagged %s does not decode (%s); it reads as stored", list(stored), exc
            )
            return untagged
    if isinstance(stored, list):
        return [_untagged(serializer, item) for item in stored]
    return stored


#: Flask-Login's message from ``login_user()`` and ``logout_user()`` to its own
#: ``after_request`` handler, which pops it to set or clear the remember-me cookie.
#: It is kept in the request, never stored: so ``logout_user()`` followed by
#: ``destroy_session(request)`` still clears the cookie (a destroy would discard it
#: from the session), and Flask-Login's check of it on every request costs no store call.
REMEMBER_KEY = "_remember"


class FlaskSession(SessionDict, flask.sessions.SessionMixin):
    """``flask.session``: a dict whose writes are updates of the request's session.

    Flask-Login's ``_remember`` (:data:`REMEMBER_KEY`) is the one key kept in the
    request instead. ``modified`` turns true on any write; set it yourself after
    changing a value in place. When Flask would save the session (modified, or
    permanent), each top-level value the request read or assigned and then changed
    in place is written back as an update of its key. ``new`` tells whether the
    session was not loaded from the store. ``permanent`` is kept in the
    ``_permanent`` key as Flask does, but the cookie's lifetime is always the
    middleware's ``max_age``.
    """

    def __init__(
        self,
        environ: dict[str, Any],
        serializer: TaggedJSONSerializer,
        middleware: SessionMiddleware | None = None,
    ) -> None:
        """``serializer`` tags the values Flask's JSON lacks. ``middleware`` is given when
        no middleware wraps this request (a test request context): the session is then
        opened through it here, and written back by :meth:`SessionInterface.save_session`."""
        super().__init__(environ)
        self._serializer = serializer
        self.modified = False
        #: This request made Flask's cookie session a new server session.
        self.imported_cookie_session = False
        self._in_request: dict[str, Any] = {}  # REMEMBER_KEY, if set in this request
        # The middleware and environ to write back with, if this session is ours to write back.
        self._outside = None if middleware is None else (middleware, environ)
        if middleware is not None:
            self._bound = middleware.open_session(environ)

    def _on_write(self) -> None:
        self.modified = True

    def _to_json(self, value: Any) -> Any:
        return self._serializer.tag(value)

    def _from_json(self, stored: Any) -> Any:
        return _untagged(self._serializer, stored)

    # -- REMEMBER_KEY lives in the request; every other key in the session --------

    def __getitem__(self, key: str) -> Any:
        if key == REMEMBER_KEY:
            return self._in_request[key]
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if key == REMEMBER_KEY:
            return key in self._in_request
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        yield from (key for key in super().__iter__() if key != REMEMBER_KEY)
        yield from self._in_request

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __setitem__(self, key: str, value: Any) -> None:
        if key == REMEMBER_KEY:
            self._in_request[key] = value
            self._on_write()
        else:
            super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        if key == REMEMBER_KEY:
            del self._in_request[key]
            self._on_write()
        else:
            super().__delitem__(key)

    def clear(self) -> None:
        self._in_request.clear()
        super().clear()

    def _request_session(self) -> RequestSession:
        try:
            return super()._request_session()
        except SessionError as exc:
            raise SessionError(
                f"{exc}. With Flask: app.wsgi_app = SessionMiddleware(app.wsgi_app, ...); "
                "app.test_request_context() and the test client's session_transaction() "
                "find the session only when app.wsgi_app is the SessionMiddleware itself"
            ) from None

    @property
    def new(self) -> bool:  # type: ignore[override]
        return self._request_session().is_new

    def import_cookie_session(self, data: Mapping[str, Any]) -> None:
        """Make ``data``, a Flask cookie session's, the data of this session if it is new.

        A session found in the store keeps its own data. The import is one update,
        so the new session is stored and its cookie sent when the response starts.
        """
        session = self._request_session()
        if not session.is_new:
            return
        tagged = {key: self._to_json(value) for key, value in data.items()}
        try:
            session.update(lambda _: tagged)
        except ValueError as exc:  # over the middleware's max_size
            logger.warning("a Flask cookie session was not imported: %s", exc)
            return
        self.imported_cookie_session = True

    def _cookie_headers(self) -> list[tuple[str, str]]:
        """Write back a session opened outside the middleware; its Set-Cookie headers.

        Under the middleware there is nothing to do here: it writes the session back
        when the response starts.
        """
        if self._outside is None:
            return []
        middleware, environ = self._outside
        return middleware.write_back(self._request_session(), environ)


def flask_cookie_session(app: Flask, request: Request) -> dict[str, Any] | None:
    """The data of the Flask signed-cookie session ``request`` carries, if one verifies.

    Verified as Flask itself does, with its own serializer: ``app.secret_key`` and
    ``SECRET_KEY_FALLBACKS``, and no older than ``PERMANENT_SESSION_LIFETIME``. A
    tampered, expired or foreign cookie is ``None``, as is an empty session.
    """
    if not app.secret_key:
        raise ValueError(
            "migrate_cookie_sessions needs app.secret_key, the key Flask signed its session cookies with"
        )
    values = request.cookies.getlist(FLASK_COOKIE_SESSIONS.get_cookie_name(app))
    if not values:
        return None
    serializer = FLASK_COOKIE_SESSIONS.get_signing_serializer(app)
    assert serializer is not None  # there is a secret key
    max_age = int(app.permanent_session_lifetime.total_seconds())
    for value in values:
        try:
            data = serializer.loads(value, max_age=max_age)
        except BadData:
            continue
        if isinstance(data, dict) and data:
            return data
    return None


class SessionInterface(flask.sessions.SessionInterface):
    """Puts the middleware's session behind ``flask.session``.

    ``migrate_cookie_sessions=True`` is for switching an app from Flask's own
    signed-cookie sessions without logging anyone out: a request that carries such
    a session, and no session found in the store, gets its data as a new server
    session, whose cookie replaces Flask's.
    """

    #: Tags what JSON lacks, as for Flask's own cookie session: the same instance, so
    #: a tag registered on it (``app.session_interface.serializer.register``) applies too.
    serializer = flask.sessions.session_json_serializer

    def __init__(self, *, migrate_cookie_sessions: bool = False) -> None:
        if not isinstance(migrate_cookie_sessions, bool):
            raise ValueError(
                f"migrate_cookie_sessions must be True or False, not {migrate_cookie_sessions!r}"
            )
        self.migrate_cookie_sessions = migrate_cookie_sessions

    def open_session(self, app: Flask, request: Request) -> FlaskSession:
        environ = request.environ
        if ENVIRON_KEY not in environ and isinstance(app.wsgi_app, SessionMiddleware):
            # A test request context, as session_transaction() uses: it never went
            # through app.wsgi_app, so the middleware opens the session here.
            session = FlaskSession(environ, self.serializer, app.wsgi_app)
        else:
            session = FlaskSession(environ, self.serializer)
        # Flask-WTF keeps its CSRF secret under this key: a login must make a new one.
        # The default name is renewed anyway; this is for one configured otherwise.
        session._renew_at_regenerate(app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
        if self.migrate_cookie_sessions:
            # Now, before the view: a logout in this request then ends the imported
            # session too. Only a request with a valid Flask cookie loads the session here.
            data = flask_cookie_session(app, request)
            if data is not None:
                session.import_cookie_session(data)
        return session

    def save_session(self, app: Flask, session: flask.sessions.SessionMixin, response: Response) -> None:
        """Write back in-place changes when Flask would save; the middleware does the rest.

        Flask saves a session that is modified, or permanent while
        ``SESSION_REFRESH_EACH_REQUEST`` is on (its ``should_set_cookie``). A session
        opened outside the middleware (``session_transaction()``) is also written
        back here, its cookie set on ``response``.
        """
        if not isinstance(session, FlaskSession):
            return
        # Only values the request holds can have changed in place; and asking whether
        # the session is permanent loads it, which a request that never used it must not.
        if session.holds_values() and self.should_set_cookie(app, session):
            session.write_back_changed_values()
        if session.imported_cookie_session:
            self._expire_flask_cookie(app, response)
        for name, value in session._cookie_headers():
            response.headers.add(name, value)

    @staticmethod
    def _expire_flask_cookie(app: Flask, response: Response) -> None:
        """Expire the Flask cookie just imported, so that no later request imports it again.

        Above all not after a logout, whatever the two cookies' names. Where Flask's
        cookie has the session cookie's name, path and domain, the session's
        ``Set-Cookie``, which the middleware adds after this one as the response
        starts, replaces it: browsers apply ``Set-Cookie`` headers in order.
        """
        cookies = FLASK_COOKIE_SESSIONS
        response.delete_cookie(
            cookies.get_cookie_name(app),
            path=cookies.get_cookie_path(app),
            domain=cookies.get_cookie_domain(app),
            secure=cookies.get_cookie_secure(app),
            httponly=cookies.get_cookie_httponly(app),
            samesite=cookies.get_cookie_samesite(app),
            partitioned=cookies.get_cookie_partitioned(app),
        )
