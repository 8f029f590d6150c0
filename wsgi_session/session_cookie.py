"""The session cookie: its options, reading the ID it proves, and its ``Set-Cookie``.

The cookie holds nothing but the signed session ID (``s:<id>.<signature>``, see
:mod:`wsgi_session.signing`). Reading it checks the length before any HMAC and the
ID's exact shape after, so that nothing but a well-formed ID ever reaches a store.
"""

from __future__ import annotations

import dataclasses
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Optional
from urllib.parse import unquote

from werkzeug.http import dump_cookie, http_date

from .cookie_header import cookie_values
from .signing import SIGNED_SESSION_ID_LENGTH, is_session_id, keyed_macs, signature, verify

_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
# RFC 6265 cookie-name token: visible ASCII except separators.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# What RFC 6265 allows in a Domain or Path attribute: no controls, no ";".
_ATTRIBUTE_VALUE = re.compile(r"[\x21-\x3a\x3c-\x7e]*")
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
# Stands for the Expires date in the Set-Cookie template; werkzeug copies it verbatim.
_EXPIRES_MARK = "\x00"


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


#: What a request's ``Cookie`` header says about its session: ``(session_id, resend,
#: rejected)``. ``session_id`` is the ID a cookie of ours proves, or ``None``.
#: ``resend`` is that cookie's text when it can go back to the browser as it came
#: (signed with the first secret). ``rejected`` tells that a cookie of our name was
#: there but proved nothing: forged, tampered, or signed with a secret no longer
#: configured. A plain tuple: it is built on every request that reads its session.
CookieRead = tuple[Optional[str], Optional[str], bool]

_NO_COOKIE: CookieRead = (None, None, False)
_REJECTED: CookieRead = (None, None, True)


class SessionCookie:
    """Reads and writes the session cookie of one middleware."""

    def __init__(self, name: str, options: CookieOptions, keys: Sequence[bytes], max_age: int) -> None:
        self.name = name
        self.options = options
        self.max_age = max_age
        self._macs = keyed_macs(keys)
        self._samesite = _SAMESITE[options.samesite.lower()]
        self._warned_insecure = False
        # Every Set-Cookie of a session differs only in its value and Expires date:
        # werkzeug builds the rest once, here (see set_cookie).
        template = self._dump("", max_age, expires=_EXPIRES_MARK)
        before, after = template[len(name) + 1 :].split(_EXPIRES_MARK)
        self._template = (before, after)
        self._expires: tuple[int, str] = (0, "")  # (second, Expires date for a cookie sent then)

    def read(self, header: str | None) -> CookieRead:
        """The session ID that a request's ``Cookie`` header proves.

        Of several cookies of our name, the first that verifies wins; they are never
        merged. A cookie that verified with an older secret has no ``resend`` text,
        so that the response re-issues it under the first.
        """
        if not header:
            return _NO_COOKIE
        values = cookie_values(header, self.name)
        for value in values:
            if "%" in value:  # express sends the cookie URL-encoded: decode once
                value = unquote(value)
            # The length check keeps huge values away from the HMAC.
            if len(value) != SIGNED_SESSION_ID_LENGTH:
                continue
            found = verify(value, self._macs)
            if found is not None and is_session_id(found[0]):
                session_id, key_index = found
                return session_id, value if key_index == 0 else None, False
        return _REJECTED if values else _NO_COOKIE

    def sign(self, session_id: str) -> str:
        return f"s:{session_id}.{signature(session_id, self._macs[0])}"

    def set_cookie(self, signed_id: str) -> str:
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
        before, after = self._template
        return f"{self.name}={signed_id}{before}{expires}{after}"

    def expire_cookie(self) -> str:
        """The ``Set-Cookie`` that removes the cookie: same name, path and domain, ``Max-Age=0``."""
        return self._dump("", 0)

    def _dump(self, value: str, max_age: int, expires: str | None = None) -> str:
        options = self.options
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

    def warn_if_lost_over_http(self, environ: Mapping[str, Any]) -> None:
        """Warn, once, that a Secure cookie went out on this plain-HTTP request.

        Not for a request to this machine, where browsers keep Secure cookies anyway.
        """
        if self._warned_insecure or not self.options.secure:
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
            stacklevel=3,
        )


def _host_name(host: str) -> str:
    """``host`` without its port, lower-cased: ``[::1]:8000`` gives ``[::1]``, ``A:80`` gives ``a``."""
    host = host.lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0]


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _COOKIE_NAME.fullmatch(name):
        raise ValueError("name must be a cookie name: letters, digits and !#$%&'*+-.^_`|~")
    return name


def check_cookie(name: str, cookie: CookieOptions | Mapping[str, Any] | None) -> CookieOptions:
    """The cookie options, each of the right type and consistent with the cookie's name."""
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
    for flag in ("secure", "httponly", "partitioned"):
        value = getattr(options, flag)
        if not isinstance(value, bool):  # "false" is true: a flag that weakens must be a bool
            raise ValueError(f"cookie.{flag} must be True or False, not {value!r}")
    if not isinstance(options.samesite, str) or options.samesite.lower() not in _SAMESITE:
        raise ValueError(f"cookie.samesite must be 'lax', 'strict' or 'none', not {options.samesite!r}")
    if options.samesite.lower() == "none" and not options.secure:
        raise ValueError("cookie.samesite='none' requires cookie.secure=True")
    if options.partitioned and not options.secure:
        raise ValueError("cookie.partitioned requires cookie.secure=True")
    path = options.path
    if not isinstance(path, str) or not path.startswith("/") or not _ATTRIBUTE_VALUE.fullmatch(path):
        raise ValueError(f"cookie.path must be a path starting with '/', without spaces or ';', not {path!r}")
    domain = options.domain
    if domain is not None and (
        not isinstance(domain, str) or not domain or not _ATTRIBUTE_VALUE.fullmatch(domain)
    ):
        raise ValueError(f"cookie.domain must be None or a domain name, not {domain!r}")
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
