"""The WSGI middleware: cookie in, session in the environ, cookie out.

The whole flow of a request is :meth:`SessionMiddleware.__call__`: it puts a lazy
:class:`~wsgi_session.session.RequestSession` in the environ and wraps
``start_response``. Nothing is parsed, verified or fetched unless the app touches
the session; when it has, the session is written back as the app calls
``start_response``, while an error can still become an error response.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable

from werkzeug.datastructures import ResponseCacheControl
from werkzeug.http import parse_cache_control_header

from .events import Events
from .session import RequestSession
from .session_cookie import CookieOptions, SessionCookie, check_cookie, check_name
from .settings import (
    Settings,
    check_count,
    check_flag,
    check_generate,
    check_on_store_error,
    check_optional_count,
    check_store,
)
from .signing import Secret, secret_keys
from .store import SessionStore
from .users import UserIndex

if TYPE_CHECKING:
    from .metrics import Metrics

ENVIRON_KEY = "wsgi_session"
#: Below this many bytes (UTF-8) a secret can be guessed offline from one cookie.
MIN_SECRET_LENGTH = 32
#: Seconds a just-replaced ID keeps a marker of its successor by default.
DEFAULT_REGENERATE_WINDOW = 60

StartResponse = Callable[..., Callable[[bytes], Any]]
Environ = dict[str, Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class WeakSecretWarning(UserWarning):
    """The secret is short enough to be guessed offline from a single cookie."""


class SessionMiddleware:
    """Server-side sessions for the wrapped WSGI app; each option in docs/configuration.rst.

    The request's session accessor is at ``environ["wsgi_session"]``; apps use it
    through :func:`get_session` and its siblings.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        store: SessionStore,
        secret: Secret | Sequence[Secret],
        name: str = "session",
        max_age: int = 86400,
        cookie: CookieOptions | Mapping[str, Any] | None = None,
        generate: Callable[[], Mapping[str, Any]] | None = None,
        rolling: bool = False,
        save_uninitialized: bool = False,
        absolute_timeout: int | None = None,
        max_size: int | None = None,
        regenerate_window: int = DEFAULT_REGENERATE_WINDOW,
        on_store_error: str = "raise",
        user_key: str | None = None,
        metrics: bool = False,
    ) -> None:
        self.app = app
        keys = secret_keys(secret)
        if len(keys[0]) < MIN_SECRET_LENGTH:
            warnings.warn(
                f"secret is shorter than {MIN_SECRET_LENGTH} bytes; use secrets.token_urlsafe(32)",
                WeakSecretWarning,
                stacklevel=2,
            )
        name = check_name(name)
        max_age = check_count("max_age", max_age)
        store = check_store(store)
        users = None if user_key is None else UserIndex(store, user_key, keys[0])
        self.settings = Settings(
            store=store,
            cookie=SessionCookie(name, check_cookie(name, cookie), keys, max_age),
            events=Events(_metrics(check_flag("metrics", metrics))),
            max_age=max_age,
            generate=check_generate(generate),
            rolling=check_flag("rolling", rolling),
            save_uninitialized=check_flag("save_uninitialized", save_uninitialized),
            absolute_timeout=check_optional_count("absolute_timeout", absolute_timeout),
            max_size=check_optional_count("max_size", max_size),
            regenerate_window=check_count("regenerate_window", regenerate_window, zero=True),
            anonymous_on_store_error=check_on_store_error(on_store_error),
            users=users,
        )

    def __repr__(self) -> str:  # never shows the secret
        settings = self.settings
        return f"<SessionMiddleware name={settings.cookie.name!r} store={type(settings.store).__name__}>"

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        session = environ[ENVIRON_KEY] = self.open_session(environ)
        cookie_headers: list[tuple[str, str]] | None = None

        def start_session_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], Any]:
            # An app may call start_response again, with exc_info, to swap its headers
            # for an error response's: the session is written back on the first call
            # only, and its cookie goes out with whichever headers are sent.
            nonlocal cookie_headers
            if cookie_headers is None:
                cookie_headers = []  # stays empty if the write-back raises
                cookie_headers = self.write_back(session, environ)
            if cookie_headers:
                headers = _private(headers) + cookie_headers
            if session.accessed:
                headers = headers + _vary_cookie(headers)
            return start_response(status, headers, exc_info)

        return self.app(environ, start_session_response)

    def open_session(self, environ: Environ) -> RequestSession:
        """The lazy session of the request in ``environ``: its cookie is read on first use.

        A framework adapter that opens a session outside a request through the
        middleware (Flask's ``session_transaction()``) calls this and then
        :meth:`write_back` itself.
        """
        return RequestSession(self.settings, environ)

    def write_back(self, session: RequestSession, environ: Environ) -> list[tuple[str, str]]:
        """Finish the session, touched or not, so that later changes raise; its Set-Cookie."""
        value = session.finish()
        if value is None:
            return []
        cookie = self.settings.cookie
        if not value:
            return [("Set-Cookie", cookie.expire_cookie())]
        if environ.get("wsgi.url_scheme") == "http":  # only plain HTTP loses a Secure cookie
            cookie.warn_if_lost_over_http(environ)
        return [("Set-Cookie", cookie.set_cookie(value))]


def _metrics(enabled: bool) -> Metrics | None:
    if not enabled:
        return None
    from .metrics import Metrics

    return Metrics()


def _vary_cookie(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``Vary: Cookie``, unless the app's headers already vary on it (or on everything)."""
    for key, value in headers:
        if key.lower() == "vary" and {"cookie", "*"} & {v.strip().lower() for v in value.split(",")}:
            return []
    return [("Vary", "Cookie")]


def _private(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The app's headers, with a ``Cache-Control`` that no shared cache may store.

    The response sets or expires one visitor's session cookie: a proxy or CDN that
    kept it would hand that session to every other visitor without a cookie, since
    they all share one ``Vary: Cookie`` variant. So ``private`` is added, and
    ``public`` and ``s-maxage`` dropped: the app's ``public`` was meant for the page,
    and the page's ``max-age`` still lets the browser keep it. A ``no-store`` or a
    plain ``private`` of the app's is already enough and left as it is.
    """
    values = [value for key, value in headers if key.lower() == "cache-control"]
    if not values:  # the usual case: werkzeug's parse and format would cost some 4 µs
        return [*headers, ("Cache-Control", "private")]
    control = parse_cache_control_header(", ".join(values), cls=ResponseCacheControl)
    if control.no_store or control.private is True:
        return headers
    control.public = False
    control.s_maxage = None
    control.private = True
    others = [(key, value) for key, value in headers if key.lower() != "cache-control"]
    return [*others, ("Cache-Control", control.to_header())]
