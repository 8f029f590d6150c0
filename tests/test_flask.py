"""The Flask adapter, driven through real Flask apps behind the middleware."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
import webtest
from conftest import SECRET
from werkzeug.middleware.proxy_fix import ProxyFix

import wsgi_session
from wsgi_session import (
    SessionError,
    SessionMiddleware,
    destroy_session,
    get_session,
    regenerate_session,
    update_session,
)
from wsgi_session.flask import FlaskSession, SessionInterface

WAIT = 10  # seconds: only a bound on a deadlock, never reached when the test passes

SEED = {"a": 1, "b": [1, 2], "c": {"x": 1}}

# Each operation on flask.session, and the data the next request must see.
OPERATIONS: dict[str, tuple[Any, dict[str, Any]]] = {
    "set": (lambda s: s.__setitem__("d", [4]), {**SEED, "d": [4]}),
    "replace": (lambda s: s.__setitem__("a", "one"), {**SEED, "a": "one"}),
    "del": (lambda s: s.__delitem__("a"), {"b": [1, 2], "c": {"x": 1}}),
    "pop": (lambda s: s.pop("b"), {"a": 1, "c": {"x": 1}}),
    "pop-missing": (lambda s: s.pop("zz", "default"), SEED),
    "popitem": (lambda s: s.popitem(), {"b": [1, 2], "c": {"x": 1}}),
    "setdefault-new": (lambda s: s.setdefault("d", [0]), {**SEED, "d": [0]}),
    "setdefault-old": (lambda s: s.setdefault("a", 99), SEED),
    "update": (lambda s: s.update({"a": 2, "e": None}, f=3.5), {**SEED, "a": 2, "e": None, "f": 3.5}),
    "clear": (lambda s: s.clear(), {}),
    "get": (lambda s: s.get("a"), SEED),
    "get-missing": (lambda s: s.get("zz", "default"), SEED),
    "contains": (lambda s: ("a" in s, "zz" in s), SEED),
    "len": (lambda s: len(s), SEED),
    "keys": (lambda s: sorted(s.keys()), SEED),
    "values": (lambda s: list(s.values()), SEED),
    "items": (lambda s: dict(s.items()), SEED),
}
RESULTS = {
    "pop": [1, 2],
    "pop-missing": "default",
    "popitem": ["a", 1],
    "setdefault-new": [0],
    "setdefault-old": 1,
    "get": 1,
    "get-missing": "default",
    "contains": [True, False],
    "len": 3,
    "keys": ["a", "b", "c"],
    "values": [1, [1, 2], {"x": 1}],
    "items": SEED,
}


def make_app(store: Any, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.wsgi_app = SessionMiddleware(app.wsgi_app, store=store, secret=SECRET, **options)  # type: ignore[method-assign]
    app.session_interface = SessionInterface()
    app.race = {name: threading.Event() for name in ("a_wrote", "b_wrote", "a_done")}  # type: ignore[attr-defined]

    @app.get("/show")
    def show() -> Any:
        return flask.jsonify(dict(flask.session))

    @app.get("/raw")
    def raw() -> Any:
        return dict(get_session(flask.request) or {})  # as stored: Flask's tagged JSON

    @app.get("/plain")
    def plain() -> str:
        return "plain"

    @app.get("/flags")
    def flags() -> Any:
        # Flask's own flags, without reading any data.
        session = flask.session
        return {"modified": session.modified, "accessed": bool(session.accessed)}

    @app.get("/members")
    def members() -> Any:
        if "user" not in flask.session:
            return "log in first", 401
        return f"members only, {flask.session['user']}"

    @app.get("/new")
    def new() -> Any:
        return {"new": flask.session.new}

    @app.post("/seed")
    def seed() -> str:
        flask.session.update(SEED)
        return "seeded"

    @app.post("/op/<name>")
    def op(name: str) -> Any:
        result = OPERATIONS[name][0](flask.session)
        return {"result": result, "modified": flask.session.modified}

    @app.post("/append")
    def append() -> Any:
        flask.session["b"].append(3)
        if "modified" in flask.request.args:
            flask.session.modified = True
        if "write" in flask.request.args:
            flask.session["other"] = 1
        return {"in_request": flask.session["b"]}

    @app.post("/assign-then-mutate")
    def assign_then_mutate() -> str:
        cart: list[int] = []
        flask.session["cart"] = cart
        cart.append(1)
        flask.session["cart"].append(2)
        return "ok"

    @app.post("/bad")
    def bad() -> str:
        flask.session["when"] = {1, 2}
        return "unreachable"

    @app.post("/permanent")
    def permanent() -> Any:
        flask.session.permanent = True
        return {"permanent": flask.session.permanent}

    @app.get("/is-permanent")
    def is_permanent() -> Any:
        return {"permanent": flask.session.permanent}

    @app.post("/flash")
    def flash() -> Any:
        flask.flash("saved", "info")
        return flask.redirect("/messages")

    @app.get("/messages")
    def messages() -> Any:
        return {"messages": flask.get_flashed_messages(with_categories=True)}

    @app.post("/login")
    def login() -> str:
        regenerate_session(flask.request)
        flask.session["user"] = "ada"
        return "in"

    @app.post("/logout")
    def logout() -> Any:
        destroy_session(flask.request)
        return {"after": dict(flask.session)}

    @app.post("/logout-and-flash")
    def logout_and_flash() -> str:
        destroy_session(flask.request)
        flask.flash("bye")
        return "out"

    @app.post("/mixed")
    def mixed() -> str:
        held = flask.session["b"]
        update_session(flask.request, lambda s: {"b": ["from update_session"]})
        held.append("stale")
        flask.session.modified = True
        return "ok"

    @app.post("/race/a/<key>")
    def race_a(key: str) -> str:
        flask.session[key] = "A"
        app.race["a_wrote"].set()  # type: ignore[attr-defined]
        app.race["b_wrote"].wait(WAIT)  # type: ignore[attr-defined]
        return "a"

    @app.post("/race/b/<kind>")
    def race_b(kind: str) -> str:
        app.race["a_wrote"].wait(WAIT)  # type: ignore[attr-defined]
        if kind == "key":
            flask.session["b"] = "B"
        elif kind == "tagged":
            flask.session["b"] = ("B", b"B")
        elif kind == "nested":
            flask.session["c"]["y"] = 2
            flask.session.modified = True
        else:
            flask.session.clear()
        app.race["b_wrote"].set()  # type: ignore[attr-defined]
        app.race["a_done"].wait(WAIT)  # type: ignore[attr-defined]
        return "b"

    @app.get("/stream")
    def stream() -> Any:
        flask.session["streamed"] = "yes"

        def body() -> Iterator[str]:
            yield "started;"  # the response has started: the session is written back
            yield f"user={flask.session.get('user')};streamed={flask.session['streamed']};"
            try:
                flask.session["late"] = 1
            except SessionError:
                yield "late write refused"

        return flask.Response(flask.stream_with_context(body()))

    return app


@pytest.fixture
def app(store: Any) -> flask.Flask:
    return make_app(store)


@pytest.fixture
def client(app: flask.Flask) -> Any:
    return app.test_client()


def cookie_of(client: Any) -> str | None:
    cookie = client.get_cookie("session")
    return None if cookie is None else cookie.value


def seeded(client: Any) -> Any:
    client.post("/seed")
    return client


def test_counter_across_requests_with_the_test_client(client):
    app = client.application

    @app.get("/count")
    def count() -> str:
        flask.session["n"] = flask.session.get("n", 0) + 1
        return str(flask.session["n"])

    assert [client.get("/count").text for _ in range(3)] == ["1", "2", "3"]


def test_a_request_that_never_touches_the_session_costs_nothing(client, store):
    response = client.get("/plain")
    assert store.calls == []
    assert "Set-Cookie" not in response.headers and "Vary" not in response.headers


def test_flask_flags_alone_load_nothing(client, store):
    assert client.get("/flags").json["modified"] is False
    assert store.calls == []


def test_new_is_true_until_the_session_is_stored(client):
    assert client.get("/new").json == {"new": True}
    seeded(client)
    assert client.get("/new").json == {"new": False}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_each_dict_operation_reaches_the_next_request(client, name):
    seeded(client)
    response = client.post(f"/op/{name}").json
    assert response["result"] == RESULTS.get(name)
    assert client.get("/show").json == OPERATIONS[name][1]


@pytest.mark.parametrize(
    ("name", "modified"),
    [("set", True), ("del", True), ("clear", True), ("get", False), ("pop-missing", False)],
)
def test_writes_set_modified_and_reads_do_not(client, name, modified):
    seeded(client)
    assert client.post(f"/op/{name}").json["modified"] is modified


def test_reads_and_same_value_writes_store_nothing(client, store):
    seeded(client)
    store.calls.clear()
    client.post("/op/get")
    client.post("/op/setdefault-old")
    assert "compare_and_set" not in store.names() and "set" not in store.names()


def test_clear_keeps_the_session(client):
    seeded(client)
    before = cookie_of(client)
    response = client.post("/op/clear")
    assert "Set-Cookie" in response.headers and cookie_of(client) == before
    assert client.get("/show").json == {}


def test_nested_change_without_modified_is_not_saved(client):
    seeded(client)
    assert client.post("/append").json == {"in_request": [1, 2, 3]}
    assert client.get("/show").json["b"] == [1, 2]


@pytest.mark.parametrize("query", ["?modified", "?write"])
def test_nested_change_is_saved_once_the_session_is_modified(client, query):
    seeded(client)
    client.post("/append" + query)
    assert client.get("/show").json["b"] == [1, 2, 3]


def test_a_permanent_session_saves_a_nested_change_without_modified_as_flask_does(client, store):
    seeded(client)
    client.post("/permanent")
    client.post("/append")
    assert client.get("/show").json["b"] == [1, 2, 3]
    store.calls.clear()
    client.get("/show")  # read only: nothing changed, nothing written
    assert store.names() == ["get"]


def test_without_refresh_each_request_a_permanent_session_needs_modified(app, client):
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    seeded(client)
    client.post("/permanent")
    client.post("/append")
    assert client.get("/show").json["b"] == [1, 2]


def test_a_value_assigned_then_changed_in_place_is_saved_as_changed(client):
    client.post("/assign-then-mutate")
    assert client.get("/show").json == {"cart": [1, 2]}


def test_a_value_replaced_by_update_session_is_not_overwritten_by_a_stale_copy(client):
    seeded(client)
    client.post("/mixed")
    assert client.get("/show").json["b"] == ["from update_session"]


def test_a_value_json_cannot_encode_fails_at_the_assignment(app, client):
    app.testing = True  # let the exception reach the test
    with pytest.raises(TypeError, match="'when'"):
        client.post("/bad")


def test_permanent_is_kept_like_flask_and_the_cookie_lifetime_is_max_age(store):
    client = make_app(store, max_age=600).test_client()
    assert client.post("/permanent").json == {"permanent": True}
    assert client.get("/is-permanent").json == {"permanent": True}
    assert client.get_cookie("session").max_age == 600


def test_flash_survives_the_redirect_once(client):
    response = client.post("/flash", follow_redirects=True)
    assert response.json == {"messages": [["info", "saved"]]}
    assert client.get("/messages").json == {"messages": []}


def test_login_regenerates_the_id_and_the_old_cookie_gets_an_empty_session(app, client):
    seeded(client)
    before = cookie_of(client)
    client.post("/login")
    after = cookie_of(client)
    assert after != before
    assert client.get("/show").json == {**SEED, "user": "ada"}
    attacker = app.test_client()
    attacker.set_cookie("session", before)
    assert attacker.get("/show").json == {}


def test_logout_destroys_the_session_and_expires_the_cookie(client):
    seeded(client)
    response = client.post("/logout")
    assert response.json == {"after": {}}
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert cookie_of(client) is None


def test_a_write_after_logout_starts_a_new_session(client):
    seeded(client)
    before = cookie_of(client)
    client.post("/logout-and-flash")
    assert cookie_of(client) not in (None, before)
    assert client.get("/show").json == {"_flashes": [["message", "bye"]]}


def test_a_streamed_body_reads_the_session_as_written_back_and_cannot_write(client):
    with client.session_transaction() as session:
        session["user"] = "ada"
    response = client.get("/stream")
    assert response.text == "started;user=ada;streamed=yes;late write refused"
    assert client.get("/show").json == {"user": "ada", "streamed": "yes"}


def test_save_session_sets_no_cookie_of_its_own(client):
    response = seeded(client).post("/op/set")
    assert len(response.headers.getlist("Set-Cookie")) == 1
    assert response.headers.getlist("Vary") == ["Cookie"]


def test_works_under_webtest(app):
    client = webtest.TestApp(app, extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "example.com"})
    client.post("/seed")
    client.post("/op/set")
    assert client.get("/show").json == {**SEED, "d": [4]}


def test_session_transaction_writes_reach_the_next_request(client):
    with client.session_transaction() as session:
        assert session.new is True
        session["user"] = "ann"
        assert session.modified is True
    assert client.get("/show").json == {"user": "ann"}


def test_session_transaction_reads_what_requests_stored_and_changes_it(client):
    seeded(client)
    with client.session_transaction() as session:
        assert dict(session) == SEED and session.new is False
        session["a"] = 2
        session["b"].append(3)
        session.modified = True
    assert client.get("/show").json == {**SEED, "a": 2, "b": [1, 2, 3]}


def test_session_transaction_that_changes_nothing_sets_no_cookie_and_writes_nothing(client, store):
    with client.session_transaction() as session:
        assert "user" not in session
    assert cookie_of(client) is None and "set" not in store.names()
    seeded(client)
    jar_entry = client.get_cookie("session")
    store.calls.clear()
    with client.session_transaction() as session:
        assert session["a"] == 1
    # The test client replaces its cookie with a new object for every Set-Cookie.
    assert client.get_cookie("session") is jar_entry
    assert store.names() == ["get"]


def test_session_transaction_login_opens_a_login_required_view(client):
    assert client.get("/members").status_code == 401
    with client.session_transaction() as session:
        session["user"] = "ann"
    response = client.get("/members")
    assert response.status_code == 200 and response.text == "members only, ann"


def test_requests_stay_lazy_and_cookied_by_the_middleware_after_a_transaction(client, store):
    with client.session_transaction() as session:
        pass
    assert store.calls == []
    with client.session_transaction() as session:
        session["user"] = "ann"
    store.calls.clear()
    response = client.get("/plain")
    assert store.calls == [] and "Set-Cookie" not in response.headers
    response = client.post("/op/set")
    assert len(response.headers.getlist("Set-Cookie")) == 1
    assert client.get("/show").json == {"user": "ann", "d": [4]}


def test_without_the_middleware_as_wsgi_app_the_error_says_how_to_install_it(store):
    wrapped = make_app(store)
    wrapped.wsgi_app = ProxyFix(wrapped.wsgi_app)  # type: ignore[method-assign]
    bare = flask.Flask(__name__)
    bare.session_interface = SessionInterface()
    for app in (wrapped, bare):
        with app.test_request_context("/"):
            assert isinstance(flask.session, FlaskSession)
            with pytest.raises(SessionError, match=r"app\.wsgi_app = SessionMiddleware"):
                flask.session["x"] = 1
        transaction = app.test_client().session_transaction()
        with transaction as session, pytest.raises(SessionError, match="SessionMiddleware itself"):
            session["x"] = 1


def race(app: flask.Flask, cookie: str, b_path: str, a_key: str = "a") -> None:
    """Run ``/race/a/<a_key>`` and ``b_path`` on one session, both loaded before either saves.

    A writes, then waits for B to load and write; A finishes and saves first, so
    B's compare-and-set fails and B's updates are replayed on A's data.
    """
    headers = {"Cookie": f"session={cookie}"}
    errors: list[BaseException] = []

    def request(path: str) -> None:
        try:
            assert app.test_client(use_cookies=False).post(path, headers=headers).status_code == 200
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    a = threading.Thread(target=request, args=(f"/race/a/{a_key}",))
    b = threading.Thread(target=request, args=(b_path,))
    a.start()
    b.start()
    a.join(WAIT)
    app.race["a_done"].set()  # type: ignore[attr-defined]
    b.join(WAIT)
    assert not errors and not a.is_alive() and not b.is_alive()


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("key", {**SEED, "a": "A", "b": "B"}),
        ("nested", {**SEED, "a": "A", "c": {"x": 1, "y": 2}}),
        ("tagged", {**SEED, "a": "A", "b": {" t": ["B", {" b": "Qg=="}]}}),
        # B cleared the keys it saw; A's new value of "a" came after B loaded.
        ("clear", {}),
    ],
)
def test_racing_requests_keep_each_others_keys(app, client, store, kind, expected):
    seeded(client)
    store.calls.clear()
    race(app, cookie_of(client), f"/race/b/{kind}")
    assert store.names().count("compare_and_set") == 3  # A once; B failed once, then replayed
    assert client.get("/raw").json == expected


def test_racing_clear_keeps_a_key_added_meanwhile(app, client):
    seeded(client)
    race(app, cookie_of(client), "/race/b/clear", a_key="new")
    assert client.get("/show").json == {"new": "A"}


def test_importing_wsgi_session_imports_no_framework():
    code = "import sys, wsgi_session; print(sorted({'flask', 'pyramid'} & set(sys.modules)))"
    root = str(Path(wsgi_session.__file__).parent.parent)
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
