"""Sessions of a user: user_key, list_sessions, revoke_session, revoke_sessions.

Run on every shipped store that is available (the ``users_store`` fixture), through
the middleware, as an app would use them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import webtest
from conftest import SECRET, SpyStore
from redis.cluster import RedisCluster

from wsgi_session import (
    SessionInfo,
    SessionMiddleware,
    create_memory_store,
    create_postgres_store,
    create_redis_store,
    create_sqlite_store,
    destroy_session,
    get_session,
    list_sessions,
    regenerate_session,
    revoke_session,
    revoke_sessions,
    sign_cookie,
    update_session,
)
from wsgi_session.record import encode_record
from wsgi_session.signing import new_session_id

Environ = dict[str, Any]


@pytest.fixture(params=["memory", "sqlite", "redis", "redis cluster", "postgres"])
def users_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Each shipped store: each keeps an index of sessions by user.

    On the cluster a user's index and the user's sessions live on different nodes.
    """
    if request.param == "sqlite":
        yield create_sqlite_store(tmp_path / "sessions.sqlite3")
    elif request.param == "redis":
        request.getfixturevalue("redis_client")  # an empty server for this test
        yield create_redis_store(url=request.getfixturevalue("redis_server").url)
    elif request.param == "redis cluster":
        nodes = request.getfixturevalue("redis_cluster")
        for node in nodes:
            with node.client() as client:
                client.flushall()
        cluster = RedisCluster(host="127.0.0.1", port=nodes[0].port, socket_timeout=2)
        yield create_redis_store(client=cluster)
        cluster.close()
    elif request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        yield request.getfixturevalue("close_after")(create_postgres_store(url))
    else:
        yield create_memory_store()


def users_app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
    """``/login?user=ann`` regenerates and binds; ``/logout``; ``/list``; ``/revoke?handle=``;
    ``/revoke-others``; ``/revoke-all``; ``/as?user=`` binds without regenerating; ``/`` counts."""
    path, query = (
        environ["PATH_INFO"],
        dict(part.split("=", 1) for part in environ.get("QUERY_STRING", "").split("&") if "=" in part),
    )
    body: Any
    if path == "/login":
        regenerate_session(environ)
        body = dict(update_session(environ, lambda s: {"user_id": query["user"]}))
    elif path == "/as":
        user = query.get("user")
        body = dict(update_session(environ, lambda s: {"user_id": user if user else None}))
    elif path == "/logout":
        destroy_session(environ)
        body = None
    elif path == "/list":
        body = [info.__dict__ for info in list_sessions(environ)]
    elif path == "/revoke":
        body = revoke_session(environ, query["handle"])
    elif path == "/revoke-others":
        body = revoke_sessions(environ)
    elif path == "/revoke-all":
        body = revoke_sessions(environ, keep_current=False)
    else:
        body = dict(update_session(environ, lambda s: {"n": s.get("n", 0) + 1}))
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


def browser(app: Any, agent: str, ip: str) -> webtest.TestApp:
    return webtest.TestApp(
        app,
        extra_environ={
            "wsgi.url_scheme": "https",
            "HTTP_HOST": "example.com",
            "HTTP_USER_AGENT": agent,
            "REMOTE_ADDR": ip,
        },
    )


@pytest.fixture
def app(users_store: Any) -> SessionMiddleware:
    return SessionMiddleware(users_app, store=users_store, secret=SECRET, user_key="user_id")


def logged_in(app: Any, user: str, agent: str = "Firefox", ip: str = "10.0.0.1") -> webtest.TestApp:
    client = browser(app, agent, ip)
    client.get("/")
    client.get(f"/login?user={user}")
    return client


def test_a_user_lists_each_of_their_sessions_most_recent_first(app):
    laptop = logged_in(app, "ann", "Firefox", "10.0.0.1")
    # Redis keeps a session's last write to the millisecond (its TTL): two logins in
    # one millisecond could list in either order.
    time.sleep(0.005)
    phone = logged_in(app, "ann", "Safari", "10.0.0.2")
    logged_in(app, "bob", "Chrome", "10.0.0.3")
    listed = laptop.get("/list").json
    assert [(s["user_agent"], s["ip"], s["current"]) for s in listed] == [
        ("Safari", "10.0.0.2", False),
        ("Firefox", "10.0.0.1", True),
    ]
    assert {s["handle"] for s in listed} == {s["handle"] for s in phone.get("/list").json}
    for session in listed:
        assert session["created"] <= session["last_active"]


