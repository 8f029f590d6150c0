"""The raw minimum: the least work any Redis-backed signed-cookie session must do.

Written by hand for the benchmark, with no session library: parse the cookie
(werkzeug's parser, the one the security rules require), one HMAC verify, one
Redis GET, JSON, and for a write one Redis SET with EX and one HMAC sign. It keeps
no metadata, checks no expiry and has no options; it is the floor, not a product.

The compare-and-set variants write with a Lua script that replaces the value only
if it is still the one read, and on a conflict read again and redo the increment.
The first compares the whole value, so it sends it twice; the second keeps a
22-character random version in front of the JSON and compares only that: the least
work that loses no concurrent update.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from typing import Any, Callable

import redis
from werkzeug.http import parse_cookie

from .configs import MAX_AGE, SECRET, Context, WSGIApp, read_all, respond

PREFIX = "raw:"
COOKIE = "session"
SET_IF_UNCHANGED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
    return 1
end
return 0
"""
SET_IF_VERSION = """
if redis.call('GETRANGE', KEYS[1], 0, 21) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2] .. ARGV[3], 'EX', ARGV[4])
    return 1
end
return 0
"""
VERSION = 22  # characters of secrets.token_urlsafe(16)
_SIGNED_LENGTH = 2 + 43 + 1 + 43


class RawMinimum:
    """``compare_and_set``: None (a plain SET), "payload" or "version"."""

    def __init__(self, ctx: Context, compare_and_set: str | None) -> None:
        assert ctx.redis_url is not None
        self.redis = redis.Redis.from_url(ctx.redis_url)
        self.initial = ctx.initial
        self.key = SECRET.encode()
        self.versioned = compare_and_set == "version"
        script = {None: None, "payload": SET_IF_UNCHANGED, "version": SET_IF_VERSION}[compare_and_set]
        self.set_if_unchanged = None if script is None else self.redis.register_script(script)

    def load(self, payload: bytes | None) -> dict[str, Any] | None:
        if payload is None:
            return None
        return json.loads(payload[VERSION:] if self.versioned else payload)  # type: ignore[no-any-return]

    def dump(self, data: dict[str, Any]) -> str:
        return secrets.token_urlsafe(16) + json.dumps(data) if self.versioned else json.dumps(data)

    def signature(self, session_id: str) -> str:
        mac = hmac.new(self.key, session_id.encode(), hashlib.sha256).digest()
        return base64.b64encode(mac).decode().rstrip("=")

    def session_id(self, environ: dict[str, Any]) -> str | None:
        value = parse_cookie(environ.get("HTTP_COOKIE", "")).get(COOKIE)
        if value is None or len(value) != _SIGNED_LENGTH or not value.startswith("s:"):
            return None
        session_id, sig = value[2:45], value[46:]
        return session_id if hmac.compare_digest(sig, self.signature(session_id)) else None

    def set_cookie(self, session_id: str) -> tuple[str, str]:
        return (
            "Set-Cookie",
            f"{COOKIE}=s:{session_id}.{self.signature(session_id)}; HttpOnly; Max-Age={MAX_AGE}; "
            "Path=/; SameSite=Lax; Secure",
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/w3":
            return respond(start_response, "plain")
        session_id = self.session_id(environ)
        payload = self.redis.get(PREFIX + session_id) if session_id is not None else None
        data = self.load(payload)
        if path == "/setup" or (path == "/w1" and data is None):
            session_id = secrets.token_urlsafe(32)
            data = dict(self.initial, counter=1 if path == "/w1" else 0)
            self.redis.set(PREFIX + session_id, self.dump(data), ex=MAX_AGE)
        elif path == "/w1":
            assert session_id is not None and payload is not None and data is not None
            data = self.increment(session_id, payload, data)
        else:
            return respond(start_response, read_all(data or {}))
        return respond(start_response, data["counter"], [self.set_cookie(session_id)])

    def increment(self, session_id: str, payload: bytes, data: dict[str, Any]) -> dict[str, Any]:
        key = PREFIX + session_id
        while True:
            data["counter"] = data.get("counter", 0) + 1
            if self.set_if_unchanged is None:
                self.redis.set(key, json.dumps(data), ex=MAX_AGE)
                return data
            if self.versioned:
                args = [payload[:VERSION], secrets.token_urlsafe(16), json.dumps(data), MAX_AGE]
            else:
                args = [payload, json.dumps(data), MAX_AGE]
            if self.set_if_unchanged(keys=[key], args=args):
                return data
            payload = self.redis.get(key)
            if payload is None:
                raise RuntimeError("session disappeared")
            data = self.load(payload)  # type: ignore[assignment]


def raw_minimum(ctx: Context) -> WSGIApp:
    return RawMinimum(ctx, compare_and_set=None)


def raw_minimum_cas(ctx: Context) -> WSGIApp:
    return RawMinimum(ctx, compare_and_set="payload")


def raw_minimum_version_cas(ctx: Context) -> WSGIApp:
    return RawMinimum(ctx, compare_and_set="version")
