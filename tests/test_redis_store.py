"""The Redis store against real servers: standalone, outage and restart, Cluster, Sentinel."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import subprocess
import sys
from typing import Any, Callable

import pytest
import redis
import webtest
from conftest import SECRET, SpyStore, counter_app
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel
from redis_servers import RedisServer, require_redis

from wsgi_session import (
    SessionMiddleware,
    SessionStoreError,
    create_redis_store,
    get_session,
    sign_cookie,
    update_session,
)
from wsgi_session.redis_store import RedisStore
from wsgi_session.signing import new_session_id

MAX_AGE = 1000


@pytest.fixture
def store(redis_server: RedisServer, redis_client: redis.Redis) -> SpyStore:
    """The shared server's store, emptied for each test (replaces the memory store)."""
    return SpyStore(create_redis_store(url=redis_server.url))


def cookie_header(session_id: str) -> dict[str, str]:
    return {"Cookie": f"session={sign_cookie(session_id, SECRET)}"}


def session_keys(client: redis.Redis) -> list[bytes]:
    return client.keys("session:*")


def commands(client: redis.Redis) -> dict[str, int]:
    """Calls per command since the last ``CONFIG RESETSTAT``, from Redis's own count."""
    stats = client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): entry["calls"] for name, entry in stats.items()}
    calls.pop("info", None)
    calls.pop("config|resetstat", None)
    return calls


# -- without a server -----------------------------------------------------------


def test_importing_wsgi_session_does_not_import_redis():
    code = "import sys, wsgi_session; assert 'redis' not in sys.modules, 'redis was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prefix": ""}, "prefix"),
        ({"prefix": None}, "prefix"),
        ({"socket_timeout": 0}, "socket_timeout"),
        ({"socket_connect_timeout": None}, "socket_connect_timeout"),
        ({"url": "redis://h/0", "port": 6380}, "url excludes"),
        ({"client": redis.Redis(), "url": "redis://h/0"}, "client excludes"),
        ({"client": redis.Redis(), "host": "elsewhere"}, "client excludes"),
        ({"client": redis.Redis(decode_responses=True)}, "decode_responses"),
        ({"url": "http://h/0"}, "redis://"),
    ],
)
def test_bad_options_fail_at_construction(options, message):
    with pytest.raises(ValueError, match=message):
        create_redis_store(**options)


