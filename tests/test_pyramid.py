"""The Pyramid adapter, driven through real Pyramid apps behind the middleware."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from conftest import SECRET
from pyramid.config import Configurator
from pyramid.csrf import SessionCSRFStoragePolicy, check_csrf_token, get_csrf_token
from pyramid.interfaces import ISession
from pyramid.response import Response
from zope.interface.verify import verifyObject

from wsgi_session import SessionError, SessionMiddleware, regenerate_session, update_session
from wsgi_session.pyramid import session_factory

WAIT = 10  # seconds: only a bound on a deadlock, never reached when the test passes

SEED = {"a": 1, "b": [1, 2], "c": {"x": 1}}

# Each operation on request.session, its result and the data the next request must see.
OPERATIONS: dict[str, tuple[Any, Any, dict[str, Any]]] = {
    "set": (lambda s: s.__setitem__("d", [4]), None, {**SEED, "d": [4]}),
    "replace": (lambda s: s.__setitem__("a", "one"), None, {**SEED, "a": "one"}),
    "del": (lambda s: s.__delitem__("a"), None, {"b": [1, 2], "c": {"x": 1}}),
    "pop": (lambda s: s.pop("b"), [1, 2], {"a": 1, "c": {"x": 1}}),
    "pop-missing": (lambda s: s.pop("zz", "default"), "default", SEED),
    "popitem": (lambda s: s.popitem(), ["a", 1], {"b": [1, 2], "c": {"x": 1}}),
    "setdefault-new": (lambda s: s.setdefault("d", [0]), [0], {**SEED, "d": [0]}),
    "setdefault-old": (lambda s: s.setdefault("a", 99), 1, SEED),
    "update": (lambda s: s.update({"a": 2, "e": None}), None, {**SEED, "a": 2, "e": None}),
    "clear": (lambda s: s.clear(), None, {}),
    "getitem": (lambda s: s["c"], {"x": 1}, SEED),
    "get": (lambda s: s.get("a"), 1, SEED),
    "get-missing": (lambda s: s.get("zz", "default"), "default", SEED),
    "contains": (lambda s: ["a" in s, "zz" in s], [True, False], SEED),
    "len": (lambda s: len(s), 3, SEED),
    "iter": (lambda s: sorted(s), ["a", "b", "c"], SEED),
    "keys": (lambda s: sorted(s.keys()), ["a", "b", "c"], SEED),
    "values": (lambda s: list(s.values()), [1, [1, 2], {"x": 1}], SEED),
    "items": (lambda s: dict(s.items()), SEED, SEED),
}


def make_app(store: Any) -> tuple[SessionMiddleware, dict[str, threading.Event]]:
    events = {name: threading.Event() for name in ("a_wrote", "b_wrote", "a_done")}
    config = Configurator()
    config.set_session_factory(session_factory)
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())

    def view(path: str, **options: Any) -> Any:
        name = path.strip("/").replace("/", "-").replace("{", "").replace("}", "")

        def register(function: Any) -> Any:
            config.add_route(name, path)
            config.add_view(function, route_name=name, renderer="json", **options)
            return function

        return register

    @view("/show")
    def show(request: Any) -> Any:
        return dict(request.session)

    @view("/plain")
    def plain(request: Any) -> Any:
        return "plain"

    @view("/interface")
    def interface(request: Any) -> Any:
        return verifyObject(ISession, request.session)

    @view("/meta")
    def meta(request: Any) -> Any:
        return {"new": request.session.new, "created": request.session.created}

    @view("/changed-only")
    def changed_only(request: Any) -> Any:
        request.session.changed()
        return "changed"

    @view("/seed")
    def seed(request: Any) -> Any:
        request.session.update(SEED)
        return "seeded"

    @view("/op/{name}")
    def op(request: Any) -> Any:
        return OPERATIONS[request.matchdict["name"]][0](request.session)

    @view("/append")
    def append(request: Any) -> Any:
        request.session["b"].append(3)
        if "changed" in request.params:
            request.session.changed()
        if "write" in request.params:
            request.session["other"] = 1
        return request.session["b"]

    @view("/invalidate")
    def invalidate(request: Any) -> Any:
        request.session.invalidate()
        after = dict(request.session)
        if "write" in request.params:
            request.session["fresh"] = 1
            return {"after": after, "new": request.session.new, "then": dict(request.session)}
        return {"after": after}

    @view("/flash")
    def flash(request: Any) -> Any:
        allow_duplicate = "unique" not in request.params
        request.session.flash(request.params["msg"], request.params.get("queue", ""), allow_duplicate)
        return "flashed"

    @view("/plant")
    def plant(request: Any) -> Any:
        # As someone else may have stored it: the session holds JSON, any JSON.
        value = json.loads(request.params["json"])
        update_session(request, lambda s: {request.params["key"]: value})
        return "planted"

    @view("/peek")
    def peek(request: Any) -> Any:
        return request.session.peek_flash(request.params.get("queue", ""))

    @view("/pop")
    def pop(request: Any) -> Any:
        return request.session.pop_flash(request.params.get("queue", ""))

    @view("/form")
    def form(request: Any) -> Any:
        return {"policy": get_csrf_token(request), "session": request.session.get_csrf_token()}

    @view("/new-token")
    def new_token(request: Any) -> Any:
        return request.session.new_csrf_token()

    @view("/transfer", request_method="POST", require_csrf=True)
    def transfer(request: Any) -> Any:
        return "transferred"

    @view("/explicit-check", request_method="POST")
    def explicit_check(request: Any) -> Any:
        return check_csrf_token(request, raises=False)

    @view("/login")
    def login(request: Any) -> Any:
        regenerate_session(request)
        request.session["user"] = "ada"
        return "in"

    @view("/race/a/{kind}")
    def race_a(request: Any) -> Any:
        if request.matchdict["kind"] == "flash":
            request.session.flash("from A")
        else:
            request.session["a"] = "A"
        events["a_wrote"].set()
        events["b_wrote"].wait(WAIT)
        return "a"

    @view("/race/b/{kind}")
    def race_b(request: Any) -> Any:
        events["a_wrote"].wait(WAIT)
        kind, session = request.matchdict["kind"], request.session
        result = None
        if kind == "key":
            session["b"] = "B"
        elif kind == "nested":
            session["c"]["y"] = 2
            session.changed()
        elif kind == "flash":
            session.flash("from B")
        else:
            result = session.pop_flash()
        events["b_wrote"].set()
        events["a_done"].wait(WAIT)
        return result

    @view("/stream")
    def stream(request: Any) -> Any:
        request.session["streamed"] = "yes"

        def body() -> Iterator[bytes]:
            yield b"started;"  # the response has started: the session is written back
            yield f"user={request.session.get('user')};streamed={request.session['streamed']};".encode()
            try:
                request.session["late"] = 1
            except SessionError:
                yield b"late write refused"

        return Response(app_iter=body(), content_type="text/plain")

    app = SessionMiddleware(config.make_wsgi_app(), store=store, secret=SECRET)
    return app, events


def client_for(app: Any) -> webtest.TestApp:
    # Over HTTPS Pyramid checks the Origin before the token: come from the site itself.
    environ = {"wsgi.url_scheme": "https", "HTTP_HOST": "example.com", "HTTP_ORIGIN": "https://example.com"}
    return webtest.TestApp(app, extra_environ=environ)


@pytest.fixture
def app_events(store: Any) -> tuple[SessionMiddleware, dict[str, threading.Event]]:
    return make_app(store)


@pytest.fixture
def client(app_events: Any) -> webtest.TestApp:
    return client_for(app_events[0])


@pytest.fixture
def seeded(client: webtest.TestApp) -> webtest.TestApp:
    client.post("/seed")
    return client


def test_request_session_is_an_isession(client):
    assert client.get("/interface").json is True


def test_a_request_that_never_touches_the_session_costs_nothing(client, store):
    response = client.get("/plain")
    assert store.calls == []
    assert "Set-Cookie" not in response.headers and "Vary" not in response.headers


def test_changed_alone_loads_nothing(client, store):
    client.get("/changed-only")
    assert store.calls == []


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_each_dict_operation_reaches_the_next_request(seeded, name):
    _, result, expected = OPERATIONS[name]
    assert seeded.post(f"/op/{name}").json == result
    assert seeded.get("/show").json == expected


def test_new_and_created(client):
    first = client.get("/meta").json
    assert first["new"] is True
    client.post("/seed")
    second, third = client.get("/meta").json, client.get("/meta").json
    assert second["new"] is False and second["created"] == third["created"] >= first["created"]


def test_nested_change_without_changed_is_not_saved(seeded):
    assert seeded.post("/append").json == [1, 2, 3]
    assert seeded.get("/show").json["b"] == [1, 2]


@pytest.mark.parametrize("query", ["?changed", "?write"])
def test_nested_change_is_saved_after_changed_or_a_write(seeded, query):
    seeded.post("/append" + query)
    assert seeded.get("/show").json["b"] == [1, 2, 3]


def test_invalidate_destroys_the_session(seeded, store):
    cookie = seeded.cookies["session"]
    response = seeded.post("/invalidate")
    assert response.json == {"after": {}}
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert len(store.store) == 0
    replay = client_for(seeded.app)
    replay.set_cookie("session", cookie)
    assert replay.get("/show").json == {}


def test_a_write_after_invalidate_starts_a_new_session(seeded, store):
    cookie = seeded.cookies["session"]
    response = seeded.post("/invalidate?write")
    assert response.json == {"after": {}, "new": True, "then": {"fresh": 1}}
    assert seeded.cookies["session"] != cookie
    assert len(store.store) == 1
    assert seeded.get("/show").json == {"fresh": 1}


def test_flash_queues(client):
    client.post("/flash?msg=one")
    client.post("/flash?msg=one")
    client.post("/flash?msg=two&queue=errors")
    assert client.get("/peek").json == ["one", "one"]
    assert client.get("/peek").json == ["one", "one"]  # peeking leaves them
    assert client.get("/pop?queue=errors").json == ["two"]
    assert client.get("/pop?queue=errors").json == []
    assert client.get("/pop").json == ["one", "one"]
    assert client.get("/show").json == {}


def test_flash_without_duplicates(client):
    client.post("/flash?msg=one&unique")
    client.post("/flash?msg=one&unique")
    client.post("/flash?msg=two&unique")
    assert client.get("/pop").json == ["one", "two"]


@pytest.mark.parametrize("stored", ["5", "null", '"text"', '{"a": 1}', "true"])
def test_a_flash_queue_that_is_not_a_list_reads_as_empty_and_flash_starts_a_new_one(client, stored, caplog):
    client.post("/plant", {"key": "_f_", "json": stored})
    assert client.get("/peek").json == []
    assert client.get("/pop").json == []
    assert "flash queue '_f_' is not a list" in caplog.text
    client.post("/flash?msg=fresh")
    assert client.get("/pop").json == ["fresh"]
    assert client.get("/show").json == {}


def test_csrf_with_pyramids_own_policy(client):
    tokens = client.get("/form").json
    assert tokens["policy"] == tokens["session"] and len(tokens["policy"]) >= 32
    assert client.get("/form").json == tokens  # the same token on the next request
    assert "Invalid token" in client.post("/transfer", status=400).text
    assert "Invalid token" in client.post("/transfer", {"csrf_token": "wrong"}, status=400).text
    assert client.post("/transfer", {"csrf_token": tokens["policy"]}).json == "transferred"
    assert client.post("/transfer", headers={"X-CSRF-Token": tokens["policy"]}).json == "transferred"
    assert client.post("/explicit-check", {"csrf_token": tokens["policy"]}).json is True
    assert client.post("/explicit-check").json is False


def test_new_csrf_token_replaces_the_old_one(client):
    old = client.get("/form").json["policy"]
    new = client.post("/new-token").json
    assert new != old and client.get("/form").json["policy"] == new
    client.post("/transfer", {"csrf_token": old}, status=400)


def test_login_regenerates_the_id_and_the_old_cookie_gets_an_empty_session(seeded):
    before = seeded.cookies["session"]
    seeded.post("/login")
    assert seeded.cookies["session"] != before
    assert seeded.get("/show").json == {**SEED, "user": "ada"}
    attacker = client_for(seeded.app)
    attacker.set_cookie("session", before)
    assert attacker.get("/show").json == {}


def test_a_streamed_body_reads_the_session_as_written_back_and_cannot_write(client):
    client.post("/login")
    assert client.get("/stream").text == "started;user=ada;streamed=yes;late write refused"
    assert client.get("/show").json == {"user": "ada", "streamed": "yes"}


def race(app: Any, events: dict[str, threading.Event], cookie: str, a: str, b: str) -> list[Any]:
    """Run ``/race/a/<a>`` and ``/race/b/<b>`` on one session, both loaded before either saves.

    A writes, then waits for B to load and write; A finishes and saves first, so
    B's compare-and-set fails and B's updates are replayed on A's data.
    """
    results: list[Any] = []
    errors: list[BaseException] = []

    def request(path: str) -> None:
        try:
            client = client_for(app)
            results.append(client.post(path, headers={"Cookie": f"session={cookie}"}).json)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread_a = threading.Thread(target=request, args=(f"/race/a/{a}",))
    thread_b = threading.Thread(target=request, args=(f"/race/b/{b}",))
    thread_a.start()
    thread_b.start()
    thread_a.join(WAIT)
    events["a_done"].set()
    thread_b.join(WAIT)
    assert not errors and not thread_a.is_alive() and not thread_b.is_alive()
    return results


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("key", "key", {**SEED, "a": "A", "b": "B"}),
        ("key", "nested", {**SEED, "a": "A", "c": {"x": 1, "y": 2}}),
        ("flash", "flash", {**SEED, "_f_": ["from A", "from B"]}),
    ],
)
def test_racing_requests_keep_each_others_changes(app_events, seeded, store, a, b, expected):
    store.calls.clear()
    race(*app_events, seeded.cookies["session"], a, b)
    assert store.names().count("compare_and_set") == 3  # A once; B failed once, then replayed
    assert seeded.get("/show").json == expected


def test_pop_flash_racing_a_flash_keeps_the_new_message(app_events, seeded):
    seeded.post("/flash?msg=old")
    results = race(*app_events, seeded.cookies["session"], "flash", "pop_flash")
    assert ["old"] in results
    assert seeded.get("/pop").json == ["from A"]


def test_csrf_with_pyramids_default_legacy_policy(store):
    """Without a policy set, Pyramid asks the session itself for its token."""
    config = Configurator()
    config.set_session_factory(session_factory)
    config.set_default_csrf_options(require_csrf=True)
    config.add_route("form", "/form")
    config.add_view(lambda request: get_csrf_token(request), route_name="form", renderer="json")
    config.add_route("post", "/post")
    config.add_view(lambda request: "posted", route_name="post", renderer="json", request_method="POST")
    client = client_for(SessionMiddleware(config.make_wsgi_app(), store=store, secret=SECRET))
    token = client.get("/form").json
    assert "Invalid token" in client.post("/post", status=400).text
    assert client.post("/post", {"csrf_token": token}).json == "posted"
