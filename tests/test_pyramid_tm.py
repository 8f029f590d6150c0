"""request.session in a Pyramid app run by pyramid_tm, with SessionCSRFStoragePolicy.

pyramid_tm wraps every request in a transaction; the session is not part of it
and behaves as Pyramid's own session does.
"""

from __future__ import annotations

from typing import Any

import pytest
import webtest
from conftest import SECRET
from pyramid.config import Configurator
from pyramid.csrf import SessionCSRFStoragePolicy, get_csrf_token, new_csrf_token
from pyramid.httpexceptions import HTTPSeeOther

from wsgi_session import SessionMiddleware, regenerate_session
from wsgi_session.pyramid import session_factory


class Seen:
    """Joins the request's transaction, to tell whether it was committed or aborted."""

    def __init__(self) -> None:
        self.outcomes: list[str] = []

    def join(self, request: Any) -> None:
        request.tm.get().addAfterCommitHook(
            lambda committed: self.outcomes.append("committed" if committed else "failed")
        )
        request.tm.get().addAfterAbortHook(lambda: self.outcomes.append("aborted"))


def make_app(store: Any, seen: Seen) -> SessionMiddleware:
    config = Configurator(settings={"tm.manager_hook": "pyramid_tm.explicit_manager"})
    config.include("pyramid_tm")
    config.set_session_factory(session_factory)
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True)

    def route(name: str, view: Any, method: str = "GET") -> None:
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name, request_method=method, renderer="json")

    def form(request: Any) -> Any:
        seen.join(request)
        return {
            "token": get_csrf_token(request),
            "user": request.session.get("user"),
            "keys": sorted(request.session),
        }

    def login(request: Any) -> Any:
        seen.join(request)
        regenerate_session(request)
        new_csrf_token(request)
        request.session["user"] = request.POST["user"]
        request.session.flash("welcome")
        return HTTPSeeOther("/form")

    def fail(request: Any) -> Any:
        seen.join(request)
        request.session["before_failure"] = True
        raise RuntimeError("the view failed")

    def messages(request: Any) -> Any:
        return request.session.pop_flash()

    route("form", form)
    route("login", login, "POST")
    route("fail", fail, "POST")
    route("messages", messages)

    def failed(exc: Exception, request: Any) -> Any:
        request.response.status = 500
        return str(exc)

    config.add_exception_view(failed, RuntimeError, renderer="json")
    return SessionMiddleware(config.make_wsgi_app(), store=store, secret=SECRET)


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def client(store: Any, seen: Seen) -> webtest.TestApp:
    environ = {"wsgi.url_scheme": "https", "HTTP_HOST": "example.com", "HTTP_ORIGIN": "https://example.com"}
    return webtest.TestApp(make_app(store, seen), extra_environ=environ)


def test_login_with_the_csrf_token_under_pyramid_tm(client, seen):
    page = client.get("/form").json
    assert page["user"] is None
    client.post("/login", {"user": "ada"}, status=400)  # no token
    anonymous = client.cookies["session"]
    client.post("/login", {"user": "ada", "csrf_token": page["token"]}, status=303)
    assert client.cookies["session"] != anonymous
    after = client.get("/form").json
    assert after["user"] == "ada" and after["token"] != page["token"]  # a new token at login
    assert client.get("/messages").json == ["welcome"]
    client.post("/login", {"user": "eve", "csrf_token": page["token"]}, status=400)  # the old token
    assert seen.outcomes == ["committed", "committed", "committed"]


def test_a_failed_view_aborts_its_transaction_and_keeps_its_session_writes_as_pyramid_does(client, seen):
    token = client.get("/form").json["token"]
    response = client.post("/fail", {"csrf_token": token}, status=500)
    assert response.json == "the view failed"
    assert seen.outcomes == ["committed", "aborted"]
    # The session is no part of the transaction: the write before the failure is kept,
    # as with Pyramid's own session, which its exception view's response saves too.
    assert client.get("/form").json["keys"] == ["_csrft_", "before_failure"]


@pytest.mark.parametrize("require_csrf", [True, False])
def test_c19_a_login_gives_a_new_csrf_token_without_asking_for_one(store, require_csrf):
    """C19: a login view that only regenerates: the token planted before it stops working."""
    config = Configurator()
    config.set_session_factory(session_factory)
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=require_csrf)

    def token(request: Any) -> Any:
        return {"token": get_csrf_token(request)}

    def login(request: Any) -> Any:
        regenerate_session(request)
        request.session["user"] = "victim"
        return {}

    for name, view, method in (("token", token, "GET"), ("login", login, "POST")):
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name, request_method=method, renderer="json")
    app = SessionMiddleware(config.make_wsgi_app(), store=store, secret=SECRET)
    victim = webtest.TestApp(
        app, extra_environ={"wsgi.url_scheme": "https", "HTTP_ORIGIN": "https://localhost"}
    )
    planted = victim.get("/token").json["token"]
    victim.post("/login", {"csrf_token": planted})
    assert victim.get("/token").json["token"] != planted
