"""Flask-WTF's CSRFProtect on flask.session: its token lives in the server session."""

from __future__ import annotations

import re
from typing import Any

import flask
import pytest
from conftest import SECRET
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from wtforms import StringField

from wsgi_session import SessionMiddleware, destroy_session, get_session, regenerate_session
from wsgi_session.flask import SessionInterface

PAGE = '<form method="post">{{ form.csrf_token }}{{ form.name }}</form>'


class NameForm(FlaskForm):  # type: ignore[misc]
    name = StringField("name")


def make_app(store: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    # Flask-WTF signs the token it puts in forms with Flask's secret_key; the raw
    # token it checks against is kept in the session.
    app.secret_key = "flask-secret-key-for-the-csrf-token"
    app.wsgi_app = SessionMiddleware(app.wsgi_app, store=store, secret=SECRET)  # type: ignore[method-assign]
    app.session_interface = SessionInterface()
    CSRFProtect(app)

    @app.route("/form", methods=["GET", "POST"])
    def form() -> str:
        named = NameForm()
        if named.validate_on_submit():
            return f"hello {named.name.data}"
        return flask.render_template_string(PAGE, form=named)

    @app.post("/transfer")
    def transfer() -> str:
        return "transferred"

    @app.post("/login")
    def login() -> Any:
        regenerate_session(flask.request)
        flask.session["user"] = "victim"
        return flask.redirect("/form", 303)

    @app.post("/logout")
    def logout() -> str:
        destroy_session(flask.request)
        return "out"

    @app.get("/raw")
    def raw() -> Any:
        return dict(get_session(flask.request) or {})

    return app


@pytest.fixture
def client(store: Any) -> Any:
    return make_app(store).test_client()


def token_of(page: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match is not None, page
    return match.group(1)


def test_a_form_posts_with_its_token_and_is_refused_without(client):
    token = token_of(client.get("/form").text)
    assert client.get("/raw").json.keys() == {"csrf_token"}  # the raw token, in the server session
    assert client.post("/form", data={"name": "ada", "csrf_token": token}).text == "hello ada"
    assert client.post("/form", data={"name": "ada"}).status_code == 400
    assert client.post("/transfer").status_code == 400
    assert client.post("/transfer", data={"csrf_token": "forged"}).status_code == 400
    assert client.post("/transfer", data={"csrf_token": token}).text == "transferred"
    assert client.post("/transfer", headers={"X-CSRFToken": token}).text == "transferred"


def test_the_token_of_one_request_is_valid_in_the_next_pages_too(client):
    first = token_of(client.get("/form").text)
    second = token_of(client.get("/form").text)
    for token in (first, second):
        assert client.post("/transfer", data={"csrf_token": token}).text == "transferred"


def test_after_a_logout_the_old_token_is_refused(client):
    token = token_of(client.get("/form").text)
    client.post("/logout", data={"csrf_token": token})
    assert client.post("/transfer", data={"csrf_token": token}).status_code == 400


def test_another_sessions_token_is_refused(store):
    app = make_app(store)
    mine, theirs = app.test_client(), app.test_client()
    token_of(mine.get("/form").text)
    their_token = token_of(theirs.get("/form").text)
    assert mine.post("/transfer", data={"csrf_token": their_token}).status_code == 400


def test_c19_a_token_from_before_the_login_is_refused_after_it(store):
    """C19: the attacker's token, from the session planted in the victim's browser."""
    app = make_app(store)
    victim = app.test_client()
    planted = token_of(victim.get("/form").text)  # the attacker read it in their own session
    victim.post("/login", data={"csrf_token": planted})
    assert victim.post("/transfer", data={"csrf_token": planted}).status_code == 400
    fresh = token_of(victim.get("/form").text)
    assert fresh != planted
    assert victim.post("/transfer", data={"csrf_token": fresh}).text == "transferred"
    assert victim.get("/raw").json["user"] == "victim"


def test_c19_a_token_key_configured_otherwise_is_renewed_too(store):
    app = flask.Flask(__name__)
    app.config["WTF_CSRF_FIELD_NAME"] = "xsrf"
    app.wsgi_app = SessionMiddleware(app.wsgi_app, store=store, secret=SECRET)  # type: ignore[method-assign]
    app.session_interface = SessionInterface()

    @app.post("/token")
    def token() -> str:
        flask.session["xsrf"] = "planted"
        return ""

    @app.post("/login")
    def login() -> Any:
        regenerate_session(flask.request)
        return dict(flask.session)

    client = app.test_client()
    client.post("/token")
    assert client.post("/login").json == {}
