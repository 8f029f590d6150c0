"""The Redis store against real servers: standalone, outage and restart, Cluster, Sentinel."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import pytest
import redis
import webtest
from conftest import SECRET, SpyStore, counter_app
from redis.cluster import RedisCluster
from redis.connection import AbstractConnection
from redis.sentinel import Sentinel
from redis_servers import RedisServer, require_redis, start_replicas, wait_until, writes_reach

from wsgi_session import (
    SessionMiddleware,
    SessionStoreError,
    create_redis_store,
    destroy_session,
    get_session,
    regenerate_session,
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
    calls.pop("replconf", None)  # a replica's acknowledgements, not the app's
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
        ({"min_replicas": -1}, "min_replicas"),
        ({"min_replicas": True}, "min_replicas"),
        ({"min_replicas": "1"}, "min_replicas"),
        ({"replica_timeout": 0}, "replica_timeout"),
        ({"min_replicas": 1, "replica_timeout": 2.0}, "replica_timeout .* shorter than"),
        ({"client": redis.Redis(socket_timeout=0.5), "min_replicas": 1}, "replica_timeout .* shorter than"),
    ],
)
def test_bad_options_fail_at_construction(options, message):
    with pytest.raises(ValueError, match=message):
        create_redis_store(**options)


def test_a_plain_server_waits_for_no_replica_unless_told():
    assert create_redis_store(url="redis://127.0.0.1:1/0").min_replicas == 0
    assert create_redis_store(url="redis://127.0.0.1:1/0", min_replicas=2).min_replicas == 2


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
    store.set(session_id, '{"n":1}', 60)
    first = store.get(session_id)
    assert store.compare_and_set(session_id, first.version, '{"n":2}', 120)
    assert store.get(session_id).payload == b'{"n":2}'
    assert 60 < redis_client.ttl("session:" + session_id) <= 120
    # ``first`` is stale now: nothing is written.
    assert not store.compare_and_set(session_id, first.version, '{"n":3}', 60)
    assert store.get(session_id).payload == b'{"n":2}'


def test_compare_and_set_with_no_payload_deletes(store):
    session_id = new_session_id()
    store.set(session_id, '{"n":1}', 60)
    version = store.get(session_id).version
    assert not store.compare_and_set(session_id, b"another", None, 60)
    assert store.get(session_id) is not None
    assert store.compare_and_set(session_id, version, None, 60)
    assert store.get(session_id) is None


def test_compare_and_set_of_a_deleted_session_writes_nothing(store):
    session_id = new_session_id()
    store.set(session_id, '{"n":1}', 60)
    version = store.get(session_id).version
    store.delete(session_id)
    assert not store.compare_and_set(session_id, version, '{"n":2}', 60)
    assert not store.compare_and_set(session_id, version, None, 60)
    assert store.get(session_id) is None


def test_touch_renews_the_ttl_and_never_creates(store, redis_client):
    session_id = new_session_id()
    store.touch(session_id, 60)
    assert store.get(session_id) is None
    store.set(session_id, '{"n":1}', 5)
    store.touch(session_id, 60)
    assert redis_client.ttl("session:" + session_id) > 5


@pytest.mark.parametrize("payload", ['{"n":1}', "{}", '{"data":"' + "x" * 100_000 + '"}'])
def test_the_key_holds_the_payload_behind_a_version_of_constant_size(store, redis_client, payload):
    session_id = new_session_id()
    store.set(session_id, payload, 60)
    value = redis_client.get("session:" + session_id)
    assert re.fullmatch(rb'\{"v":"[A-Za-z0-9_-]{22}",', value[:30])
    assert value[30:] == payload[1:].encode()
    stored = store.get(session_id)
    assert stored.payload == payload.encode()
    assert stored.version == value[6:28]
    assert store.compare_and_set(session_id, stored.version, payload, 60)
    assert store.get(session_id).version not in (stored.version, None)  # a new one on every write


def test_a_payload_that_is_not_a_json_object_is_refused(store):
    with pytest.raises(ValueError, match="JSON objects"):
        store.set(new_session_id(), "[1]", 60)
    with pytest.raises(ValueError, match="JSON objects"):
        store.compare_and_set(new_session_id(), b"v", "one", 60)


def test_a_key_of_another_type_is_a_fresh_session_and_logged(make_client, redis_client, caplog):
    """SECURITY.md E12: WRONGTYPE is not a store failure: the key is not a session."""
    client = make_client()
    session_id = new_session_id()
    redis_client.rpush("session:" + session_id, "someone else's list")
    with caplog.at_level(logging.WARNING, logger="wsgi_session"):
        response = client.get("/", headers=cookie_header(session_id))
    assert response.status_int == 200
    assert response.text == "1"
    assert "stored data is not a session" in caplog.text
    assert redis_client.lrange("session:" + session_id, 0, -1) == [b"someone else's list"]


@pytest.mark.parametrize("size", [10_000, 100_000])
def test_an_update_sends_the_session_once(make_client, redis_client, size):
    """Bytes Redis receives per updating request: at most 1.1 times the session (issue 21)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1, "padding": "x" * size})
        start_response("200 OK", [])
        return [b""]

    client = make_client(app, max_age=MAX_AGE)
    client.get("/")
    client.get("/")  # the script is loaded
    (key,) = session_keys(redis_client)
    stored = len(redis_client.get(key))
    before = redis_client.info("stats")["total_net_input_bytes"]
    for _ in range(10):
        client.get("/")
    # INFO's own request is counted too: some 30 bytes, well within the margin.
    per_request = (redis_client.info("stats")["total_net_input_bytes"] - before) / 10
    assert stored > size
    assert per_request <= 1.1 * stored, (per_request, stored)


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
    # Two round trips, GET and EVALSHA; Redis also counts the script's own GETRANGE and
    # SET. The script reads the value's head only: its version, not the session.
    assert commands(redis_client) == {"get": 1, "evalsha": 1, "getrange": 1, "set": 1}


