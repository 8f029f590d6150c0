"""Security events on the ``wsgi_session`` logger: each at its documented level, hashed IDs only."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import webtest
from conftest import SECRET, contested_session, counter_app

from wsgi_session import (
    SessionConflictError,
    SessionMiddleware,
    create_memory_store,
    regenerate_session,
    revoke_sessions,
    sign_cookie,
    update_session,
)
from wsgi_session.events import short_hash
from wsgi_session.signing import new_session_id


def records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "wsgi_session"]


def client(app: Any) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"wsgi.url_scheme": "https"})


def test_a_forged_cookie_is_logged_at_info_under_a_hash(caplog):
    browser = client(SessionMiddleware(counter_app, store=create_memory_store(), secret=SECRET))
    forged = sign_cookie(new_session_id(), "a secret this app never had, 32 bytes+")
    with caplog.at_level(logging.INFO, logger="wsgi_session"):
        browser.get("/read", headers={"Cookie": f"session={forged}"})
    ((level, message),) = records(caplog)
    assert level == "INFO" and "rejected" in message
    assert forged not in message and forged[2:45] not in message


def test_an_unknown_id_is_logged_at_info_under_a_hash(caplog):
    browser = client(SessionMiddleware(counter_app, store=create_memory_store(), secret=SECRET))
    session_id = new_session_id()
    with caplog.at_level(logging.INFO, logger="wsgi_session"):
        browser.get("/read", headers={"Cookie": f"session={sign_cookie(session_id, SECRET)}"})
    hashed = short_hash(session_id)
    assert records(caplog) == [
        ("INFO", f"session {hashed}: signed ID not in the store (ended or expired); starting a new one")
    ]


def test_a_revocation_is_logged_at_info(caplog):
    def login(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        regenerate_session(environ)
        update_session(environ, lambda s: {"user_id": "ann"})
        start_response("200 OK", [])
        return [b""]

    app = SessionMiddleware(login, store=create_memory_store(), secret=SECRET, user_key="user_id")
    browser = client(app)
    browser.get("/")
    session_id = browser.cookies["session"][2:].rsplit(".", 1)[0]
    with caplog.at_level(logging.INFO, logger="wsgi_session"):
        assert revoke_sessions(app, user_id="ann") == 1
    assert records(caplog) == [("INFO", f"session {short_hash(session_id)}: revoked")]


def test_a_write_given_up_after_conflicts_is_logged_at_warning(caplog, monkeypatch):
    monkeypatch.setattr("wsgi_session.session.MAX_BACKOFF", 0)
    store = create_memory_store()
    session_id, outrun = contested_session(store)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        update_session(environ, outrun)
        start_response("200 OK", [])
        return [b""]

    browser = client(SessionMiddleware(app, store=store, secret=SECRET))
    with caplog.at_level(logging.INFO, logger="wsgi_session"), pytest.raises(SessionConflictError):
        browser.get("/", headers={"Cookie": f"session={sign_cookie(session_id, SECRET)}"})
    assert records(caplog) == [
        ("WARNING", f"session {short_hash(session_id)}: gave up writing after 50 conflicting tries")
    ]