def test_list_sessions_from_the_middleware_for_any_user(app):
    logged_in(app, "ann")
    logged_in(app, "ann")
    logged_in(app, "bob")
    assert len(list_sessions(app, user_id="ann")) == 2
    assert len(list_sessions(app, user_id="bob")) == 1
    assert list_sessions(app, user_id="carol") == []
    assert all(
        isinstance(info, SessionInfo) and not info.current for info in list_sessions(app, user_id="ann")
    )
    with pytest.raises(TypeError, match="user_id"):
        list_sessions(app)


def test_an_anonymous_session_lists_nothing(app):
    client = browser(app, "Firefox", "10.0.0.1")
    client.get("/")
    assert client.get("/list").json == []


def test_int_and_str_user_ids_are_one_user(users_store):
    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        update_session(environ, lambda s: {"uid": 42})
        start_response("200 OK", [])
        return [b""]

    middleware = SessionMiddleware(app, store=users_store, secret=SECRET, user_key="uid")
    browser(middleware, "a", "1.1.1.1").get("/")
    assert len(list_sessions(middleware, user_id="42")) == 1
    assert len(list_sessions(middleware, user_id=42)) == 1


@pytest.mark.parametrize("value", [1.5, True, ["ann"], {"id": 1}])
def test_a_user_that_is_neither_str_nor_int_is_refused_at_update(users_store, value):
    seen = []

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        with pytest.raises(TypeError, match="'user_id'"):
            update_session(environ, lambda s: {"user_id": value})
        seen.append(dict(get_session(environ) or {}))
        start_response("200 OK", [])
        return [b""]

    browser(SessionMiddleware(app, store=users_store, secret=SECRET, user_key="user_id"), "a", "ip").get("/")
    assert seen == [{}]


def test_revoking_another_session_logs_that_browser_out(app):
    laptop = logged_in(app, "ann", "Firefox")
    phone = logged_in(app, "ann", "Safari")
    (other,) = [s for s in laptop.get("/list").json if not s["current"]]
    assert laptop.get(f"/revoke?handle={other['handle']}").json is True
    assert phone.get("/").json == {"n": 1}  # a new, anonymous session
    assert [s["current"] for s in laptop.get("/list").json] == [True]
    assert laptop.get(f"/revoke?handle={other['handle']}").json is False  # already gone


def test_revoking_the_own_session_is_a_logout(app):
    laptop = logged_in(app, "ann")
    (own,) = laptop.get("/list").json
    response = laptop.get(f"/revoke?handle={own['handle']}")
    assert response.json is True
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert list_sessions(app, user_id="ann") == []


@pytest.mark.parametrize("handle", ["", "garbage", "A" * 22, "%00", "x" * 10_000])
def test_a_garbage_handle_revokes_nothing(app, handle):
    laptop = logged_in(app, "ann")
    assert laptop.get("/revoke", params={"handle": handle}).json is False
    assert len(list_sessions(app, user_id="ann")) == 1


