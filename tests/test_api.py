"""get_session, update_session, destroy_session and regenerate_session over a real app."""

from __future__ import annotations

import datetime
import json
import math
import sys

import pytest
import webob
from conftest import SECRET, replaced, sessions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsgi_session import (
    DELETE,
    SessionError,
    create_memory_store,
    destroy_session,
    get_session,
    regenerate_session,
    unsign_cookie,
    update_session,
)


def action_app(*actions):
    """A WSGI app running ``actions[path_index](environ)``; the body is the session as JSON.

    ``/0`` runs the first action, ``/1`` the second, and so on; ``/`` only reads.
    """

    def app(environ, start_response):
        path = environ["PATH_INFO"].strip("/")
        if path:
            actions[int(path)](environ)
        data = get_session(environ)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(None if data is None else dict(data)).encode()]

    return app


def session_cookie(response):
    values = [v for k, v in response.headerlist if k == "Set-Cookie" and v.startswith("session=")]
    assert len(values) <= 1
    return values[0].split(";")[0].partition("=")[2] if values else None


def session_id(response):
    return unsign_cookie(session_cookie(response), SECRET)


def set_to(**changes):
    return lambda env: update_session(env, lambda s: changes)


# -- update_session -----------------------------------------------------------------


def test_update_merges_shallowly(make_client):
    client = make_client(action_app(set_to(a={"x": 1}, b=1), set_to(a={"y": 2})))
    assert client.get("/0").json == {"a": {"x": 1}, "b": 1}
    assert client.get("/1").json == {"a": {"y": 2}, "b": 1}
    assert client.get("/").json == {"a": {"y": 2}, "b": 1}


def test_update_returns_the_new_data_read_only(make_client):
    seen = []

    def action(env):
        result = update_session(env, lambda s: {"n": 1})
        seen.append(dict(result))
        with pytest.raises(TypeError):
            result["n"] = 2  # type: ignore[index]

    make_client(action_app(action)).get("/0")
    assert seen == [{"n": 1}]


def test_updater_gets_the_current_data_read_only(make_client):
    def updater(current):
        with pytest.raises(TypeError):
            current["sneaky"] = True
        return {"n": current.get("n", 0) + 1}

    client = make_client(action_app(lambda env: update_session(env, updater)))
    client.get("/0")
    assert client.get("/0").json == {"n": 2}


def test_several_updates_in_one_request_all_count(make_client, store):
    def action(env):
        for _ in range(3):
            update_session(env, lambda s: {"n": s.get("n", 0) + 1})

    client = make_client(action_app(action))
    assert client.get("/0").json == {"n": 3}
    assert client.get("/0").json == {"n": 6}


def test_delete_removes_keys(make_client):
    client = make_client(action_app(set_to(a=1, b=2, c=3), set_to(a=DELETE, missing=DELETE, c=4)))
    client.get("/0")
    assert client.get("/1").json == {"b": 2, "c": 4}
    assert client.get("/").json == {"b": 2, "c": 4}


def test_delete_repr_names_it():
    assert repr(DELETE) == "wsgi_session.DELETE"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (datetime.datetime(2024, 1, 1), "datetime"),
        ({1, 2}, "set"),
        (b"bytes", "bytes"),
        (math.nan, "NaN"),
        (math.inf, "inf"),
        (object(), "object"),
        ({"nested": {1, 2}}, "nested set"),
    ],
)
def test_value_json_cannot_encode_is_a_type_error_naming_the_key(make_client, store, value, why):
    errors = []

    def action(env):
        update_session(env, lambda s: {"kept": 1})
        try:
            update_session(env, lambda s: {"bad_key": value, "other": 2})
        except TypeError as exc:
            errors.append(str(exc))

    client = make_client(action_app(action))
    assert client.get("/0").json == {"kept": 1}
    assert len(errors) == 1
    assert "bad_key" in errors[0]
    (stored,) = [args[1] for name, args in store.calls if name == "set"]
    assert json.loads(stored)["data"] == {"kept": 1}


