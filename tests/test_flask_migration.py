"""Switching a Flask app from Flask's signed-cookie sessions: ``migrate_cookie_sessions=True``.

Each test first runs the app on Flask's own sessions to get a real Flask session
cookie, then sends that cookie to the same app on wsgi_session.
"""

from __future__ import annotations

import time
from typing import Any

import flask
import itsdangerous
import pytest
import webtest
from conftest import SECRET
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_login_app import USERS, User
from markupsafe import Markup

from wsgi_session import SessionMiddleware, destroy_session, unsign_cookie
from wsgi_session.flask import SessionInterface
from wsgi_session.record import decode_record

FLASK_KEY = "the-flask-apps-own-secret-key"


def make_app(store: Any = None, *, migrate: bool = True, **options: Any) -> flask.Flask:
    """The app on Flask's own cookie sessions without ``store``, else on wsgi_session."""
    app = flask.Flask(__name__)
    app.secret_key = FLASK_KEY
    if store is not None:
        app.wsgi_app = SessionMiddleware(app.wsgi_app, store=store, secret=SECRET, **options)  # type: ignore[method-assign]
        app.session_interface = SessionInterface(migrate_cookie_sessions=migrate)
    LoginManager(app).user_loader(lambda user_id: User(user_id) if user_id in USERS else None)

    @app.post("/login")
    def login() -> str:
        login_user(User(flask.request.form.get("user", "ada")))
        flask.session["cart"] = (1, 2)
        flask.flash(Markup("<b>welcome</b>"))
        return "in"

    @app.post("/logout")
    def logout() -> str:
        logout_user()
        destroy_session(flask.request)
        return "out"

    @app.get("/whoami")
    def whoami() -> str:
        return str(current_user.get_id() or "anonymous")

    @app.get("/see")
    def see() -> str:
        app.seen = {"cart": flask.session.get("cart"), "flashes": flask.get_flashed_messages()}  # type: ignore[attr-defined]
        return "seen"

    @app.get("/plain")
    def plain() -> str:
        return "plain"

    return app


def flask_cookie(key: str = FLASK_KEY) -> str:
    """A session cookie of Flask's own, after a login, signed with ``key``."""
    app = make_app()
    app.secret_key = key
    client = app.test_client()
    client.post("/login")
    cookie = client.get_cookie("session")
    assert cookie is not None and not cookie.value.startswith("s:")
    return cookie.value


def client_with(app: flask.Flask, name: str, value: str) -> Any:
    client = app.test_client()
    client.set_cookie(name, value)
    return client


def stored_data(client: Any, store: Any, name: str = "session") -> dict[str, Any]:
    session_id = unsign_cookie(client.get_cookie(name).value, SECRET)
    record = decode_record(store.get(session_id).payload)
    assert record is not None
    return record[1]


def test_a_flask_cookie_session_becomes_a_server_session_and_no_one_is_logged_out(store):
    app = make_app(store)
    client = client_with(app, "session", flask_cookie())
    assert client.get("/whoami").text == "ada"
    assert store.names() == ["set"]  # no lookup: the cookie is not ours; one write
    assert client.get_cookie("session").value.startswith("s:")  # ours replaced Flask's
    store.calls.clear()
    assert client.get("/whoami").text == "ada"
    assert store.names() == ["get"]
    client.get("/see")
    assert app.seen == {"cart": (1, 2), "flashes": [Markup("<b>welcome</b>")]}  # type: ignore[attr-defined]
    assert stored_data(client, store)["cart"] == {" t": [1, 2]}  # Flask's tagged JSON


def test_in_a_cookie_jar_of_the_standard_library_ours_replaces_flasks_cookie(store):
    client = webtest.TestApp(make_app(store), extra_environ={"wsgi.url_scheme": "https"})
    client.set_cookie("session", flask_cookie())
    response = client.get("/whoami")
    assert response.text == "ada"
    assert [header.split("=", 1)[0] for header in response.headers.getall("Set-Cookie")] == ["session"] * 2
    assert client.cookies["session"].startswith("s:")
    assert client.get("/whoami").text == "ada"


def sign_long_ago(monkeypatch: pytest.MonkeyPatch) -> str:
    # Flask's default PERMANENT_SESSION_LIFETIME is 31 days.
    now = int(time.time())
    with monkeypatch.context() as patch:
        patch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: now - 40 * 86400)
        return flask_cookie()


def tampered() -> str:
    # The signature's first character: all six of its bits are signature bits (the
    # last character's lowest bits are padding, so changing them changes nothing).
    payload, signature = flask_cookie().rsplit(".", 1)
    return f"{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


@pytest.mark.parametrize("kind", ["tampered", "another-key", "expired", "garbage"])
def test_a_flask_cookie_that_does_not_verify_imports_nothing_and_costs_no_store_call(
    store, monkeypatch, kind
):
    value = {
        "tampered": tampered,
        "another-key": lambda: flask_cookie(key="some-other-apps-key"),
        "expired": lambda: sign_long_ago(monkeypatch),
        "garbage": lambda: "eyJub3QiOiJzaWduZWQifQ.garbage.x",
    }[kind]()
    client = client_with(make_app(store), "session", value)
    response = client.get("/whoami")
    assert response.text == "anonymous"
    assert store.calls == [] and "Set-Cookie" not in response.headers


def test_a_request_with_neither_cookie_costs_no_store_call(store):
    client = make_app(store).test_client()
    for path in ("/plain", "/whoami"):
        response = client.get(path)
        assert "Set-Cookie" not in response.headers
    assert store.calls == []


def test_a_valid_server_session_ignores_flasks_cookie(store):
    app = make_app(store, name="sid")
    client = app.test_client()
    client.post("/login", data={"user": "grace"})
    client.set_cookie("session", flask_cookie())  # ada's, in Flask's cookie
    store.calls.clear()
    assert client.get("/whoami").text == "grace"
    assert store.names() == ["get"]


@pytest.mark.parametrize("name", ["session", "sid"])
def test_a_logout_after_the_import_logs_out_whatever_the_cookie_names(store, name):
    app = make_app(store, name=name)
    client = client_with(app, "session", flask_cookie())
    response = client.get("/whoami")
    assert response.text == "ada"
    assert client.get_cookie(name).value.startswith("s:")
    if name != "session":
        assert client.get_cookie("session") is None  # Flask's cookie, expired
    client.post("/logout")
    assert client.get("/whoami").text == "anonymous"
    assert client.get("/whoami").text == "anonymous"


def test_without_migration_a_flask_cookie_is_ignored(store):
    client = client_with(make_app(store, migrate=False), "session", flask_cookie())
    assert client.get("/whoami").text == "anonymous"
    assert store.calls == []


def test_migration_without_a_secret_key_fails_naming_the_option(store):
    app = make_app(store)
    app.secret_key = None
    app.testing = True
    with pytest.raises(ValueError, match=r"migrate_cookie_sessions needs app\.secret_key"):
        app.test_client().get("/plain")


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_migrate_cookie_sessions_must_be_true_or_false(value):
    with pytest.raises(ValueError, match="migrate_cookie_sessions must be True or False"):
        SessionInterface(migrate_cookie_sessions=value)