def test_c17_a_user_cannot_revoke_or_list_another_users_session(app):
    """C17: A revokes with B's handle, lists with B's ID from A's request: nothing of B's."""
    ann = logged_in(app, "ann")
    bob = logged_in(app, "bob")
    (bobs,) = bob.get("/list").json
    assert ann.get(f"/revoke?handle={bobs['handle']}").json is False
    assert bob.get("/list").json[0]["handle"] == bobs["handle"]  # still there
    captured: list[Any] = []

    def spy(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        captured.append(list_sessions(environ, user_id="bob"))
        captured.append(revoke_sessions(environ, user_id="bob"))
        start_response("200 OK", [])
        return [b""]

    middleware = SessionMiddleware(spy, store=app.settings.store, secret=SECRET, user_key="user_id")
    webtest.TestApp(middleware, extra_environ={"wsgi.url_scheme": "https"}).get(
        "/", headers={"Cookie": ann.cookies and f"session={ann.cookies['session']}"}
    )
    assert captured == [[], 0]
    assert len(list_sessions(app, user_id="bob")) == 1


def test_c16_a_handle_is_no_cookie_and_never_the_id(app, users_store):
    """C16: a handle sent as a cookie, signed or not, is a fresh session; no lookup by it."""
    laptop = logged_in(app, "ann")
    (own,) = laptop.get("/list").json
    session_id = laptop.cookies["session"][2:].rsplit(".", 1)[0]
    assert own["handle"] != session_id and session_id not in own["handle"]
    spy = SpyStore(users_store)
    middleware = SessionMiddleware(users_app, store=spy, secret=SECRET, user_key="user_id")
    for cookie in (own["handle"], sign_cookie(own["handle"], SECRET), f"s:{own['handle']}"):
        response = browser(middleware, "x", "y").get("/list", headers={"Cookie": f"session={cookie}"})
        assert response.json == []
    assert "get" not in spy.names()


def test_sign_out_everywhere_else_keeps_the_current_session(app):
    laptop = logged_in(app, "ann")
    others = [logged_in(app, "ann") for _ in range(3)]
    assert laptop.get("/revoke-others").json == 3
    assert [s["current"] for s in laptop.get("/list").json] == [True]
    for other in others:
        assert other.get("/").json == {"n": 1}


def test_sign_out_everywhere_ends_the_current_session_too(app):
    laptop = logged_in(app, "ann")
    logged_in(app, "ann")
    response = laptop.get("/revoke-all")
    assert response.json == 2
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert list_sessions(app, user_id="ann") == []


def test_revoke_sessions_from_the_middleware_after_a_password_change(app):
    sessions = [logged_in(app, "ann") for _ in range(3)]
    bob = logged_in(app, "bob")
    assert revoke_sessions(app, user_id="ann") == 3
    assert all(client.get("/").json == {"n": 1} for client in sessions)
    assert bob.get("/").json["user_id"] == "bob"


def test_logout_changing_user_and_removing_it_leave_the_index(app):
    laptop = logged_in(app, "ann")
    laptop.get("/as?user=bob")
    assert list_sessions(app, user_id="ann") == []
    assert len(list_sessions(app, user_id="bob")) == 1
    laptop.get("/as?user=")
    assert list_sessions(app, user_id="bob") == []
    laptop.get("/login?user=carol")
    laptop.get("/logout")
    assert list_sessions(app, user_id="carol") == []


def test_a_regenerate_moves_the_session_to_its_new_id_under_the_same_handle_list(app):
    laptop = logged_in(app, "ann")
    before = laptop.get("/list").json
    laptop.get("/login?user=ann")  # a second regenerate, same user
    after = laptop.get("/list").json
    assert len(before) == len(after) == 1
    assert after[0]["current"]


def test_c15_an_in_flight_request_of_a_revoked_session_cannot_write_it_back(users_store):
    """C15: it loaded the session before the revocation; its write-back finds no record."""
    started, release = [], []

    def slow(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        get_session(environ)
        started.append(True)
        release[0]()  # the revocation happens here, as another request would do it
        update_session(environ, lambda s: {"late": True})
        start_response("200 OK", [])
        return [b""]

    middleware = SessionMiddleware(users_app, store=users_store, secret=SECRET, user_key="user_id")
    phone = logged_in(middleware, "ann")
    release.append(lambda: revoke_sessions(middleware, user_id="ann"))
    slow_app = SessionMiddleware(slow, store=users_store, secret=SECRET, user_key="user_id")
    response = webtest.TestApp(slow_app, extra_environ={"wsgi.url_scheme": "https"}).get(
        "/", headers={"Cookie": f"session={phone.cookies['session']}"}
    )
    assert started and "Set-Cookie" not in response.headers
    assert list_sessions(middleware, user_id="ann") == []
    assert phone.get("/").json == {"n": 1}


def test_a_users_index_is_cleaned_when_it_doubles(users_store):
    """Sessions that end behind the index's back (expiry, eviction) leave their entries;
    a join that doubles the index drops them."""
    middleware = SessionMiddleware(users_app, store=users_store, secret=SECRET, user_key="user_id")
    for _ in range(100):
        cookie = logged_in(middleware, "ann").cookies["session"]
        users_store.delete(cookie[2:].rsplit(".", 1)[0])  # as if it expired
    for _ in range(30):
        logged_in(middleware, "ann")
    # The join that made 128 entries dropped the 100 dead ones: 28 live, then 2 more.
    assert len(users_store.user_sessions("ann")) == 30
    assert len(list_sessions(middleware, user_id="ann")) == 30


def test_only_a_change_of_user_costs_a_store_call_more(users_store):
    spy = SpyStore(users_store)
    middleware = SessionMiddleware(users_app, store=spy, secret=SECRET, user_key="user_id")
    client = browser(middleware, "x", "y")
    client.get("/")
    spy.calls.clear()
    client.get("/")
    assert spy.names() == ["get", "compare_and_set"]  # as without user_key
    spy.calls.clear()
    client.get("/login?user=ann")
    assert spy.names() == ["get", "compare_and_set", "set", "add_user_session"]
    spy.calls.clear()
    client.get("/")
    assert spy.names() == ["get", "compare_and_set"]
    spy.calls.clear()
    client.get("/logout")
    assert spy.names() == ["get", "compare_and_set", "remove_user_sessions"]


def test_sessions_of_a_user_need_user_key(users_store):
    middleware = SessionMiddleware(users_app, store=users_store, secret=SECRET)
    with pytest.raises(ValueError, match="user_key"):
        list_sessions(middleware, user_id="ann")


def test_an_unknown_signed_id_lists_nothing(app):
    client = browser(app, "x", "y")
    client.set_cookie("session", sign_cookie(new_session_id(), SECRET))
    assert client.get("/list").json == []


def test_on_redis_only_a_login_or_logout_costs_a_round_trip_more(redis_server, redis_client):
    """Counted by Redis itself (INFO commandstats) and by redis-py's sends."""
    from unittest import mock

    from redis.connection import AbstractConnection

    store = create_redis_store(url=redis_server.url)
    middleware = SessionMiddleware(users_app, store=store, secret=SECRET, user_key="user_id")
    client = browser(middleware, "x", "y")
    client.get("/")
    client.get("/")  # the script is loaded

    def cost(path: str) -> tuple[int, dict[str, int]]:
        redis_client.config_resetstat()
        send = AbstractConnection.send_packed_command
        with mock.patch.object(
            AbstractConnection, "send_packed_command", autospec=True, side_effect=send
        ) as sent:
            client.get(path)
        stats = redis_client.info("commandstats")
        calls = {name.removeprefix("cmdstat_"): entry["calls"] for name, entry in stats.items()}
        calls.pop("info", None)
        calls.pop("config|resetstat", None)
        return sent.call_count, calls

    plain = cost("/")
    assert plain == (2, {"get": 1, "evalsha": 1, "getrange": 1, "set": 1})  # as without user_key
    login = cost("/login?user=ann")
    assert login[0] == 4  # GET, the marker's compare-and-set, the new session's SET, the index
    assert login[1]["hset"] == 1 and login[1]["hlen"] == 1
    assert cost("/") == plain
    logout = cost("/logout")
    assert logout[0] == 3 and logout[1]["hdel"] == 1


def test_on_redis_a_thousand_sessions_are_listed_in_two_round_trips(redis_server, redis_client):
    from unittest import mock

    from redis.connection import AbstractConnection

    store = create_redis_store(url=redis_server.url)
    middleware = SessionMiddleware(users_app, store=store, secret=SECRET, user_key="user_id")
    record = encode_record(time.time(), '{"user_id":"ann"}')
    for _ in range(1000):
        session_id = new_session_id()
        store.set(session_id, record, 600)
        store.add_user_session("ann", session_id, "{}")
    send = AbstractConnection.send_packed_command
    with mock.patch.object(
        AbstractConnection, "send_packed_command", autospec=True, side_effect=send
    ) as sent:
        listed = list_sessions(middleware, user_id="ann")
    assert len(listed) == 1000
    assert sent.call_count == 2  # HGETALL, then every GET and PTTL pipelined
