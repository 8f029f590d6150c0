"""on_store_error="anonymous": an outage gives an empty session that is never stored (E11)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import webtest
from conftest import SECRET, counter_app

from wsgi_session import SessionMiddleware, SessionStoreError, create_memory_store
from wsgi_session import events as events_module


class SwitchableStore:
    """A real memory store that can be made to fail, as a store behind a dead network."""

    def __init__(self) -> None:
        self.store = create_memory_store()
        self.down = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        def call(*args: Any) -> Any:
            if self.down:
                raise ConnectionError("store unreachable")
            return method(*args)

        return call


@pytest.fixture
def store() -> SwitchableStore:
    return SwitchableStore()


def client(store: SwitchableStore, **options: Any) -> webtest.TestApp:
    app = SessionMiddleware(counter_app, store=store, secret=SECRET, **options)
    return webtest.TestApp(app, extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "example.com"})


def test_e11_an_outage_gives_an_empty_session_and_keeps_the_users_cookie(store):
    browser = client(store, on_store_error="anonymous")
    assert browser.get("/").text == "1"
    assert browser.get("/").text == "2"
    cookie = browser.cookies["session"]
    store.down = True
    for path in ("/", "/read"):
        response = browser.get(path)
        assert response.status_int == 200
        assert "Set-Cookie" not in response.headers
    assert browser.get("/").text == "1"  # counts in an empty session, never stored
    assert browser.cookies["session"] == cookie
    store.down = False
    assert browser.get("/").text == "3"  # the stored session is intact


def test_e11_a_write_back_that_fails_is_dropped(store):
    class FailsOnWrite(SwitchableStore):
        def __getattr__(self, name: str) -> Any:
            if name == "compare_and_set":

                def fail(*args: Any) -> Any:
                    raise ConnectionError("lost the connection")

                return fail
            return super().__getattr__(name)

    failing = FailsOnWrite()
    browser = client(failing, on_store_error="anonymous")
    assert browser.get("/").text == "1"
    response = browser.get("/")
    assert response.status_int == 200
    assert "Set-Cookie" not in response.headers
    assert browser.get("/read").text == "{'visits': 1}"


def test_the_default_still_fails_loudly(store):
    browser = client(store)
    browser.get("/")
    store.down = True
    with pytest.raises(SessionStoreError):
        browser.get("/")


def test_e11_outages_are_logged_at_error_at_a_bounded_rate(store, caplog, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(events_module.time, "monotonic", lambda: now[0])
    browser = client(store, on_store_error="anonymous")
    browser.get("/")
    store.down = True
    with caplog.at_level(logging.ERROR, logger="wsgi_session"):
        for _ in range(5):
            browser.get("/")
        now[0] += 11
        browser.get("/")
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(messages) == 2
    assert "store unavailable" in messages[0]
    assert "(4 more since the last record)" in messages[1]


def test_a_logout_during_an_outage_expires_the_cookie(store):
    from wsgi_session import destroy_session

    def logout(environ: Any, start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/logout":
            destroy_session(environ)
            start_response("200 OK", [])
            return [b""]
        return counter_app(environ, start_response)

    app = SessionMiddleware(logout, store=store, secret=SECRET, on_store_error="anonymous")
    browser = webtest.TestApp(app, extra_environ={"wsgi.url_scheme": "https"})
    browser.get("/")
    store.down = True
    response = browser.get("/logout")
    assert "Max-Age=0" in response.headers["Set-Cookie"]