def test_refused_update_stores_nothing(make_client, store):
    def action(env):
        update_session(env, lambda s: {"when": datetime.date.today()})

    with pytest.raises(TypeError, match="when"):
        make_client(action_app(action)).get("/0")
    assert store.calls == []
    assert len(store.store) == 0


@pytest.mark.parametrize("key", [1, None, ("a",), b"k"])
def test_non_string_key_is_a_type_error_naming_it(make_client, store, key):
    def action(env):
        update_session(env, lambda s: {key: 1})

    with pytest.raises(TypeError, match="key") as caught:
        make_client(action_app(action)).get("/0")
    assert repr(key) in str(caught.value)
    assert len(store.store) == 0


def test_updater_must_return_a_mapping(make_client):
    with pytest.raises(TypeError, match="mapping"):
        make_client(action_app(lambda env: update_session(env, lambda s: [("a", 1)]))).get("/0")


def test_json_round_trip_changes_are_the_documented_ones(make_client):
    client = make_client(action_app(set_to(t=(1, 2), d={1: "int key"})))
    assert client.get("/0").json == {"t": [1, 2], "d": {"1": "int key"}}
    assert client.get("/").json == {"t": [1, 2], "d": {"1": "int key"}}


def test_metadata_named_user_keys_change_nothing(make_client, store, clock):
    client = make_client(action_app(set_to(created=0, data="x", _expires=0)), absolute_timeout=100)
    assert client.get("/0").json == {"created": 0, "data": "x", "_expires": 0}
    clock.advance(50)
    assert client.get("/").json == {"created": 0, "data": "x", "_expires": 0}


# -- get_session ------------------------------------------------------------------


def test_get_session_is_read_only(make_client):
    def action(env):
        with pytest.raises(TypeError):
            get_session(env)["x"] = 1  # type: ignore[index]

    assert make_client(action_app(action)).get("/0").json == {}


def test_get_session_loads_once(make_client, store):
    client = make_client(action_app(set_to(n=1), lambda env: [get_session(env) for _ in range(5)]))
    client.get("/0")
    store.calls.clear()
    client.get("/1")
    assert store.names() == ["get"]


# -- destroy_session --------------------------------------------------------------


def test_destroy_gives_none_and_deletes_the_record(make_client, store):
    client = make_client(action_app(set_to(user="alice"), destroy_session))
    first = session_id(client.get("/0"))
    response = client.get("/1")
    assert response.json is None
    assert session_cookie(response) == ""
    assert store.store.get(first) is None
    assert len(store.store) == 0
    assert client.get("/").json == {}


def test_destroy_of_a_new_session_stores_nothing(make_client, store):
    response = make_client(action_app(destroy_session)).get("/0")
    assert response.json is None
    assert store.calls == []


def test_update_after_destroy_starts_a_new_session(make_client, store):
    def action(env):
        destroy_session(env)
        assert get_session(env) is None
        update_session(env, lambda s: {"fresh": s.get("user", "nobody")})

    client = make_client(action_app(set_to(user="alice"), action), generate=lambda: {"g": 1})
    first = session_id(client.get("/0"))
    response = client.get("/1")
    assert response.json == {"g": 1, "fresh": "nobody"}
    second = session_id(response)
    assert second not in (None, first)
    assert store.store.get(first) is None
    assert len(store.store) == 1
    assert client.get("/").json == {"g": 1, "fresh": "nobody"}


def test_destroy_update_destroy_leaves_nothing(make_client, store):
    def action(env):
        destroy_session(env)
        update_session(env, lambda s: {"n": 1})
        destroy_session(env)

    client = make_client(action_app(set_to(n=0), action))
    client.get("/0")
    assert client.get("/1").json is None
    assert len(store.store) == 0


def test_regenerate_after_destroy_keeps_it_destroyed(make_client, store):
    def action(env):
        destroy_session(env)
        regenerate_session(env)

    client = make_client(action_app(set_to(n=0), action))
    client.get("/0")
    response = client.get("/1")
    assert response.json is None
    assert session_cookie(response) == ""
    assert len(store.store) == 0


