"""Every code example of the documentation, run as a user would run it.

Each ``.. code-block:: python`` in ``docs/*.rst`` carries a ``:name:``, and a runner
here, registered under that name with :func:`runs`, executes the block's text as it
stands in the page and checks what the page says it does: requests through the
middleware, against real Redis and PostgreSQL servers where the block needs one. A
few shell blocks (the stores' own command-line tools) are named and run too. A
python block without a name or without a runner fails, and so does a runner whose
block is gone: no example can rot unseen.

A runner may give a block the names the page says it assumes (``app`` the app to
wrap, ``store``, ``secret``, ``request`` in a view, ``item_id``), and may put a
test server's address where the page shows a production one (:func:`replaced`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import types
import warnings
from pathlib import Path
from typing import Any, Callable, NamedTuple
from wsgiref.simple_server import WSGIRequestHandler, make_server

import flask
import pytest
import requests
import webtest
from conftest import SECRET, counter_app
from redis_servers import RedisServer, require_redis, start_replicas, start_sentinel, stop_all

import wsgi_session
from wsgi_session import (
    SessionMiddleware,
    create_memory_store,
    get_session,
    list_sessions,
    regenerate_session,
    unsign_cookie,
    update_session,
)
from wsgi_session.events import short_hash
from wsgi_session.flask import FLASK_COOKIE_SESSIONS, SessionInterface
from wsgi_session.record import decode_record
from wsgi_session.session_cookie import InsecureCookieWarning
from wsgi_session.signing import new_session_id

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HTTPS = {"wsgi.url_scheme": "https", "HTTP_HOST": "example.com"}


class Block(NamedTuple):
    page: str
    name: str | None
    language: str
    code: str


_DIRECTIVE = re.compile(r"^(?P<indent> *)\.\. code-block:: (?P<language>\S+)\n", re.M)


def code_blocks() -> list[Block]:
    """Every ``code-block`` of the docs' pages, with its ``:name:`` and its text dedented."""
    found = []
    for page in sorted(DOCS.glob("*.rst")):
        text = page.read_text(encoding="utf-8")
        for match in _DIRECTIVE.finditer(text):
            indent = len(match["indent"])
            lines = text[match.end() :].split("\n")
            name, position = None, 0
            while position < len(lines) and lines[position].strip().startswith(":"):
                option = re.fullmatch(r"\s*:name:\s*(\S+)\s*", lines[position])
                name = option[1] if option else name
                position += 1
            body: list[str] = []
            for line in lines[position:]:
                if line.strip() and len(line) - len(line.lstrip()) <= indent:
                    break
                body.append(line)
            content = [line for line in body if line.strip()]
            margin = min(len(line) - len(line.lstrip()) for line in content)
            code = "\n".join(line[margin:] for line in body).strip("\n") + "\n"
            found.append(Block(page.name, name, match["language"], code))
    return found


BLOCKS = code_blocks()
NAMED = {block.name: block for block in BLOCKS if block.name}
RUNNERS: dict[str, Callable[[str, pytest.FixtureRequest], None]] = {}


def runs(name: str) -> Callable[[Callable[[str, pytest.FixtureRequest], None]], Any]:
    """Register the runner of the block ``name``."""

    def register(runner: Callable[[str, pytest.FixtureRequest], None]) -> Any:
        assert name not in RUNNERS, name
        RUNNERS[name] = runner
        return runner

    return register


# -- the collector's own checks ---------------------------------------------------------


def test_every_python_example_has_a_name():
    unnamed = [f"{b.page}: {b.code.splitlines()[0]}" for b in BLOCKS if b.language == "python" and not b.name]
    assert unnamed == []


def test_every_named_example_has_a_runner_and_every_runner_an_example():
    named = {block.name for block in BLOCKS if block.name and block.language == "python"}
    assert sorted(named - set(RUNNERS)) == []
    assert sorted(set(RUNNERS) - set(NAMED)) == []


def test_names_are_unique():
    names = [block.name for block in BLOCKS if block.name]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", wsgi_session.__all__)
def test_the_api_reference_documents_every_public_name(name):
    page = (DOCS / "api.rst").read_text(encoding="utf-8")
    assert re.search(rf"^\.\. auto\w+:: {re.escape(name)}$", page, re.M), name


@pytest.mark.parametrize("name", sorted(NAMED))
def test_example(name: str, request: pytest.FixtureRequest) -> None:
    assert name in RUNNERS, f"no runner for the example {name!r}"
    RUNNERS[name](NAMED[name].code, request)


# -- helpers ----------------------------------------------------------------------------