def test_repr_hides_the_url_password():
    store = create_redis_store(url="redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in repr(store)


def test_slow_redis_fails_within_the_socket_timeout():
    """A server that accepts but never answers: the request fails instead of hanging."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        store = create_redis_store(host="127.0.0.1", port=port, socket_timeout=0.2)
        client = webtest.TestApp(SessionMiddleware(counter_app, store=store, secret=SECRET))
        with pytest.raises(SessionStoreError) as raised:
            client.get("/read", headers=cookie_header(new_session_id()))
        assert isinstance(raised.value.__cause__, redis.TimeoutError)
        assert client.get("/plain").text == "plain"


# -- the store's own operations -----------------------------------------------


def test_get_of_an_absent_session_is_none(store):
    assert store.get(new_session_id()) is None


def test_set_then_get_returns_the_payload_with_redis_ttl(store, redis_client):
    session_id = new_session_id()
    store.set(session_id, '{"created":1.0,"data":{}}', 60)
    assert store.get(session_id).payload == b'{"created":1.0,"data":{}}'
    assert 0 < redis_client.ttl("session:" + session_id) <= 60


def test_compare_and_set_replaces_only_the_version_read(store, redis_client):
    session_id = new_session_id()
    store.set(session_id, "one", 60)
    first = store.get(session_id)
    assert store.compare_and_set(session_id, first.version, "two", 120)
    assert store.get(session_id).payload == b"two"
    assert 60 < redis_client.ttl("session:" + session_id) <= 120
    # ``first`` is stale now: nothing is written.
    assert not store.compare_and_set(session_id, first.version, "three", 60)
    assert store.get(session_id).payload == b"two"


def test_compare_and_set_with_no_payload_deletes(store):
    session_id = new_session_id()
    store.set(session_id, "one", 60)
    version = store.get(session_id).version
    assert not store.compare_and_set(session_id, b"another", None, 60)
    assert store.get(session_id) is not None
    assert store.compare_and_set(session_id, version, None, 60)
    assert store.get(session_id) is None


def test_compare_and_set_of_a_deleted_session_writes_nothing(store):
    session_id = new_session_id()
    store.set(session_id, "one", 60)
    version = store.get(session_id).version
    store.delete(session_id)
    assert not store.compare_and_set(session_id, version, "two", 60)
    assert not store.compare_and_set(session_id, version, None, 60)
    assert store.get(session_id) is None


def test_touch_renews_the_ttl_and_never_creates(store, redis_client):
    session_id = new_session_id()
    store.touch(session_id, 60)
    assert store.get(session_id) is None
    store.set(session_id, "one", 5)
    store.touch(session_id, 60)
    assert redis_client.ttl("session:" + session_id) > 5


# -- through the middleware ----------------------------------------------------


def test_session_round_trip_stores_json_under_the_prefix_with_max_age_ttl(make_client, redis_client):
    client = make_client(max_age=MAX_AGE)
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
    (key,) = session_keys(redis_client)
    assert MAX_AGE - 10 < redis_client.ttl(key) <= MAX_AGE
    record = json.loads(redis_client.get(key))
    assert record["data"] == {"visits": 3}
    assert isinstance(record["created"], float)


def test_rolling_session_renews_the_redis_ttl(make_client, redis_client):
    client = make_client(max_age=MAX_AGE, rolling=True)
    client.get("/")
    (key,) = session_keys(redis_client)
    redis_client.expire(key, 5)
    assert client.get("/read").text == "{'visits': 1}"
    assert redis_client.ttl(key) > MAX_AGE - 10


def test_app_key_equal_to_a_session_id_does_not_collide(make_client, redis_server, redis_client):
    client = make_client(store=create_redis_store(url=redis_server.url, prefix="myapp:session:"))
    client.get("/")
    (key,) = redis_client.keys("myapp:session:*")
    session_id = key.decode().removeprefix("myapp:session:")
    redis_client.set(session_id, "the app's own value")
    assert client.get("/").text == "2"
    assert redis_client.get(session_id) == b"the app's own value"


@pytest.mark.parametrize(
    "value", [b"{", b"[]", b"null", b"\xff\xfe{}", b'{"created":NaN,"data":{}}', b"[" * 100_000]
)
def test_corrupt_value_is_a_missing_session_and_logged(make_client, redis_client, caplog, value):
    client = make_client()
    session_id = new_session_id()
    redis_client.set("session:" + session_id, value)
    with caplog.at_level(logging.WARNING, logger="wsgi_session"):
        response = client.get("/read", headers=cookie_header(session_id))
    assert response.status_int == 200
    assert response.text == "{}"
    assert "stored data is not a session" in caplog.text
    assert session_id not in caplog.text


def test_read_costs_one_command_and_update_two(make_client, redis_client):
    client = make_client(max_age=MAX_AGE)
    client.get("/")
    client.get("/")  # the script is loaded into Redis on its first use
    redis_client.config_resetstat()
    client.get("/read")
    assert commands(redis_client) == {"get": 1}
    redis_client.config_resetstat()
    client.get("/")
    # Two round trips, GET and EVALSHA; Redis also counts the script's own GET and SET.
    assert commands(redis_client) == {"get": 1 + 1, "evalsha": 1, "set": 1}


def test_new_session_costs_one_command_and_rolling_read_two(make_client, store, redis_client):
    client = make_client(max_age=MAX_AGE, rolling=True)
    store.store.client.ping()  # connect first: the connection's handshake is not the request's
    redis_client.config_resetstat()
    client.get("/")
    assert commands(redis_client) == {"set": 1}
    redis_client.config_resetstat()
    client.get("/read")
    assert commands(redis_client) == {"get": 1, "expire": 1}


def test_session_of_another_store_instance_is_shared(make_client, redis_server):
    """Two stores on one Redis stand for two processes: the session moves between them."""
    first = make_client(store=create_redis_store(url=redis_server.url))
    second = make_client(store=create_redis_store(url=redis_server.url))
    first.get("/")
    second.cookiejar = first.cookiejar
    assert second.get("/").text == "2"


# -- outage and recovery -------------------------------------------------------


def test_outage_fails_loudly_and_recovers_without_a_restart(make_client, tmp_path):
    require_redis()
    # This server saves on shutdown, so the session survives the restart.
    server = RedisServer(tmp_path, "save 3600 1\n")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/halt":  # Redis goes away between the read and the write
            get_session(environ)
            server.stop()
        return counter_app(environ, start_response)

    server.start()
    try:
        store = SpyStore(create_redis_store(url=server.url, socket_timeout=1, socket_connect_timeout=1))
        client = make_client(app, store=store)
        assert client.get("/").text == "1"

        with pytest.raises(SessionStoreError) as raised:
            client.get("/halt")
        assert isinstance(raised.value.__cause__, redis.ConnectionError)
        store.calls.clear()
        with pytest.raises(SessionStoreError) as raised:
            client.get("/")
        assert isinstance(raised.value.__cause__, redis.ConnectionError)
        assert store.names() == ["get"]  # no silent new session
        assert client.get("/plain").text == "plain"

        server.start()
        assert client.get("/").text == "2"
        # A restart between two requests leaves a dead connection in the pool.
        server.stop()
        server.start()
        assert client.get("/").text == "3"
    finally:
        server.stop()


# -- Redis Cluster and Sentinel ------------------------------------------------


def ids_on_every_node(cluster: RedisCluster, store: RedisStore) -> list[str]:
    """One session ID whose key lives on each master, so every node runs the script."""
    by_node: dict[str, str] = {}
    while len(by_node) < len(cluster.get_primaries()):
        session_id = new_session_id()
        node = cluster.get_node_from_key(store.prefix + session_id)
        by_node.setdefault(node.name, session_id)
    return list(by_node.values())


def race_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """``/race`` increments, then lets another request of the session increment first."""
    if environ["PATH_INFO"] == "/race":
        update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})
        other = webtest.TestApp(environ["test.middleware"], extra_environ=environ["test.extra"])
        other.get("/", headers={"Cookie": environ["HTTP_COOKIE"]})
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"raced"]
    return counter_app(environ, start_response)


def run_through_middleware_with_a_conflict(store: RedisStore) -> webtest.TestApp:
    extra = {"wsgi.url_scheme": "https", "HTTP_HOST": "example.com"}
    middleware = SessionMiddleware(race_app, store=store, secret=SECRET)
    client = webtest.TestApp(
        middleware, extra_environ={**extra, "test.middleware": middleware, "test.extra": extra}
    )
    assert client.get("/").text == "1"
    spy = SpyStore(store)
    middleware.settings = dataclasses.replace(middleware.settings, store=spy)
    client.get("/race")  # the inner request makes 2; the outer's write conflicts, replays: 3
    assert spy.names().count("compare_and_set") == 3  # inner 1, outer 2
    assert client.get("/read").text == "{'visits': 3}"
    return client


def test_cluster_session_round_trip_and_compare_and_set(redis_cluster):
    node = redis_cluster[0]
    cluster = RedisCluster(host="127.0.0.1", port=node.port, socket_timeout=2)
    try:
        store = create_redis_store(client=cluster)
        for session_id in ids_on_every_node(cluster, store):
            store.set(session_id, "one", 60)
            version = store.get(session_id).version
            assert store.compare_and_set(session_id, version, "two", 60)
            assert not store.compare_and_set(session_id, version, "three", 60)
            assert store.get(session_id).payload == b"two"
            assert store.compare_and_set(session_id, b"two", None, 60)
            assert store.get(session_id) is None
        run_through_middleware_with_a_conflict(store)
    finally:
        cluster.close()


def test_sentinel_master_client(redis_sentinel, redis_client):
    sentinel = Sentinel([("127.0.0.1", redis_sentinel.port)], socket_timeout=2)
    master = sentinel.master_for("mymaster", socket_timeout=2)
    try:
        client = run_through_middleware_with_a_conflict(create_redis_store(client=master))
        assert client.get("/").text == "4"
        assert len(session_keys(redis_client)) == 1  # in the master the sentinel named
    finally:
        master.close()