# -- regenerate_session -------------------------------------------------------------


def test_regenerate_keeps_the_data_under_a_new_id(make_client, store):
    client = make_client(action_app(set_to(cart=[1, 2]), regenerate_session))
    old_response = client.get("/0")
    old_id, old_cookie = session_id(old_response), session_cookie(old_response)
    response = client.get("/1")
    new_id = session_id(response)
    assert new_id not in (None, old_id)
    assert response.json == {"cart": [1, 2]}
    assert client.get("/").json == {"cart": [1, 2]}
    assert replaced(store.store, old_id)  # for regenerate_window seconds, then gone
    assert list(sessions(store.store)) == [new_id]
    # The old cookie now gets an empty session, never stored, that sets no cookie.
    client.set_cookie("session", old_cookie)
    response = client.get("/")
    assert response.json == {}
    assert session_cookie(response) is None


def test_login_pattern_regenerate_then_update(make_client, store):
    def login(env):
        regenerate_session(env)
        update_session(env, lambda s: {"user": "alice"})

    client = make_client(action_app(set_to(visits=3), login))
    anonymous = session_id(client.get("/0"))
    response = client.get("/1")
    assert response.json == {"visits": 3, "user": "alice"}
    assert session_id(response) != anonymous
    assert list(sessions(store.store)) == [session_id(response)]


def test_regenerate_on_a_new_session(make_client, store):
    response = make_client(action_app(regenerate_session)).get("/0")
    assert response.json == {}
    new_id = session_id(response)
    assert new_id is not None
    assert store.store.get(new_id) is not None
    assert len(store.store) == 1


def test_double_regenerate_leaves_no_orphan(make_client, store):
    def twice(env):
        regenerate_session(env)
        update_session(env, lambda s: {"n": 2})
        regenerate_session(env)

    client = make_client(action_app(set_to(n=1), twice))
    first = session_id(client.get("/0"))
    response = client.get("/1")
    assert list(sessions(store.store)) == [session_id(response)]
    assert replaced(store.store, first)
    assert client.get("/").json == {"n": 2}


def test_double_regenerate_of_a_new_session_leaves_no_orphan(make_client, store):
    def twice(env):
        regenerate_session(env)
        regenerate_session(env)

    make_client(action_app(twice)).get("/0")
    assert len(store.store) == 1


# -- how the functions find the session ---------------------------------------------


def test_functions_take_a_request_object(make_client):
    def action(env):
        request = webob.Request(env)
        update_session(request, lambda s: {"via": "webob"})
        assert get_session(request) == {"via": "webob"}
        regenerate_session(request)

    def logout(env):
        destroy_session(webob.Request(env))

    client = make_client(action_app(action, logout))
    assert client.get("/0").json == {"via": "webob"}
    assert client.get("/1").json is None


@pytest.mark.parametrize(
    "call",
    [
        lambda env: get_session(env),
        lambda env: update_session(env, lambda s: {}),
        lambda env: destroy_session(env),
        lambda env: regenerate_session(env),
    ],
)
@pytest.mark.parametrize("holder", [lambda env: env, webob.Request])
def test_without_middleware_every_function_raises_session_error(call, holder):
    with pytest.raises(SessionError, match="SessionMiddleware is not installed"):
        call(holder({"PATH_INFO": "/"}))


def test_environ_key_holds_the_accessor(make_client):
    seen = []
    make_client(action_app(lambda env: seen.append(type(env["wsgi_session"]).__name__))).get("/0")
    assert seen == ["RequestSession"]


# -- after start_response -----------------------------------------------------------


CHANGES = {
    "update": lambda env: update_session(env, lambda s: {"late": True}),
    "destroy": destroy_session,
    "regenerate": regenerate_session,
}