def run(code: str, **names: Any) -> dict[str, Any]:
    """Execute ``code`` as the module ``docs_example`` would, with ``names`` defined; its namespace.

    The module is in ``sys.modules``, where Pyramid's ``Configurator`` looks for its caller.
    """
    module = types.ModuleType("docs_example")
    module.__dict__.update(names)
    sys.modules[module.__name__] = module
    exec(compile(code, "<docs example>", "exec"), module.__dict__)
    return module.__dict__


def replaced(code: str, *substitutions: tuple[str, str]) -> str:
    """``code`` with each (old, new) substituted; each old must be there."""
    for old, new in substitutions:
        assert old in code, f"the example no longer shows {old!r}"
        code = code.replace(old, new)
    return code


def client(app: Any, **environ: Any) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={**HTTPS, **environ})


def secret_env(request: pytest.FixtureRequest) -> pytest.MonkeyPatch:
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    return monkeypatch


def counts(app: Any, times: int = 2) -> None:
    """``app`` wraps the counter: each request of one client counts one more."""
    browser = client(app)
    assert [browser.get("/").text for _ in range(times)] == [str(n) for n in range(1, times + 1)]


def in_request(code: str, prior: dict[str, Any] | None = None, **names: Any) -> tuple[dict[str, Any], Any]:
    """Run ``code`` in a view, in a request of a session holding ``prior``.

    ``request`` and ``environ`` are the request's environ, and every public name of
    ``wsgi_session`` is defined, as the API page assumes. Returns the namespace and
    the session as stored afterwards.
    """
    store = create_memory_store()
    namespace: dict[str, Any] = {}

    def view(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/prior":
            update_session(environ, lambda s: prior)
        else:
            names_ = {name: getattr(wsgi_session, name) for name in wsgi_session.__all__}
            namespace.update(run(code, **names_, **names, request=environ, environ=environ))
        start_response("200 OK", [])
        return [b""]

    browser = client(SessionMiddleware(view, store=store, secret=SECRET))
    if prior is not None:
        browser.get("/prior")
    browser.get("/")
    session_id = unsign_cookie(browser.cookies["session"], SECRET)
    assert session_id is not None
    record = decode_record(store.get(session_id).payload)
    assert isinstance(record, tuple)
    return namespace, record[1]


class Interloper:
    """A memory store whose next ``get``, once armed, lets another request write first.

    The other request runs whole between the read and the write-back of the request
    under test: a race made to happen, in one thread.
    """

    def __init__(self) -> None:
        self.store = create_memory_store()
        self.interloper: Callable[[], None] | None = None

    def get(self, session_id: str) -> Any:
        stored = self.store.get(session_id)
        interloper, self.interloper = self.interloper, None
        if interloper is not None:
            interloper()
        return stored

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def raced(code_app: Callable[..., Any], racer: Callable[..., Any]) -> tuple[str, int]:
    """A session at visits=1; one request of ``code_app`` raced by one of ``racer``.

    Returns the raced request's body and the visits stored afterwards.
    """
    store = Interloper()
    paths = {"/racer": racer}

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return paths.get(environ["PATH_INFO"], code_app)(environ, start_response)

    browser = client(SessionMiddleware(dispatch, store=store, secret=SECRET))
    browser.get("/racer")
    store.interloper = lambda: browser.get("/racer")
    body = browser.get("/").text
    session_id = unsign_cookie(browser.cookies["session"], SECRET)
    record = decode_record(store.store.get(session_id).payload)
    assert isinstance(record, tuple)
    return body, record[1]["visits"]


def visit(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})
    start_response("200 OK", [])
    return [b""]


# -- quick start ------------------------------------------------------------------------


@runs("quickstart-counter")
def _(code, request):
    request.getfixturevalue("monkeypatch").chdir(request.getfixturevalue("tmp_path"))
    browser = client(run(code)["app"])
    assert [browser.get("/").text for _ in range(3)] == ["visits: 1\n", "visits: 2\n", "visits: 3\n"]


@runs("quickstart-login")
def _(code, request):
    secret_env(request).chdir(request.getfixturevalue("tmp_path"))
    browser = client(run(code)["app"])
    assert browser.get("/").text == "user: None\n"
    anonymous = browser.cookies.get("session")
    assert browser.post("/login", {"user": "ada"}).text == "welcome, ada\n"
    assert browser.cookies["session"] != anonymous
    assert browser.get("/").text == "user: ada\n"
    assert browser.post("/logout").text == "logged out\n"
    assert "session" not in browser.cookies
    assert browser.get("/").text == "user: None\n"


# -- configuration ----------------------------------------------------------------------


@runs("configuration-example")
def _(code, request):
    secret_env(request)
    code = replaced(code, ("/var/lib/myapp", str(request.getfixturevalue("tmp_path"))))
    response = client(run(code, app=counter_app)["app"]).get("/")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=s:")
    assert "Max-Age=28800" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie


