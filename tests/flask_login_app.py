"""A Flask app with Flask-Login's remember-me behind the middleware, for the test client and gunicorn.

``/logout/<order>`` logs out with ``logout_user()`` and ``destroy_session(request)``
in the order named: ``natural`` (logout_user first) or ``destroy-first``;
``/logout-unprotected/<order>`` does the same in a view without ``login_required``.
"""

from __future__ import annotations

import os
from typing import Any

import flask
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user

from wsgi_session import SessionMiddleware, create_sqlite_store, destroy_session, regenerate_session
from wsgi_session.flask import SessionInterface

USERS = {"ada", "grace"}


class User(UserMixin):  # type: ignore[misc]
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def make_app(store: Any, secret: str, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    # Flask-Login signs its remember-me cookie with Flask's secret_key; the session
    # cookie is signed by the middleware with its own secret.
    app.secret_key = "flask-secret-key-for-the-remember-cookie"
    app.wsgi_app = SessionMiddleware(app.wsgi_app, store=store, secret=secret, **options)  # type: ignore[method-assign]
    app.session_interface = SessionInterface()
    login_manager = LoginManager(app)
    login_manager.user_loader(lambda user_id: User(user_id) if user_id in USERS else None)

    @app.post("/login")
    def login() -> str:
        regenerate_session(flask.request)
        login_user(User(flask.request.form["user"]), remember="remember" in flask.request.form)
        return "in"

    def log_out(order: str) -> str:
        if order == "natural":
            logout_user()
            destroy_session(flask.request)
        else:
            destroy_session(flask.request)
            logout_user()
        return "out"

    app.post("/logout/<order>", endpoint="logout")(login_required(log_out))
    # Without login_required, the user is first loaded when logout_user() asks for it:
    # from the remember-me cookie, and after the destroy in the destroy-first order.
    app.post("/logout-unprotected/<order>", endpoint="logout-unprotected")(log_out)

    @app.get("/whoami")
    def whoami() -> str:
        return str(current_user.get_id() or "anonymous")

    @app.get("/members")
    @login_required
    def members() -> str:
        return f"members only, {current_user.get_id()}"

    @app.get("/show")
    def show() -> Any:
        return dict(flask.session)

    @app.get("/plain")
    def plain() -> str:
        return "plain"

    return app


def from_environment() -> flask.Flask:
    """The app gunicorn serves: sessions in the SQLite file WSGI_SESSION_TEST_DB.

    Its cookie is not ``Secure``, as a test over plain HTTP needs: Python's cookie
    jars (requests, urllib) never send a ``Secure`` cookie over ``http://``.
    """
    store = create_sqlite_store(os.environ["WSGI_SESSION_TEST_DB"])
    return make_app(store, os.environ["WSGI_SESSION_TEST_SECRET"], cookie={"secure": False})
