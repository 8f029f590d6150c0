"""The WSGI middleware: cookie in, session in the environ, cookie out.

The whole flow of a request is :meth:`SessionMiddleware.__call__`: it puts a lazy
:class:`~wsgi_session.session.RequestSession` in the environ and wraps
``start_response``. Nothing is parsed, verified or fetched unless the app touches
the session; when it has, the session is written back as the app calls
``start_response``, while an error can still become an error response.
"""

from __future__ import annotations

import dataclasses
import re
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable
from urllib.parse import unquote

from werkzeug.http import dump_cookie, http_date

from .cookie_header import cookie_values
from .record import Data
from .session import RequestSession, apply_updater
from .signing import (
    SIGNED_SESSION_ID_LENGTH,
    Secret,
    is_session_id,
    keyed_macs,
    secret_keys,
    signature,
    verify,
)
from .store import SessionStore

ENVIRON_KEY = "wsgi_session"
#: Below this many characters a secret can be guessed offline from one cookie.
MIN_SECRET_LENGTH = 32
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
# RFC 6265 cookie-name token: visible ASCII except separators.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
# Stands for the Expires date in the Set-Cookie template; werkzeug copies it verbatim.
_EXPIRES_MARK = "\x00"

StartResponse = Callable[..., Callable[[bytes], Any]]
Environ = dict[str, Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class WeakSecretWarning(UserWarning):
    """The secret is short enough to be guessed offline from a single cookie."""


class InsecureCookieWarning(UserWarning):
    """A ``Secure`` cookie went out over plain HTTP: the browser will not send it back."""


@dataclasses.dataclass(frozen=True)
class CookieOptions:
    """Attributes of the session cookie. The defaults are the safe ones.

    ``samesite`` is ``"lax"``, ``"strict"`` or ``"none"`` (which needs ``secure``).
    ``partitioned`` (CHIPS) also needs ``secure``.
    """

    secure: bool = True
    httponly: bool = True
    samesite: str = "lax"
    path: str = "/"
    domain: str | None = None
    partitioned: bool = False


class SessionMiddleware:
    """Server-side sessions for the wrapped WSGI app. See the README for each option."""

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
    ) -> None:
        self.app = app
        self.store = _check_store(store)
        keys = secret_keys(secret)
        if len(keys[0]) < MIN_SECRET_LENGTH:
            warnings.warn(
                f"secret is shorter than {MIN_SECRET_LENGTH} characters; use secrets.token_urlsafe(32)",
                WeakSecretWarning,
                stacklevel=2,
            )
        self._keyed_macs = keyed_macs(keys)
        self.name = _check_name(name)
        self.max_age = _check_seconds("max_age", max_age)
        self.cookie = _check_cookie(name, cookie)
        self._samesite = _SAMESITE[self.cookie.samesite.lower()]
        if generate is not None and not callable(generate):
            raise ValueError("generate must be a callable returning the initial session data")
        self.generate = generate
        self.rolling = bool(rolling)
        self.save_uninitialized = bool(save_uninitialized)
        self.absolute_timeout = (
            None if absolute_timeout is None else _check_seconds("absolute_timeout", absolute_timeout)
        )
        self.max_size = None if max_size is None else _check_seconds("max_size", max_size)
        self._warned_insecure = False
        # Every Set-Cookie of a session differs only in its value and Expires date:
        # werkzeug builds the rest once, here (see _session_cookie).
        template = self._set_cookie("", self.max_age, expires=_EXPIRES_MARK)
        before, after = template[len(self.name) + 1 :].split(_EXPIRES_MARK)
        self._session_cookie_parts = (before, after)
        self._expires: tuple[int, str] = (0, "")  # (second, Expires date for a cookie sent then)

    def __repr__(self) -> str:  # never shows the secret
        return f"<SessionMiddleware name={self.name!r} store={type(self.store).__name__}>"

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
            if session.accessed:
                headers = headers + _vary_cookie(headers) + cookie_headers
            return start_response(status, headers, exc_info)

        return self.app(environ, start_session_response)

    def open_session(self, environ: Environ) -> RequestSession:
        """The lazy session of the request in ``environ``: its cookie is read on first use.

        A framework adapter that opens a session outside a request through the
        middleware (Flask's ``session_transaction()``) calls this and then
        :meth:`write_back` itself.
        """
        return RequestSession(self, environ.get("HTTP_COOKIE"))

    # -- reading the cookie ------------------------------------------------------

    def session_id_from_cookie(self, header: str | None) -> tuple[str, str | None] | None:
        """The session ID a request's ``Cookie`` header proves, and the cookie text to re-send.

        The text is ``None`` when the cookie verified with an older secret, so that
        the response re-issues it under the first. Of several cookies of our name,
        the first that verifies wins; they are never merged.
        """
        if not header:
            return None
        for value in cookie_values(header, self.name):
            if "%" in value:  # express sends the cookie URL-encoded: decode once
                value = unquote(value)
            # The length check keeps huge values away from the HMAC.
            if len(value) != SIGNED_SESSION_ID_LENGTH:
                continue
            found = verify(value, self._keyed_macs)
            if found is not None and is_session_id(found[0]):
                session_id, key_index = found
                return session_id, (value if key_index == 0 else None)
        return None

    # -- writing the cookie ------------------------------------------------------

    def sign(self, session_id: str) -> str:
        return f"s:{session_id}.{signature(session_id, self._keyed_macs[0])}"

    def write_back(self, session: RequestSession, environ: Environ) -> list[tuple[str, str]]:
        """Finish the session, touched or not, so that later session calls raise; its Set-Cookie."""
        value = session.finish()
        if value is None:
            return []
        if not value:
            return [("Set-Cookie", self._set_cookie("", 0))]
        if environ.get("wsgi.url_scheme") == "http":  # only plain HTTP loses a Secure cookie
            self._warn_secure_over_http(environ)
        return [("Set-Cookie", self._session_cookie(value))]

    def _session_cookie(self, signed_id: str) -> str:
        """The ``Set-Cookie`` of a signed session ID, as werkzeug's ``dump_cookie`` writes it.

        Only the value and the Expires date change between responses, and a signed
        ID never needs quoting, so they are put into the template built at start-up:
        ``dump_cookie`` costs more than the rest of a memory-store request's write-back.
        The date is formatted once a second.
        """
        now = int(time.time())
        second, expires = self._expires
        if second != now:
            expires = http_date(now + self.max_age)
            self._expires = (now, expires)
        before, after = self._session_cookie_parts
        return f"{self.name}={signed_id}{before}{expires}{after}"

    def _set_cookie(self, value: str, max_age: int, expires: str | None = None) -> str:
        options = self.cookie
        return dump_cookie(
            self.name,
            value,
            max_age=max_age,
            expires=expires,
            path=options.path,
            domain=options.domain,
            secure=options.secure,
            httponly=options.httponly,
            samesite=self._samesite,
            partitioned=options.partitioned,
        )

    def _warn_secure_over_http(self, environ: Environ) -> None:
        """Warn, once, that a Secure cookie went out on this plain-HTTP request.

        Not for a request to this machine, where browsers keep Secure cookies anyway.
        """
        if self._warned_insecure or not self.cookie.secure:
            return
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        if _host_name(host) in _LOCAL_HOSTS:
            return
        self._warned_insecure = True
        warnings.warn(
            "the session cookie is Secure but this request came over plain HTTP, so browsers "
            "will not send it back; serve over HTTPS, or behind a proxy tell the app so "
            "(werkzeug.middleware.proxy_fix.ProxyFix)",
            InsecureCookieWarning,
            stacklevel=2,
        )

    # -- what the session asks of its configuration ------------------------------

    def initial_data(self) -> Data:
        """A new session's data, checked as an update is.

        So a value of ``generate`` that JSON cannot encode fails at first use, naming
        its key, and not later at write-back.
        """
        generate = self.generate
        if generate is None:
            return {}
        data, _ = apply_updater({}, lambda _: generate(), self.max_size)
        return data


