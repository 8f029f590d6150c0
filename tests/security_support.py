"""Helpers of the security tests: raw WSGI calls, signed IDs, an injected clock.

The hostile-input tests call the middleware directly instead of through webtest, so
that headers no client library would send (NUL, CR/LF, non-latin-1 text) reach it
as they are.
"""

from __future__ import annotations

import re
from typing import Any, Callable, NamedTuple

from conftest import SECRET

from wsgi_session import sign_cookie
from wsgi_session.signing import new_session_id

NAME = "session"
_COOKIE_VALUE = re.compile(r"s:([A-Za-z0-9_-]{43})\.")


class Response(NamedTuple):
    status: str
    headers: list[tuple[str, str]]
    body: str

    @property
    def code(self) -> int:
        return int(self.status.split()[0])

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def set_cookies(self) -> list[str]:
        return self.all("Set-Cookie")

    @property
    def session_id(self) -> str | None:
        """The ID in this response's session cookie, if it sets one."""
        for header in self.set_cookies:
            if header.startswith(f"{NAME}="):
                match = _COOKIE_VALUE.match(header[len(NAME) + 1 :])
                return match.group(1) if match else None
        return None

    @property
    def cookie(self) -> str:
        """The ``Cookie`` header a browser would send back after this response."""
        header = next(h for h in self.set_cookies if h.startswith(f"{NAME}="))
        return header.split(";", 1)[0]


def call(
    app: Callable[..., Any],
    cookie: str | None = None,
    path: str = "/",
    scheme: str = "https",
    host: str = "example.com",
) -> Response:
    """One request straight into a WSGI app; the body is read whole."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_NAME": host,
        "SERVER_PORT": "443",
        "HTTP_HOST": host,
        "wsgi.url_scheme": scheme,
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, headers))
        return lambda data: None

    body = b"".join(app(environ, start_response))
    status, headers = started[-1]
    return Response(status, headers, body.decode("latin-1"))


def signed(session_id: str, secret: str = SECRET) -> str:
    """The cookie value for ``session_id``, as the middleware would sign it."""
    return sign_cookie(session_id, secret)


def fresh_id() -> str:
    return new_session_id()