@runs("configuration-rotation")
def _(code, request):
    monkeypatch = request.getfixturevalue("monkeypatch")
    old, new = "the-old-secret-that-is-long-enough-0123", "the-new-secret-that-is-long-enough-4567"
    monkeypatch.setenv("OLD_SECRET", old)
    monkeypatch.setenv("NEW_SECRET", new)
    store = create_memory_store()
    browser = client(SessionMiddleware(counter_app, store=store, secret=old))
    assert browser.get("/").text == "1"
    rotated = client(
        run(code, app=counter_app, store=store, os=os, SessionMiddleware=SessionMiddleware)["app"]
    )
    rotated.set_cookie("session", browser.cookies["session"])
    response = rotated.get("/")
    assert response.text == "2"  # the old secret's cookie still works...
    resent = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert unsign_cookie(resent, new) is not None  # ...and comes back signed with the new one


@runs("configuration-generate")
def _(code, request):
    store = create_memory_store()
    app = run(code, app=counter_app, store=store, secret=SECRET, SessionMiddleware=SessionMiddleware)["app"]
    response = client(app).get("/read")
    assert response.text == "{'cart': []}"
    assert "Set-Cookie" not in response.headers and len(store) == 0


# -- stores -----------------------------------------------------------------------------


@runs("stores-memory")
def _(code, request):
    store = run(code)["store"]
    assert store.max_entries == 10_000
    counts(SessionMiddleware(counter_app, store=store, secret=SECRET))


@runs("stores-sqlite")
def _(code, request):
    directory = request.getfixturevalue("tmp_path")
    store = run(replaced(code, ("/var/lib/myapp", str(directory))))["store"]
    counts(SessionMiddleware(counter_app, store=store, secret=SECRET))
    assert (directory / "sessions.sqlite3").exists()


@runs("stores-redis")
def _(code, request):
    redis_client = request.getfixturevalue("redis_client")
    secret_env(request).setenv("REDIS_URL", request.getfixturevalue("redis_server").url)
    counts(run(code, app=counter_app)["app"])
    (key,) = redis_client.keys("session:*")
    assert 0 < redis_client.ttl(key) <= 86400


@runs("stores-redis-cluster")
def _(code, request):
    node = request.getfixturevalue("redis_cluster")[0]
    code = replaced(code, ('"redis-cluster.internal"', '"127.0.0.1"'), ("port=6379", f"port={node.port}"))
    store = run(code)["store"]
    counts(SessionMiddleware(counter_app, store=store, secret=SECRET), times=3)


@runs("stores-redis-sentinel")
def _(code, request):
    # The recipe's master has a replica, as in production: writes wait for it.
    require_redis()
    base = request.getfixturevalue("tmp_path")
    master = RedisServer(base / "master")
    master.start()
    servers = [master]
    try:
        servers += start_replicas(base, master, 1)
        sentinel = start_sentinel(base / "sentinel", master, replicas=1)
        servers.append(sentinel)
        code = replaced(
            code, ('[("sentinel-1", 26379), ("sentinel-2", 26379)]', f'[("127.0.0.1", {sentinel.port})]')
        )
        store = run(code)["store"]
        assert store.min_replicas == 1
        counts(SessionMiddleware(counter_app, store=store, secret=SECRET))
        with servers[1].client() as replica:
            assert len(replica.keys("session:*")) == 1  # the write was on the replica when answered
        store.client.connection_pool.disconnect()
    finally:
        stop_all(servers)


@runs("stores-redis-client")
def _(code, request):
    redis_client = request.getfixturevalue("redis_client")
    secret_env(request).setenv("REDIS_URL", request.getfixturevalue("redis_server").url)
    counts(SessionMiddleware(counter_app, store=run(code)["store"], secret=SECRET))
    assert [key.startswith(b"myapp:session:") for key in redis_client.keys("*")] == [True]


@runs("stores-postgres")
def _(code, request):
    secret_env(request).setenv("DATABASE_URL", request.getfixturevalue("postgres_url"))
    app = run(code, app=counter_app)["app"]
    request.getfixturevalue("close_after")(app.settings.store)
    counts(app)
    server = request.getfixturevalue("postgres_server")
    assert server.execute("SELECT count(*) FROM wsgi_session") == [(1,)]


@runs("stores-postgres-pool")
def _(code, request):
    secret_env(request).setenv("DATABASE_URL", request.getfixturevalue("postgres_url"))
    namespace = run(code)
    try:
        counts(SessionMiddleware(counter_app, store=namespace["store"], secret=SECRET))
    finally:
        namespace["pool"].close()


@runs("stores-url")
def _(code, request):
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.chdir(request.getfixturevalue("tmp_path"))
    monkeypatch.delenv("SESSION_STORE_URL", raising=False)
    assert type(run(code)["store"]).__name__ == "SQLiteStore"
    monkeypatch.setenv("SESSION_STORE_URL", "memory://")
    assert type(run(code)["store"]).__name__ == "MemoryStore"