def _vary_cookie(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``Vary: Cookie``, unless the app's headers already vary on it (or on everything)."""
    for key, value in headers:
        if key.lower() == "vary" and {"cookie", "*"} & {v.strip().lower() for v in value.split(",")}:
            return []
    return [("Vary", "Cookie")]


def _host_name(host: str) -> str:
    """``host`` without its port, lower-cased: ``[::1]:8000`` gives ``[::1]``, ``A:80`` gives ``a``."""
    host = host.lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0]


def _check_store(store: Any) -> SessionStore:
    missing = [
        m
        for m in ("get", "set", "delete", "touch", "compare_and_set")
        if not callable(getattr(store, m, None))
    ]
    if missing:
        raise ValueError(f"store must provide the session store methods; missing: {', '.join(missing)}")
    return store  # type: ignore[no-any-return]


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _COOKIE_NAME.fullmatch(name):
        raise ValueError("name must be a cookie name: letters, digits and !#$%&'*+-.^_`|~")
    return name


def _check_seconds(option: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{option} must be a positive integer, not {value!r}")
    return value


def _check_cookie(name: str, cookie: CookieOptions | Mapping[str, Any] | None) -> CookieOptions:
    if cookie is None:
        options = CookieOptions()
    elif isinstance(cookie, CookieOptions):
        options = cookie
    elif isinstance(cookie, Mapping):
        known = {f.name for f in dataclasses.fields(CookieOptions)}
        unknown = sorted(repr(key) for key in set(cookie) - known)
        if unknown:
            raise ValueError(f"cookie has unknown option(s): {', '.join(unknown)}")
        options = CookieOptions(**cookie)
    else:
        raise ValueError("cookie must be a CookieOptions or a dict of its options")
    if not isinstance(options.samesite, str) or options.samesite.lower() not in _SAMESITE:
        raise ValueError(f"cookie.samesite must be 'lax', 'strict' or 'none', not {options.samesite!r}")
    if options.samesite.lower() == "none" and not options.secure:
        raise ValueError("cookie.samesite='none' requires cookie.secure=True")
    if options.partitioned and not options.secure:
        raise ValueError("cookie.partitioned requires cookie.secure=True")
    if not isinstance(options.path, str) or not options.path.startswith("/"):
        raise ValueError("cookie.path must be a path starting with '/'")
    prefix = name.lower()
    if prefix.startswith("__secure-") and not options.secure:
        raise ValueError("a '__Secure-' cookie name requires cookie.secure=True")
    if prefix.startswith("__host-"):
        if not options.secure:
            raise ValueError("a '__Host-' cookie name requires cookie.secure=True")
        if options.domain is not None:
            raise ValueError("a '__Host-' cookie name forbids cookie.domain")
        if options.path != "/":
            raise ValueError("a '__Host-' cookie name requires cookie.path='/'")
    return options
