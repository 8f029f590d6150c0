"""Sessions of a user with the frameworks' own login: Flask-Login and Pyramid's
SessionAuthenticationHelper, each with its own session key as ``user_key``."""

from __future__ import annotations

from typing import Any

import flask
import webtest
from conftest import SECRET
from flask_login import LoginManager, UserMixin, login_user, logout_user
from pyramid.authentication import SessionAuthenticationHelper
from pyramid.config import Configurator
from pyramid.security import forget, remember

from wsgi_session import (
    SessionMiddleware,
    create_memory_store,
    list_sessions,
    regenerate_session,
    revoke_session,
)
from wsgi_session.flask import SessionInterface
from wsgi_session.pyramid import session_factory


class User(UserMixin):  # type: ignore[misc]
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def flask_app(store: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = "flask-secret-key-for-flask-login"
    app.wsgi_app = SessionMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, store=store, secret=SECRET, user_key="_user_id"
    )
    app.session_interface = SessionInterface()
    LoginManager(app).user_loader(User)

    @app.post("/login/<name>")
    def login(name: str) -> str:
        regenerate_session(flask.request)
        login_user(User(name))
        return ""

    @app.post("/logout")
    def logout() -> str:
        logout_user()
        return ""

    @app.get("/sessions")
    def sessions() -> Any:
        return [info.__dict__ for info in list_sessions(flask.request)]

    @app.post("/revoke/<handle>")
    def revoke(handle: str) -> Any:
        return {"ended": revoke_session(flask.request, handle)}

    @app.get("/who")
    def who() -> Any:
        from flask_login import current_user

        return {"user": current_user.get_id() if current_user.is_authenticated else None}

    return app


def test_flask_login_users_list_and_revoke_their_sessions():
    store = create_memory_store()
    app = flask_app(store)
    laptop, phone = app.test_client(), app.test_client()
    laptop.post("/login/ada")
    phone.post("/login/ada")
    listed = laptop.get("/sessions").json
    assert sorted(s["current"] for s in listed) == [False, True]
    (other,) = [s for s in listed if not s["current"]]
    assert laptop.post(f"/revoke/{other['handle']}").json == {"ended": True}
    assert phone.get("/who").json == {"user": None}
    assert laptop.get("/who").json == {"user": "ada"}
    laptop.post("/logout")  # logout_user removes _user_id: the session leaves ada's sessions
    assert list_sessions(app.wsgi_app, user_id="ada") == []  # type: ignore[arg-type]


def pyramid_app(store: Any) -> SessionMiddleware:
    helper = SessionAuthenticationHelper()

    class Policy:
        def identity(self, request: Any) -> Any:
            return helper.authenticated_userid(request)

        def authenticated_userid(self, request: Any) -> Any:
            return helper.authenticated_userid(request)

        def permits(self, request: Any, context: Any, permission: Any) -> bool:
            return True

        def remember(self, request: Any, userid: Any, **kw: Any) -> Any:
            return helper.remember(request, userid, **kw)

        def forget(self, request: Any, **kw: Any) -> Any:
            return helper.forget(request, **kw)

    config = Configurator()
    config.set_session_factory(session_factory)
    config.set_security_policy(Policy())

    def login(request: Any) -> Any:
        regenerate_session(request)
        remember(request, request.matchdict["name"])
        return {}

    def logout(request: Any) -> Any:
        forget(request)
        return {}

    def sessions(request: Any) -> Any:
        return [info.__dict__ for info in list_sessions(request)]

    def who(request: Any) -> Any:
        return {"user": request.authenticated_userid}

    for name, pattern, view, method in (
        ("login", "/login/{name}", login, "POST"),
        ("logout", "/logout", logout, "POST"),
        ("sessions", "/sessions", sessions, "GET"),
        ("who", "/who", who, "GET"),
    ):
        config.add_route(name, pattern)
        config.add_view(view, route_name=name, request_method=method, renderer="json")
    # SessionAuthenticationHelper keeps the user ID under its prefix + "userid".
    return SessionMiddleware(config.make_wsgi_app(), store=store, secret=SECRET, user_key="auth.userid")


def test_pyramid_session_authentication_users_list_their_sessions():
    store = create_memory_store()
    app = pyramid_app(store)
    laptop, phone = (webtest.TestApp(app, extra_environ={"wsgi.url_scheme": "https"}) for _ in range(2))
    laptop.post("/login/ada")
    phone.post("/login/ada")
    assert sorted(s["current"] for s in laptop.get("/sessions").json) == [False, True]
    phone.post("/logout")  # forget() deletes auth.userid: the phone's session is ada's no more
    assert [s["current"] for s in laptop.get("/sessions").json] == [True]
    assert len(list_sessions(app, user_id="ada")) == 1
    assert phone.get("/who").json == {"user": None}