def test_a_server_that_lost_the_script_is_given_it_again(make_client, redis_client):
    """A restart or a failover to a replica leaves Redis without the script: NOSCRIPT, load, send again."""
    client = make_client()
    assert [client.get("/").text for _ in range(2)] == ["1", "2"]
    redis_client.script_flush()
    redis_client.config_resetstat()
    assert client.get("/").text == "3"
    assert commands(redis_client) == {"get": 1, "evalsha": 2, "script|load": 1, "getrange": 1, "set": 1}


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


def halting_app(server: RedisServer) -> Callable[..., list[bytes]]:
    """The counter, with ``/halt``: Redis goes away between the request's read and its write."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/halt":
            get_session(environ)
            server.stop()
        return counter_app(environ, start_response)

    return app


def test_outage_fails_loudly_and_recovers_without_a_restart(make_client, tmp_path):
    require_redis()
    # This server saves on shutdown, so the session survives the restart.
    server = RedisServer(tmp_path, "save 3600 1\n")
    app = halting_app(server)
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


def test_e11_outage_mode_on_a_stopped_server_keeps_the_users_session(make_client, tmp_path, caplog):
    """``on_store_error="anonymous"`` against a real outage: Redis stopped, then back."""
    require_redis()
    server = RedisServer(tmp_path, "save 3600 1\n")  # saved on shutdown: back as it was
    app = halting_app(server)
    server.start()
    try:
        store = create_redis_store(url=server.url, socket_timeout=1, socket_connect_timeout=1)
        client = make_client(app, store=store, on_store_error="anonymous")
        assert client.get("/").text == "1"
        assert client.get("/").text == "2"
        cookie = client.cookies["session"]

        with caplog.at_level(logging.ERROR, logger="wsgi_session"):
            halted = client.get("/halt")  # loaded, then the write-back fails
            assert halted.text == "3" and "Set-Cookie" not in halted.headers
            down = client.get("/")  # the read fails: an empty session, never stored
            assert down.text == "1" and "Set-Cookie" not in down.headers
        assert client.cookies["session"] == cookie
        assert [r.levelname for r in caplog.records if "unavailable" in r.getMessage()] == ["ERROR"]

        server.start()
        assert client.get("/").text == "3"  # the session as it was before the outage
    finally:
        server.stop()


# -- a lost reply ----------------------------------------------------------------


class LosingProxy:
    """A TCP relay to Redis that can lose one reply.

    Armed with a command name, it lets the next request that carries it reach Redis
    and run, then drops the connection before the reply gets back: what a network
    failure between the two does.
    """

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lose_reply_to: bytes | None = None
        self.before_drop: Callable[[], object] = lambda: None
        self.lost = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.target)) as server:
            while True:
                for ready in select.select([client, server], [], [])[0]:
                    data = ready.recv(65536)
                    if not data:
                        return
                    if ready is server:
                        client.sendall(data)
                        continue
                    server.sendall(data)
                    if self.lose_reply_to is not None and self.lose_reply_to in data:
                        self.lose_reply_to = None
                        server.recv(65536)  # the reply: the command has run
                        self.before_drop()
                        self.lost += 1
                        return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy(redis_server: RedisServer, redis_client: redis.Redis) -> Iterator[LosingProxy]:
    relay = LosingProxy(redis_server.port)
    try:
        yield relay
    finally:
        relay.close()


def test_a_write_whose_reply_was_lost_is_sent_again_and_applies_once(make_client, proxy):
    client = make_client(store=create_redis_store(url=f"redis://127.0.0.1:{proxy.port}/0"))
    assert [client.get("/").text for _ in range(2)] == ["1", "2"]  # the script is loaded
    proxy.lose_reply_to = b"EVALSHA"
    # Sent again, the script finds this very write in place: applied once, not twice.
    assert client.get("/").text == "3"
    assert proxy.lost == 1
    assert client.get("/read").text == "{'visits': 3}"


def test_a_lost_reply_and_another_write_meanwhile_fail_the_request(make_client, proxy, redis_server):
    """Then nobody knows whether the first try applied: replaying it could count it twice."""
    client = make_client(store=create_redis_store(url=f"redis://127.0.0.1:{proxy.port}/0"))
    other = make_client(store=create_redis_store(url=redis_server.url))
    assert [client.get("/").text for _ in range(2)] == ["1", "2"]
    other.cookiejar = client.cookiejar
    proxy.before_drop = lambda: other.get("/")  # 4, after this request's 3
    proxy.lose_reply_to = b"EVALSHA"
    with pytest.raises(SessionStoreError, match="may or may not have been applied"):
        client.get("/")
    assert other.get("/read").text == "{'visits': 4}"


# -- writes that wait for a replica ---------------------------------------------


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    """A master and its replica, of this test's own."""
    require_redis()
    master = RedisServer(tmp_path / "master")
    master.start()
    try:
        (replica,) = start_replicas(tmp_path, master, 1)
        try:
            yield master, replica
        finally:
            replica.stop()
    finally:
        master.stop()


