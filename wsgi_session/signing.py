"""Signed session-ID cookies in the express ``cookie-signature`` format.

A signed value is ``s:<value>.<signature>``, the signature being the HMAC-SHA256 of
the value under the secret, in standard base64 without ``=`` padding. Cookies signed
by express-session, or by the TypeScript library this one follows, verify here and
the other way round.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets as _secrets
from collections.abc import Sequence
from typing import Union

Secret = Union[str, bytes]

#: 256 bits from :mod:`secrets`, URL-safe base64: always 43 characters.
SESSION_ID_LENGTH = 43
_SESSION_ID = re.compile(rf"[A-Za-z0-9_-]{{{SESSION_ID_LENGTH}}}")
_PREFIX = "s:"
#: ``s:`` + ID + ``.`` + 43 characters of signature: anything longer or shorter is
#: refused before any HMAC is computed.
SIGNED_SESSION_ID_LENGTH = len(_PREFIX) + SESSION_ID_LENGTH + 1 + 43


def new_session_id() -> str:
    """Return a fresh session ID: 256 random bits, 43 URL-safe characters."""
    return _secrets.token_urlsafe(32)


def is_session_id(value: str) -> bool:
    """Tell whether ``value`` has the exact shape of an ID from :func:`new_session_id`.

    Only such IDs ever reach a store, so no glob, path or SQL character can.
    """
    return _SESSION_ID.fullmatch(value) is not None


def secret_keys(secret: Secret | Sequence[Secret] | None, option: str = "secret") -> tuple[bytes, ...]:
    """Turn one secret or a sequence of them into HMAC keys, refusing empty ones.

    ``option`` names the setting in the error, so that a bad configuration says
    which option is wrong.
    """
    if isinstance(secret, (str, bytes)):
        secret = [secret]
    # A set has no first secret to sign with; None, a number or a generator is a mistake.
    if not isinstance(secret, Sequence) or len(secret) == 0:
        raise ValueError(f"{option} must be a non-empty string or a non-empty sequence of them")
    keys = []
    for item in secret:
        if isinstance(item, str):
            item = item.encode("utf-8")
        if not isinstance(item, bytes) or not item:
            raise ValueError(f"{option} must not contain an empty or non-string secret")
        keys.append(item)
    return tuple(keys)


def keyed_macs(keys: Sequence[bytes]) -> tuple[hmac.HMAC, ...]:
    """An HMAC-SHA256 keyed with each key, to be copied by :func:`signature`.

    Keying an HMAC costs more than hashing a session ID, so it is done once per
    secret instead of once per signature.
    """
    return tuple(hmac.new(key, digestmod="sha256") for key in keys)


def signature(value: str, keyed_mac: hmac.HMAC) -> str:
    """The signature text of ``value``: base64 of its HMAC-SHA256, unpadded.

    ``keyed_mac`` comes from :func:`keyed_macs` and is never updated itself: each
    signature continues a copy of it, so one can serve every thread.
    """
    mac = keyed_mac.copy()
    mac.update(value.encode("utf-8"))
    return base64.b64encode(mac.digest()).decode("ascii").rstrip("=")


def sign_cookie(value: str, secret: Secret) -> str:
    """Return ``s:<value>.<signature>``, as express's ``cookie-signature`` does."""
    if not isinstance(value, str):
        raise TypeError(f"value must be a str, not {type(value).__name__}")
    if not isinstance(secret, (str, bytes)):  # a list would hide which secret signs
        raise ValueError("secret must be one non-empty string: sign_cookie signs with a single secret")
    (keyed_mac,) = keyed_macs(secret_keys(secret))
    return f"{_PREFIX}{value}.{signature(value, keyed_mac)}"


def verify(signed: str, macs: Sequence[hmac.HMAC]) -> tuple[str, int] | None:
    """Return the value and the index of the key that signed it, or ``None``.

    The signature text is compared in constant time with the expected text under
    each of ``macs`` (from :func:`keyed_macs`) in turn, so any other spelling of the
    same MAC bytes (padding, the URL-safe alphabet) is refused.
    """
    if not isinstance(signed, str) or not signed.startswith(_PREFIX):
        return None
    value, dot, sig = signed[len(_PREFIX) :].rpartition(".")
    # compare_digest takes only ASCII str; the expected text is always ASCII.
    if not dot or not sig.isascii():
        return None
    try:
        for index, keyed_mac in enumerate(macs):
            if hmac.compare_digest(sig, signature(value, keyed_mac)):
                return value, index
    except UnicodeEncodeError:  # a lone surrogate in the value
        return None
    return None


def unsign_cookie(signed: str, secrets: Secret | Sequence[Secret]) -> str | None:
    """Return the value of ``signed`` if any of ``secrets`` verifies it, else ``None``.

    Never raises on malformed input; an empty secret is a ``ValueError``.
    """
    found = verify(signed, keyed_macs(secret_keys(secrets, option="secrets")))
    return None if found is None else found[0]
