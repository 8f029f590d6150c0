"""The session's Set-Cookie header, built from a template, is werkzeug's own."""

import pytest
from werkzeug.http import dump_cookie

from wsgi_session import SessionMiddleware, create_memory_store, sign_cookie
from wsgi_session import session_cookie as session_cookie_module

SECRET = "test-secret-that-is-long-enough-0123456789"
SIGNED = sign_cookie("A" * 43, SECRET)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"cookie": {"secure": False, "httponly": False, "samesite": "strict"}},
        {"name": "__Host-sid", "max_age": 60, "cookie": {"partitioned": True, "samesite": "none"}},
        {"cookie": {"domain": "example.com", "path": "/app"}},
    ],
)
def test_session_cookie_is_what_dump_cookie_writes(options, monkeypatch):
    middleware = SessionMiddleware(lambda e, s: [], store=create_memory_store(), secret=SECRET, **options)
    for now in (1_700_000_000.25, 1_700_000_000.75, 1_700_000_001.5, 1_800_000_000.0):
        monkeypatch.setattr(session_cookie_module.time, "time", lambda now=now: now)
        session_cookie = middleware.settings.cookie
        cookie = session_cookie.options
        expected = dump_cookie(
            session_cookie.name,
            SIGNED,
            max_age=session_cookie.max_age,
            expires=now + session_cookie.max_age,
            path=cookie.path,
            domain=cookie.domain,
            secure=cookie.secure,
            httponly=cookie.httponly,
            samesite=cookie.samesite.title(),
            partitioned=cookie.partitioned,
        )
        assert session_cookie.set_cookie(SIGNED) == expected