@runs("stores-dict-store")
def _(code, request):
    store = run(code)["DictStore"]()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] != "/logout":
            return counter_app(environ, start_response)
        wsgi_session.destroy_session(environ)
        start_response("200 OK", [])
        return [b""]

    middleware = SessionMiddleware(app, store=store, secret=SECRET)
    browser = client(middleware)
    assert [browser.get("/").text for _ in range(3)] == ["1", "2", "3"]
    cookie = browser.cookies["session"]

    def race() -> None:  # compare_and_set must keep every concurrent update
        for _ in range(50):
            environ = {"PATH_INFO": "/", "HTTP_COOKIE": f"session={cookie}", **HTTPS}
            b"".join(middleware(environ, lambda status, headers, exc_info=None: None))

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert browser.get("/").text == str(3 + 4 * 50 + 1)
    browser.get("/logout")
    assert store._records == {}


# -- deploying --------------------------------------------------------------------------


def where(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Counts, and says what scheme and address the app saw."""
    update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})
    start_response("200 OK", [])
    return [f"{environ['wsgi.url_scheme']} {environ['REMOTE_ADDR']}".encode()]


BEHIND_A_PROXY = {
    "wsgi.url_scheme": "http",
    "REMOTE_ADDR": "10.0.0.2",  # the proxy
    "HTTP_X_FORWARDED_FOR": "203.0.113.9",
    "HTTP_X_FORWARDED_PROTO": "https",
}


@runs("deploying-proxyfix")
def _(code, request):
    app = run(code, app=where, store=create_memory_store(), secret=SECRET)["app"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", InsecureCookieWarning)
        response = webtest.TestApp(app).get("/", extra_environ={**BEHIND_A_PROXY, "HTTP_HOST": "example.com"})
    assert response.text == "https 203.0.113.9"
    assert "Secure" in response.headers["Set-Cookie"]


@runs("deploying-proxyfix-flask")
def _(code, request):
    namespace = run(code, store=create_memory_store(), secret=SECRET)
    app = namespace["app"]

    @app.get("/")
    def where_flask() -> str:
        flask.session["visits"] = flask.session.get("visits", 0) + 1
        return f"{flask.request.scheme} {flask.request.remote_addr}"

    with warnings.catch_warnings():
        warnings.simplefilter("error", InsecureCookieWarning)
        response = webtest.TestApp(namespace["application"]).get(
            "/", extra_environ={**BEHIND_A_PROXY, "HTTP_HOST": "example.com"}
        )
    assert response.text == "https 203.0.113.9"
    test_client = app.test_client()  # the test client finds the middleware at app.wsgi_app
    with test_client.session_transaction() as session:
        session["visits"] = 41
    assert test_client.get("/").status_code == 200
    with test_client.session_transaction() as session:
        assert session["visits"] == 42


# -- Flask ------------------------------------------------------------------------------


@runs("flask-app")
def _(code, request):
    secret_env(request)
    browser = run(code)["app"].test_client()
    assert browser.get("/").text == "visits: 1, user: None\n"
    assert browser.post("/login", data={"user": "ada"}).status_code == 303
    assert browser.get("/").text == "Welcome, ada.\nvisits: 2, user: ada\n"
    assert browser.get("/members").text == "members only, ada\n"
    assert browser.post("/logout").status_code == 303
    assert browser.get("/members").status_code == 401


def flask_app(store: Any = None) -> flask.Flask:
    app = flask.Flask("docs_flask")
    app.wsgi_app = SessionMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, store=create_memory_store() if store is None else store, secret=SECRET
    )
    app.session_interface = SessionInterface()
    return app


@runs("flask-update-session")
def _(code, request):
    app = flask_app()

    @app.get("/")
    def view() -> str:
        return str(run(code, request=flask.request)["visits"])

    browser = app.test_client()
    assert [browser.get("/").text for _ in range(3)] == ["1", "2", "3"]


@runs("flask-in-place")
def _(code, request):
    app = flask_app()

    @app.get("/start")
    def start() -> str:
        flask.session["cart"] = []
        return ""

    @app.get("/add/<int:item_id>")
    def add(item_id: int) -> str:
        run(code, session=flask.session, item_id=item_id)
        return ""

    @app.get("/cart")
    def cart() -> str:
        return json.dumps(flask.session["cart"])

    browser = app.test_client()
    browser.get("/start")
    browser.get("/add/7")
    browser.get("/add/9")
    assert browser.get("/cart").text == "[7, 9]"


@runs("flask-login-logout")
def _(code, request):
    import flask_login

    store = create_memory_store()
    app = flask_app(store)
    app.secret_key = "flask-key-for-the-remember-cookie-0123456789"
    manager = flask_login.LoginManager(app)

    class User(flask_login.UserMixin):
        def __init__(self, name: str) -> None:
            self.id = name

    manager.user_loader(User)

    @app.post("/login")
    def login() -> str:
        regenerate_session(flask.request)
        flask_login.login_user(User("ada"), remember=True)
        return ""

    @app.get("/whoami")
    def whoami() -> str:
        user = flask_login.current_user
        return user.id if user.is_authenticated else "anonymous"

    run(
        code,
        app=app,
        login_required=flask_login.login_required,
        logout_user=flask_login.logout_user,
        destroy_session=wsgi_session.destroy_session,
        request=flask.request,
        redirect=flask.redirect,
    )
    browser = app.test_client()
    browser.post("/login")
    assert browser.get_cookie("remember_token") is not None
    assert browser.get("/whoami").text == "ada"
    assert browser.post("/logout").status_code == 303
    assert browser.get_cookie("remember_token") is None and browser.get_cookie("session") is None
    assert browser.get("/whoami").text == "anonymous"
    assert len(store) == 0


@runs("flask-migrate")
def _(code, request):
    flask_key = "the-key-flask-signed-its-cookies-with-0123"
    request.getfixturevalue("monkeypatch").setenv("FLASK_SECRET_KEY", flask_key)
    store = create_memory_store()
    app = flask_app(store)

    @app.get("/")
    def who() -> str:
        return str(flask.session.get("user"))

    run(code, app=app, os=os, SessionInterface=SessionInterface)
    flask_cookie = FLASK_COOKIE_SESSIONS.get_signing_serializer(app).dumps({"user": "ada"})
    browser = app.test_client()
    browser.set_cookie("session", flask_cookie)
    assert browser.get("/").text == "ada"  # imported from Flask's cookie
    assert unsign_cookie(browser.get_cookie("session").value, SECRET) is not None
    assert browser.get("/").text == "ada"  # now from the store
    assert len(store) == 1


@runs("flask-session-transaction")
def _(code, request):
    secret_env(request)
    namespace = run(NAMED["flask-app"].code)
    run(code, app=namespace["app"])  # its assert is the check


# -- Pyramid ----------------------------------------------------------------------------

PYRAMID_ENVIRON = {"HTTP_ORIGIN": "https://example.com"}


def csrf_token(browser: webtest.TestApp) -> str:
    return browser.get("/").text.split("csrf_token: ")[1].strip()


@runs("pyramid-app")
def _(code, request):
    secret_env(request)
    browser = client(run(code)["app"], **PYRAMID_ENVIRON)
    assert browser.get("/").text.startswith("visits: 1, user: None\n")
    browser.post("/login", {"user": "ada", "csrf_token": csrf_token(browser)}, status=303)
    page = browser.get("/").text
    assert page.startswith("Welcome, ada.\nvisits: 3, user: ada\n"), page
    assert browser.get("/members").text == "members only, ada\n"
    browser.post("/login", {"user": "eve"}, status=400)  # no token: Pyramid refuses it
    browser.post("/logout", {"csrf_token": csrf_token(browser)}, status=303)
    browser.get("/members", status=401)


@runs("pyramid-in-place")
def _(code, request):
    from pyramid.config import Configurator
    from pyramid.response import Response

    import wsgi_session.pyramid

    def start(request: Any) -> Any:
        request.session["cart"] = []
        return Response("")

    def add(request: Any) -> Any:
        run(code, request=request, item_id=int(request.params["item"]))
        return Response("")

    def cart(request: Any) -> Any:
        return Response(json.dumps(request.session["cart"]))

    config = Configurator()
    config.set_session_factory(wsgi_session.pyramid.session_factory)
    for path, view in [("/start", start), ("/add", add), ("/cart", cart)]:
        config.add_route(path, path)
        config.add_view(view, route_name=path)
    browser = client(SessionMiddleware(config.make_wsgi_app(), store=create_memory_store(), secret=SECRET))
    browser.get("/start")
    browser.get("/add?item=7")
    browser.get("/add?item=9")
    assert browser.get("/cart").text == "[7, 9]"


# -- other frameworks -------------------------------------------------------------------


@runs("frameworks-wsgi")
def _(code, request):
    browser = client(run(code, store=create_memory_store(), secret=SECRET)["app"])
    assert browser.get("/").text == "cart: empty\n"
    assert browser.get("/add").text == "cart: apple\n"
    assert browser.get("/add").text == "cart: apple, apple\n"
    assert browser.get("/").text == "cart: apple, apple\n"


@runs("frameworks-bottle")
def _(code, request):
    browser = client(run(code, store=create_memory_store(), secret=SECRET)["app"])
    assert [browser.get("/").text for _ in range(2)] == ["visits: 1\n", "visits: 2\n"]
    before = browser.cookies["session"]
    assert browser.post("/login", {"user": "ada"}).text == "welcome\n"
    assert browser.cookies["session"] != before
    assert browser.get("/").text == "visits: 3\n"
    assert browser.post("/logout").text == "bye\n"
    assert "session" not in browser.cookies


@runs("frameworks-falcon")
def _(code, request):
    browser = client(run(code, store=create_memory_store(), secret=SECRET)["app"])
    assert [browser.get("/").text for _ in range(2)] == ["visits: 1\n", "visits: 2\n"]
    before = browser.cookies["session"]
    assert browser.post_json("/login", {"user": "ada"}).json == {"user": "ada"}
    assert browser.cookies["session"] != before
    assert browser.get("/").text == "visits: 3\n"
    browser.post("/logout", status=204)
    assert "session" not in browser.cookies


# -- testing your app -------------------------------------------------------------------


@runs("testing-webtest")
def _(code, request):
    request.getfixturevalue("monkeypatch").chdir(request.getfixturevalue("tmp_path"))
    app = run(NAMED["quickstart-counter"].code)["app"]
    run(code, app=app)["test_the_counter_counts"]()
    # Without the https of the example, WebTest keeps no Secure cookie: the counter stays at 1.
    plain = webtest.TestApp(run(NAMED["quickstart-counter"].code)["app"])
    assert [plain.get("/").text for _ in range(2)] == ["visits: 1\n", "visits: 1\n"]


@runs("testing-webtest-pyramid")
def _(code, request):
    secret_env(request)
    app = run(NAMED["pyramid-app"].code)["app"]
    run(code, app=app)["test_login"]()


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def served_visits(app: Any) -> list[str]:
    """Two visits through ``requests`` to ``app`` served on ``http://127.0.0.1``."""
    server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        browser = requests.Session()
        url = f"http://127.0.0.1:{server.server_port}/"
        return [browser.get(url, timeout=30).text for _ in range(2)]
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@runs("testing-insecure-cookie")
def _(code, request):
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("APP_TESTING", "1")
    app = run(code, app=counter_app, store=create_memory_store(), secret=SECRET)["app"]
    assert served_visits(app) == ["1", "2"]
    monkeypatch.delenv("APP_TESTING")  # production: Secure, which requests keeps off plain HTTP
    app = run(code, app=counter_app, store=create_memory_store(), secret=SECRET)["app"]
    assert served_visits(app) == ["1", "1"]


# -- concurrency ------------------------------------------------------------------------


@runs("concurrency-pure")
def _(code, request):
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        run(code, environ=environ, update_session=update_session)
        start_response("200 OK", [])
        return [b""]

    _body, visits = raced(app, visit)
    assert visits == 3  # 1, then the racer's visit and this one: both count


@runs("concurrency-stale")
def _(code, request):
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        run(code, environ=environ, get_session=get_session, update_session=update_session)
        start_response("200 OK", [])
        return [b""]

    _body, visits = raced(app, visit)
    assert visits == 2  # the racer's visit is lost, as the page says


@runs("concurrency-cart")
def _(code, request):
    _namespace, data = in_request(code, prior={"cart": [1]}, item_id=2)
    assert data == {"cart": [1, 2]}


@runs("concurrency-streamed")
def _(code, request):
    app = run(code, update_session=update_session, get_session=get_session)["app"]
    body, visits = raced(app, visit)
    assert body == "visits: 3\n" and visits == 3


# -- sessions of a user -----------------------------------------------------------------


def users_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """``/login?user=`` logs in with a new ID; anything else counts."""
    if environ["PATH_INFO"] == "/login":
        user: Any = environ["QUERY_STRING"].split("=", 1)[1]
        user = int(user) if user.isdigit() else user
        regenerate_session(environ)
        update_session(environ, lambda s: {"user_id": user})
    return counter_app(environ, start_response)


def logged_in(app: Any, user: str, agent: str) -> webtest.TestApp:
    browser = client(app, HTTP_USER_AGENT=agent)
    browser.get(f"/login?user={user}")
    return browser


@runs("users-setup")
def _(code, request):
    app = run(code, app=users_app, store=create_memory_store(), secret=SECRET)["app"]
    logged_in(app, "ada", "phone")
    logged_in(app, "ada", "laptop")
    logged_in(app, "bob", "desk")
    assert sorted(info.user_agent for info in list_sessions(app, user_id="ada")) == ["laptop", "phone"]


@runs("users-request")
def _(code, request):
    middleware = SessionMiddleware(users_app, store=create_memory_store(), secret=SECRET, user_key="user_id")
    here, phone = logged_in(middleware, "ada", "here"), logged_in(middleware, "ada", "phone")
    logged_in(middleware, "ada", "laptop")
    (handle,) = [
        info.handle for info in list_sessions(middleware, user_id="ada") if info.user_agent == "phone"
    ]
    output = io.StringIO()

    def view(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        run(code, request=environ, handle=handle, print=lambda *a: print(*a, file=output))
        start_response("200 OK", [])
        return [b""]

    middleware.app = view  # the same middleware, with a view that runs the example
    here.get("/")
    assert len(output.getvalue().splitlines()) == 3  # listed: here, phone, laptop
    middleware.app = users_app
    assert [info.user_agent for info in list_sessions(middleware, user_id="ada")] == ["here"]
    assert phone.get("/").text == "1"  # revoked: a new session


@runs("users-admin")
def _(code, request):
    app = SessionMiddleware(users_app, store=create_memory_store(), secret=SECRET, user_key="user_id")
    browser = logged_in(app, "42", "phone")
    logged_in(app, "42", "laptop")
    logged_in(app, "7", "desk")
    run(code, app=app, revoke_sessions=wsgi_session.revoke_sessions)
    assert list_sessions(app, user_id=42) == [] and len(list_sessions(app, user_id=7)) == 1
    assert browser.get("/").text == "1"


# -- logins that race -------------------------------------------------------------------


@runs("login-races-window")
def _(code, request):
    store = create_memory_store()
    app = run(code, app=users_app, store=store, secret=SECRET, SessionMiddleware=SessionMiddleware)["app"]
    assert app.settings.regenerate_window == 30
    browser = client(app)
    browser.get("/")
    old = browser.cookies["session"]
    browser.get("/login?user=ada")
    late = client(app)
    late.set_cookie("session", old)
    response = late.get("/")  # sent with the old cookie, answered after the login
    assert response.text == "1" and "Set-Cookie" not in response.headers
    assert browser.get("/").text == "3"  # the login's session, untouched


# -- operations -------------------------------------------------------------------------


class DownStore:
    """A store whose server is down."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def fail(*args: Any) -> Any:
            raise ConnectionError("connection refused")

        return fail


@runs("operations-anonymous")
def _(code, request):
    app = run(code, app=counter_app, store=DownStore(), secret=SECRET, SessionMiddleware=SessionMiddleware)[
        "app"
    ]
    browser = client(app)
    browser.set_cookie("session", wsgi_session.sign_cookie("K" * 43, SECRET))
    response = browser.get("/")
    assert response.status_int == 200 and response.text == "1"
    assert "Set-Cookie" not in response.headers  # the browser keeps its cookie


@runs("operations-metrics")
def _(code, request):
    browser = client(run(code, app=counter_app, store=create_memory_store(), secret=SECRET)["app"])
    browser.get("/")
    scraped = browser.get("/metrics/").text
    assert re.search(r'^wsgi_session_writes_total\{kind="create"\} [1-9]', scraped, re.M)
    assert re.search(r'^wsgi_session_loads_total\{outcome="new"\} [1-9]', scraped, re.M)


@runs("operations-metrics-multiprocess")
def _(code, request):
    request.getfixturevalue("monkeypatch").setenv(
        "PROMETHEUS_MULTIPROC_DIR", str(request.getfixturevalue("tmp_path"))
    )
    response = webtest.TestApp(run(code)["metrics_app"]).get("/")
    assert response.status_int == 200 and response.content_type.startswith("text/plain")


@runs("operations-logging")
def _(code, request):
    caplog = request.getfixturevalue("caplog")
    logger, root = logging.getLogger("wsgi_session"), logging.getLogger()
    kept = logger.level, list(root.handlers)
    try:
        run(code)
        browser = client(SessionMiddleware(counter_app, store=create_memory_store(), secret=SECRET))
        browser.set_cookie("session", wsgi_session.sign_cookie("K" * 43, "another secret"))
        browser.get("/")
    finally:
        logger.setLevel(kept[0])
        root.handlers[:] = kept[1]
    assert [r.levelname for r in caplog.records if r.name == "wsgi_session"] == ["INFO"]


@runs("operations-cli")
def _(code, request):
    directory = request.getfixturevalue("tmp_path")
    store = wsgi_session.create_sqlite_store(directory / "sessions.sqlite3")
    app = SessionMiddleware(users_app, store=store, secret=SECRET, user_key="user_id")
    phone = logged_in(app, "42", "phone")
    logged_in(app, "42", "laptop")
    store.set(new_session_id(), '{"created":1.0,"data":{}}', -10)  # an expired row, for purge
    code = replaced(
        code, ("/var/lib/myapp", str(directory)), ("SESSION_SECRET=...", f"SESSION_SECRET={SECRET}")
    )
    code = code.replace("wsgi-session ", f"{sys.executable} -m wsgi_session ")
    environ = {**os.environ, "COOKIE": phone.cookies["session"], "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        ["bash", "-euc", code], env=environ, capture_output=True, text=True, timeout=120, cwd=directory
    )
    assert done.returncode == 0, done.stderr
    session_id = unsign_cookie(phone.cookies["session"], SECRET)
    assert session_id is not None and session_id not in done.stdout
    assert done.stdout.count(short_hash(session_id)) >= 2  # inspect, twice
    assert '"user_id": 42' in done.stdout  # the data, with --data only
    assert "\n2\n" in done.stdout  # count
    assert "deleted 1 expired" in done.stdout  # purge
    assert done.stdout.count("phone") == 1 and done.stdout.count("laptop") == 1  # list
    assert "ended 2 sessions of user 42" in done.stdout  # revoke
    assert list_sessions(app, user_id=42) == []


# -- migrating --------------------------------------------------------------------------


@runs("migrating-flask")
def _(code, request):
    flask_key = "the-key-flask-signed-its-cookies-with-0123"
    monkeypatch = secret_env(request)
    monkeypatch.setenv("FLASK_SECRET_KEY", flask_key)
    monkeypatch.setenv("SESSION_STORE_URL", "memory://")
    app = flask.Flask("docs_migrating")

    @app.get("/")
    def who() -> str:
        return str(flask.session.get("user"))

    run(code, app=app)
    flask_cookie = FLASK_COOKIE_SESSIONS.get_signing_serializer(app).dumps({"user": "ada"})
    browser = app.test_client()
    browser.set_cookie("session", flask_cookie)
    response = browser.get("/")
    assert response.text == "ada"
    ours = response.headers.getlist("Set-Cookie")[-1]  # after the one expiring Flask's cookie
    assert ours.startswith("session=s:") and "Max-Age=2678400" in ours  # Flask's 31 days, as max_age
    assert browser.get("/").text == "ada"


@runs("migrating-flask-session")
def _(code, request):
    redis_client = request.getfixturevalue("redis_client")
    secret_env(request).setenv("REDIS_URL", request.getfixturevalue("redis_server").url)
    app = flask.Flask("docs_migrating")

    @app.get("/")
    def count() -> str:
        flask.session["visits"] = flask.session.get("visits", 0) + 1
        return str(flask.session["visits"])

    run(code, app=app)
    browser = app.test_client()
    assert [browser.get("/").text for _ in range(2)] == ["1", "2"]
    assert [key.startswith(b"wsgi_session:") for key in redis_client.keys("*")] == [True]


@runs("migrating-beaker")
def _(code, request):
    secret_env(request).setenv("SESSION_STORE_URL", "memory://")
    browser = client(run(code)["app"])
    assert [browser.get("/").text for _ in range(2)] == ["views: 1\n", "views: 2\n"]
    assert "Max-Age=1800" in browser.get("/").headers["Set-Cookie"]


@runs("migrating-pyramid-session-redis")
def _(code, request):
    request.getfixturevalue("redis_client")
    secret_env(request).setenv("REDIS_URL", request.getfixturevalue("redis_server").url)

    def add_routes(text: str) -> str:  # the page's "routes and views, unchanged"
        return replaced(
            text,
            (
                "# ... routes and views, unchanged ...",
                "config.add_route('home', '/')\nconfig.add_view(home, route_name='home')",
            ),
        )

    def home(request: Any) -> Any:
        from pyramid.response import Response

        request.session["visits"] = request.session.get("visits", 0) + 1
        request.session.flash("hello")
        return Response(str(request.session["visits"]))

    app = run(add_routes(code), home=home)["app"]
    browser = client(app)
    assert [browser.get("/").text for _ in range(2)] == ["1", "2"]
    assert "Max-Age=1200" in browser.get("/").headers["Set-Cookie"]


# -- API reference ----------------------------------------------------------------------


@runs("api-get-session")
def _(code, request):
    namespace, _data = in_request(code, prior={"user": "ada"})
    assert namespace["user"] == "ada"


@runs("api-update-session")
def _(code, request):
    _namespace, data = in_request(code, prior={"cart": [1], "flash": "saved"}, item_id=2)
    assert data == {"cart": [1, 2]}


@runs("api-regenerate-session")
def _(code, request):
    _namespace, data = in_request(code, prior={"visits": 1}, user_id=7)
    assert data == {"visits": 1, "user": 7}


@runs("api-sign-cookie")
def _(code, request):
    namespace = run(code, sign_cookie=wsgi_session.sign_cookie, unsign_cookie=unsign_cookie)
    assert re.fullmatch(r"s:abc\.[A-Za-z0-9+/]{43}", namespace["signed"])