@pytest.mark.parametrize("name", sorted(CHANGES))
@pytest.mark.parametrize("touched_before", [True, False])
def test_a_change_in_a_generator_body_after_start_response_raises(make_client, store, name, touched_before):
    def app(environ, start_response):
        if touched_before:
            update_session(environ, lambda s: {"early": True})
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            CHANGES[name](environ)
        except SessionError as exc:
            yield str(exc).encode()

    response = make_client(app).get("/")
    assert "response has already started" in response.text
    stored = [json.loads(args[1])["data"] for n, args in store.calls if n == "set"]
    assert stored == ([{"early": True}] if touched_before else [])


@pytest.mark.parametrize("touched_before", [True, False])
def test_a_streamed_body_reads_the_session_as_written_back(make_client, touched_before):
    """A body generated after start_response (Flask's stream_with_context) may read."""

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/setup":
            update_session(environ, lambda s: {"n": 1})
        elif touched_before:
            update_session(environ, lambda s: {"n": s["n"] + 1})
        start_response("200 OK", [("Content-Type", "application/json")])
        yield json.dumps(dict(get_session(environ) or {})).encode()

    client = make_client(app)
    client.get("/setup")
    assert client.get("/").json == {"n": 2 if touched_before else 1}
    assert client.get("/").json == {"n": 3 if touched_before else 1}


def test_after_start_response_get_session_is_none_once_destroyed(make_client):
    def app(environ, start_response):
        destroy_session(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr(get_session(environ)).encode()]

    assert make_client(app).get("/").text == "None"


def test_session_call_between_two_start_responses_raises(make_client):
    def app(environ, start_response):
        get_session(environ)
        start_response("200 OK", [])
        try:
            raise RuntimeError
        except RuntimeError:
            with pytest.raises(SessionError):
                update_session(environ, lambda s: {"n": 1})
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b""]

    make_client(app).get("/", status=500)


# -- any sequence of calls ----------------------------------------------------------

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("update"), st.sampled_from("abc"), st.integers(0, 9)),
        st.tuples(st.just("delete"), st.sampled_from("abc"), st.none()),
        st.tuples(st.sampled_from(["destroy", "regenerate", "get"]), st.none(), st.none()),
    ),
    max_size=5,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(OPERATIONS, min_size=1, max_size=5))
def test_any_sequence_of_calls_matches_the_model(make_client, requests):
    """A model of the contract: what each request leaves in the store, and what it returns."""
    store = create_memory_store()
    pending: list = []
    returned: list = []

    def app(environ, start_response):
        for name, key, value in pending:
            if name == "update":
                returned.append(dict(update_session(environ, lambda s, k=key, v=value: {k: v})))
            elif name == "delete":
                returned.append(dict(update_session(environ, lambda s, k=key: {k: DELETE})))
            elif name == "destroy":
                destroy_session(environ)
            elif name == "regenerate":
                regenerate_session(environ)
            else:
                data = get_session(environ)
                returned.append(None if data is None else dict(data))
        start_response("200 OK", [])
        return [b""]

    client = make_client(app, store=store)
    persisted = None  # the data the store holds for the client's cookie
    for operations in requests:
        expected = []
        current = {} if persisted is None else dict(persisted)
        loaded, changed = persisted is not None, False
        for name, key, value in operations:
            if name in ("update", "delete"):
                if current is None:  # after destroy: a new session
                    current, loaded = {}, False
                if name == "update":
                    current[key] = value
                else:
                    current.pop(key, None)
                changed = True
                expected.append(dict(current))
            elif name == "destroy":
                current, changed = None, False
            elif name == "regenerate":
                changed = changed or current is not None
            else:
                expected.append(None if current is None else dict(current))
        pending[:] = operations
        returned.clear()
        client.get("/")
        assert returned == expected
        persisted = current if current is not None and (loaded or changed) else None
        assert len(sessions(store)) == (0 if persisted is None else 1)
        pending[:] = [("get", None, None)]
        returned.clear()
        client.get("/")
        assert returned == [persisted or {}]