def account_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The counter, with ``/login`` (regenerate) and ``/logout`` (destroy)."""
    if environ["PATH_INFO"] == "/login":
        regenerate_session(environ)
    elif environ["PATH_INFO"] == "/logout":
        destroy_session(environ)
    else:
        return counter_app(environ, start_response)
    start_response("200 OK", [])
    return [b""]


def test_every_write_is_on_the_replica_when_the_request_ends(make_client, replicated):
    """Each write and its WAIT go in one round trip; once answered, the replica has it."""
    master, replica = replicated
    store = create_redis_store(url=master.url, min_replicas=1)
    client = make_client(account_app, store=store, rolling=True)
    with master.client() as on_master, replica.client() as on_replica:

        def keys() -> list[bytes]:
            assert sorted(on_master.keys()) == sorted(on_replica.keys())
            return on_master.keys()

        def round_trips(path: str) -> tuple[int, dict[str, int]]:
            """Round trips of one request (redis-py sends once per round trip), commands run."""
            on_master.config_resetstat()
            send = AbstractConnection.send_packed_command
            with mock.patch.object(
                AbstractConnection, "send_packed_command", autospec=True, side_effect=send
            ) as sent:
                client.get(path)
            return sent.call_count, commands(on_master)

        store.client.ping()  # connect first: the handshake is not the request's
        assert round_trips("/") == (1, {"set": 1, "wait": 1})
        client.get("/")  # the script is loaded
        assert round_trips("/") == (2, {"get": 1, "evalsha": 1, "getrange": 1, "set": 1, "wait": 1})
        assert on_replica.get(keys()[0]) == on_master.get(keys()[0])
        assert round_trips("/read") == (2, {"get": 1, "expire": 1, "wait": 1})
        assert on_replica.ttl(keys()[0]) > MAX_AGE - 10
        (before,) = keys()
        # The old ID becomes a marker of the new one (regenerate_window), by the script.
        assert round_trips("/login")[1] == {"get": 1, "evalsha": 1, "getrange": 1, "set": 2, "wait": 2}
        assert len(set(keys()) - {before}) == 1  # the new ID
        assert on_replica.ttl(before) <= 60
        # The logout deletes the session with a compare-and-set, so no racing update revives it.
        assert round_trips("/logout") == (2, {"get": 1, "evalsha": 1, "getrange": 1, "del": 1, "wait": 1})
        assert keys() == [before]  # the marker alone, for the rest of its window


def test_a_write_no_replica_acknowledges_fails_until_one_is_back(make_client, replicated):
    master, replica = replicated
    store = create_redis_store(url=master.url, min_replicas=1, replica_timeout=0.5)
    client = make_client(store=store)
    assert client.get("/").text == "1"
    replica.stop()
    with pytest.raises(SessionStoreError, match=r"reached 0 of 1 replicas within 0\.5 s: it is not durable"):
        client.get("/")
    assert client.get("/read").text == "{'visits': 2}"  # reads go on; the write stayed on the master
    replica.start()
    wait_until(lambda: writes_reach(master, 1), "no resync")
    assert client.get("/").text == "3"


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
            store.set(session_id, '{"n":1}', 60)
            version = store.get(session_id).version
            assert store.compare_and_set(session_id, version, '{"n":2}', 60)
            assert not store.compare_and_set(session_id, version, '{"n":3}', 60)
            stored = store.get(session_id)
            assert stored.payload == b'{"n":2}'
            assert store.compare_and_set(session_id, stored.version, None, 60)
            assert store.get(session_id) is None
        run_through_middleware_with_a_conflict(store)
    finally:
        cluster.close()


def test_sentinel_master_client(redis_sentinel, redis_client):
    """A Sentinel master without a replica: by default writes wait for one, and fail."""
    sentinel = Sentinel([("127.0.0.1", redis_sentinel.port)], socket_timeout=2)
    master = sentinel.master_for("mymaster", socket_timeout=2)
    try:
        durable = create_redis_store(client=master, replica_timeout=0.05)
        assert durable.min_replicas == 1
        with pytest.raises(SessionStoreError, match=r"reached 0 of 1 replicas within 0\.05 s"):
            durable.set(new_session_id(), "{}", 60)

        client = run_through_middleware_with_a_conflict(create_redis_store(client=master, min_replicas=0))
        assert client.get("/").text == "4"
        assert len(session_keys(redis_client)) == 2  # in the master the sentinel named
    finally:
        master.close()
