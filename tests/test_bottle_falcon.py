"""The functional API with the request objects of Bottle and Falcon, behind the middleware.

Bottle's request has ``.environ``, Falcon's (3 and 4) has ``.env``: both are taken
as they are, with no adapter.
"""

from __future__ import annotations

from typing import Any

import bottle
import falcon
import falcon.testing
import pytest
import webtest
from conftest import SECRET

from wsgi_session import (
    SessionError,
    SessionMiddleware,
    destroy_session,
    get_session,
    regenerate_session,
    update_session,
)


def count(request: Any) -> str:
    return str(update_session(request, lambda s: {"visits": s.get("visits", 0) + 1})["visits"])


def check(request: Any) -> str:
    """What the session functions say of this request: the frameworks turn errors into 500s."""
    try:
        get_session(request)
    except SessionError as exc:
        return str(exc)
    return "installed"


def falcon_app() -> falcon.App:
    class Count:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.text = count(req)

    class Check:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.text = check(req)

    class Show:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.media = dict(get_session(req) or {})

    class Login:
        def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
            regenerate_session(req)
            update_session(req, lambda s: {"user": "ada"})

    class Logout:
        def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
            destroy_session(req)

    app = falcon.App()
    for path, resource in [
        ("/", Count()),
        ("/check", Check()),
        ("/show", Show()),
        ("/login", Login()),
        ("/logout", Logout()),
    ]:
        app.add_route(path, resource)
    return app


def bottle_app() -> bottle.Bottle:
    app = bottle.Bottle()

    @app.get("/")
    def counter() -> str:
        return count(bottle.request)

    @app.get("/check")
    def check_route() -> str:
        return check(bottle.request)

    @app.get("/show")
    def show() -> dict[str, Any]:
        return dict(get_session(bottle.request) or {})

    @app.post("/login")
    def login() -> str:
        regenerate_session(bottle.request)
        update_session(bottle.request, lambda s: {"user": "ada"})
        return ""

    @app.post("/logout")
    def logout() -> str:
        destroy_session(bottle.request)
        return ""

    return app


APPS = {"falcon": falcon_app, "bottle": bottle_app}


@pytest.fixture(params=sorted(APPS))
def client(request: pytest.FixtureRequest, store: Any) -> webtest.TestApp:
    app = SessionMiddleware(APPS[request.param](), store=store, secret=SECRET)
    return webtest.TestApp(app, extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "example.com"})


def test_counter_login_and_logout_through_the_frameworks_request(client):
    assert client.get("/check").text == "installed"
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
    before = client.cookies["session"]
    client.post("/login")
    assert client.cookies["session"] != before
    assert client.get("/show").json == {"visits": 3, "user": "ada"}
    client.post("/logout")
    assert "session" not in client.cookies
    assert client.get("/show").json == {}


@pytest.mark.parametrize("name", sorted(APPS))
def test_without_the_middleware_the_error_says_it_is_not_installed(name):
    assert webtest.TestApp(APPS[name]()).get("/check").text.startswith("SessionMiddleware is not installed")


def test_a_falcon_request_made_by_falcons_testing_helpers_is_understood():
    request = falcon.testing.create_req()
    with pytest.raises(SessionError, match="SessionMiddleware is not installed"):
        get_session(request)


class NoEnviron:
    environ = "not a dict"


@pytest.mark.parametrize("thing", [None, 42, object(), NoEnviron()], ids=lambda thing: type(thing).__name__)
@pytest.mark.parametrize("function", [get_session, destroy_session, regenerate_session])
def test_something_that_is_no_request_is_a_type_error_naming_its_type(function, thing):
    with pytest.raises(TypeError, match=rf"\.environ or \.env dict, not {type(thing).__name__}$"):
        function(thing)


def test_update_session_on_something_that_is_no_request_is_a_type_error():
    with pytest.raises(TypeError, match="not int"):
        update_session(42, lambda s: {})
