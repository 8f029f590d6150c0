"""A failover loses no acknowledged write: Sentinel and Cluster, under load (row E9).

Threads increment one session's counter through the middleware while a failover
runs, and another thread logs sessions out one by one. A request answered 200 is
acknowledged; one that raised failed. Afterwards, on the new master:

- acknowledged <= stored <= acknowledged + failed increments: a failed write may
  have been applied or not (its reply was lost, or it could not be made durable);
- the counter is at least every value a 200 showed;
- every session whose logout was answered 200 is gone.

Each test prints what it measured: requests acknowledged and failed, and the
window: from the failover to the last failure, and from the moment the new master
could take a durable write (it has a replica in sync) to the last failure.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import redis
from conftest import SECRET
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel
from redis_servers import (
    MASTER_NAME,
    RedisServer,
    in_sync,
    require_redis,
    start_cluster,
    start_replicas,
    start_sentinel,
    stop_all,
    wait_until,
)
from test_concurrency import call, session_cookie, session_id

from wsgi_session import SessionMiddleware, create_redis_store, destroy_session, update_session

FAULT_BOUND = 30.0  # seconds any one step of a failover may take before the test fails
AFTER = 1.0  # seconds of load once the new master takes durable writes


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """``/`` counts visits, ``/logout`` destroys the session."""
    if environ["PATH_INFO"] == "/logout":
        destroy_session(environ)
        body = "bye"
    else:
        body = str(update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})["visits"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


@dataclass
class Outcome:
    started: float
    ended: float
    ok: bool
    error: str = ""


@dataclass
class Load:
    """Threads incrementing one session, and one logging other sessions out, until stopped."""

    middleware: Any
    cookie: str
    logouts: list[str]
    threads: int = 4
    outcomes: list[Outcome] = field(default_factory=list)
    shown: list[int] = field(default_factory=list)  # the counter values answered 200
    logged_out: list[str] = field(default_factory=list)  # cookies whose logout was answered 200
    restarted: int = 0  # 200s that started a new session: the stored one had vanished
    stop: threading.Event = field(default_factory=threading.Event)

    def increment(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                status, headers, body = call(self.middleware, "/", self.cookie)
            except Exception as error:
                self.outcomes.append(Outcome(started, time.monotonic(), ok=False, error=str(error)[:90]))
                continue
            if status != "200 OK":  # never expected: the app answers 200 or the middleware raises
                self.outcomes.append(Outcome(started, time.monotonic(), ok=False, error=status))
                continue
            self.outcomes.append(Outcome(started, time.monotonic(), ok=True))
            self.shown.append(int(body))
            if "Set-Cookie" in headers and session_cookie(headers) != self.cookie:
                self.restarted += 1

    def log_out(self) -> None:
        for cookie in self.logouts:
            if self.stop.wait(0.15):
                return
            try:
                status, _headers, _body = call(self.middleware, "/logout", cookie)
            except Exception:
                continue
            if status == "200 OK":
                self.logged_out.append(cookie)

    @contextmanager
    def running(self) -> Iterator[Load]:
        workers = [threading.Thread(target=self.increment) for _ in range(self.threads)]
        workers.append(threading.Thread(target=self.log_out))
        for worker in workers:
            worker.start()
        try:
            wait_until(lambda: sum(o.ok for o in self.outcomes) >= 50, "the load did not start")
            yield self
        finally:
            self.stop.set()
            for worker in workers:
                worker.join(FAULT_BOUND)

    @property
    def acknowledged(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(not o.ok for o in self.outcomes)


@dataclass
class Fault:
    """When the failover began, and when the new master could first take a durable write."""

    began: float = 0.0
    durable: float | None = None


def watch_for_durable_master(fault: Fault, durable: Callable[[], bool]) -> threading.Thread:
    def watch() -> None:
        while fault.durable is None and time.monotonic() - fault.began < FAULT_BOUND:
            try:
                if durable():
                    fault.durable = time.monotonic()
            except redis.RedisError:
                pass
            time.sleep(0.02)

    thread = threading.Thread(target=watch)
    thread.start()
    return thread


def wait_until_replica(server: RedisServer) -> None:
    """Wait until the old master ``server`` is a replica, in sync with the new one."""
    wait_until(
        lambda: server.info("replication").get("master_link_status") == "up",
        "the old master did not become a replica",
        FAULT_BOUND,
    )


def stored_visits(server: RedisServer, key: str) -> int:
    """The session's visit counter on ``server``; 0 if the session is gone."""
    with server.client() as client:
        value = client.get(key)
    return 0 if value is None else int(json.loads(value)["data"]["visits"])


def key_exists(server: RedisServer) -> Callable[[str], bool]:
    def exists(key: str) -> bool:
        with server.client() as client:
            return bool(client.exists(key))

    return exists


def report(name: str, load: Load, fault: Fault, stored: int, exists: Callable[[str], bool]) -> str:
    failures = [o for o in load.outcomes if not o.ok]
    if failures:
        first, last = failures[0].started - fault.began, failures[-1].ended - fault.began
        window = f"failures from {first:+.2f} s to {last:+.2f} s"
    else:
        window = "no failure"
    if failures and fault.durable is not None:
        window += f", the last {max(0.0, failures[-1].ended - fault.durable):.2f} s after a durable master"
    durable = "never" if fault.durable is None else f"{fault.durable - fault.began:+.2f} s"
    lost, undone = lost_writes(load, stored, exists)
    return (
        f"{name}: {load.acknowledged} increments acknowledged, {load.failed} failed, {stored} stored,"
        f" {lost} lost; {len(load.logged_out)} of {len(load.logouts)} logouts acknowledged, {undone} undone;"
        f" durable master at {durable}; {window}; errors: {Counter(o.error for o in failures)}"
    )


def lost_writes(load: Load, stored: int, exists: Callable[[str], bool]) -> tuple[int, int]:
    """Acknowledged increments missing from ``stored``, and acknowledged logouts undone."""
    lost = max(load.acknowledged - stored, max(load.shown) - stored, 0)
    undone = sum(exists("session:" + session_id(cookie)) for cookie in load.logged_out)
    return lost, undone


def assert_nothing_acknowledged_was_lost(load: Load, stored: int, exists: Callable[[str], bool]) -> None:
    assert load.failed > 0 or load.restarted == 0  # the fault must have been felt, or be harmless
    assert lost_writes(load, stored, exists) == (0, 0)
    assert stored <= load.acknowledged + load.failed
    assert load.restarted == 0
    # Back to normal without a restart: the last second of requests all succeeded.
    last = [o for o in load.outcomes if o.started > load.outcomes[-1].ended - AFTER / 2]
    assert last and all(o.ok for o in last)


def new_sessions(middleware: Any, count: int, where: Callable[[str], bool] = lambda key: True) -> list[str]:
    """Cookies of ``count`` new sessions whose key satisfies ``where``."""
    cookies: list[str] = []
    while len(cookies) < count:
        cookie = session_cookie(call(middleware, "/")[1])
        if where("session:" + session_id(cookie)):
            cookies.append(cookie)
    return cookies


# -- Sentinel ----------------------------------------------------------------------


@pytest.fixture
def sentinel_servers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[list[RedisServer]]:
    """A master, ``request.param`` replicas and a Sentinel, all of this test's own."""
    require_redis()
    master = RedisServer(tmp_path / "master")
    master.start()
    servers = [master]
    try:
        servers += start_replicas(tmp_path, master, request.param)
        servers.append(start_sentinel(tmp_path / "sentinel", master, request.param))
        yield servers
    finally:
        stop_all(servers)


def sentinel_failover(servers: list[RedisServer], min_replicas: int | None) -> tuple[Load, Fault, int, Any]:
    """The README's Sentinel recipe under load while ``SENTINEL FAILOVER`` runs."""
    old, *replicas, watcher = servers
    sentinel = Sentinel([("127.0.0.1", watcher.port)], socket_timeout=1)
    master = sentinel.master_for(MASTER_NAME, socket_timeout=2, socket_connect_timeout=2)
    store = create_redis_store(client=master, min_replicas=min_replicas)
    middleware = SessionMiddleware(app, store=store, secret=SECRET)
    cookie = session_cookie(call(middleware, "/")[1])
    load = Load(middleware, cookie, new_sessions(middleware, 100))
    key = "session:" + session_id(cookie)
    # Every replica copies writes before the fault, as in production: then what is
    # lost is lost to the failover, not to a replica that had not started.
    wait_until(lambda: all(stored_visits(replica, key) for replica in replicas), "a replica lags")

    def new_master() -> RedisServer | None:
        _host, port = sentinel.discover_master(MASTER_NAME)
        return next((s for s in replicas if s.port == port and s is not old), None)

    def durable() -> bool:
        server = new_master()
        return server is not None and in_sync(server) >= max(1, store.min_replicas)

    fault = Fault()
    with load.running():
        fault.began = time.monotonic()
        with watcher.client() as client:
            client.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
        watching = watch_for_durable_master(fault, durable)
        # The old master keeps taking writes until Sentinel demotes it, some 10 s on,
        # then drops them as it copies the new master: the test runs past that.
        wait_until_replica(old)
        watching.join()
        wait_until(lambda: fault.durable is not None, "no durable master", FAULT_BOUND)
        time.sleep(AFTER)
    new = new_master()
    assert new is not None
    with watcher.client() as client:  # one failover, not a second one on a busy machine
        assert client.sentinel_master(MASTER_NAME)["config-epoch"] == 1
    stored = stored_visits(new, key) - 1  # the first visit came before
    master.close()
    return load, fault, stored, key_exists(new)


@pytest.mark.parametrize("sentinel_servers", [1, 2], indirect=True, ids=["1-replica", "2-replicas"])
def test_sentinel_failover_loses_no_acknowledged_write(sentinel_servers, capsys):
    load, fault, stored, exists = sentinel_failover(sentinel_servers, min_replicas=None)
    with capsys.disabled():
        name = f"Sentinel, {len(sentinel_servers) - 2} replica(s)"
        print("\n" + report(name, load, fault, stored, exists))
    assert_nothing_acknowledged_was_lost(load, stored, exists)


@pytest.mark.parametrize(
    ("sentinel_servers", "min_replicas"),
    [(1, 0), (2, 1)],
    indirect=["sentinel_servers"],
    ids=["0-of-1", "1-of-2"],
)
def test_sentinel_failover_loses_writes_that_not_every_replica_acknowledged(
    sentinel_servers, min_replicas, capsys
):
    """The same runs waiting for fewer replicas than there are: what the test above catches.

    With none, the old master takes writes for some 10 s after the failover; with one
    of two, the replica Sentinel did not promote acknowledges them until Sentinel
    points it at the new master, and then drops them.
    """
    load, fault, stored, exists = sentinel_failover(sentinel_servers, min_replicas=min_replicas)
    with capsys.disabled():
        name = f"Sentinel, {len(sentinel_servers) - 2} replica(s), min_replicas={min_replicas}"
        print("\n" + report(name, load, fault, stored, exists))
    lost, undone = lost_writes(load, stored, exists)
    assert lost > 0
    if min_replicas == 0:
        assert undone > 0


# -- Cluster -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """3 masters and 3 replicas, failed over by the tests here, which leave it whole again.

    A node silent for 2 s is failed over.
    """
    require_redis()
    nodes = start_cluster(tmp_path_factory.mktemp("cluster"), masters=3, replicas=1, node_timeout=2000)
    try:
        yield nodes
    finally:
        stop_all(nodes)


def cluster_failover(
    nodes: list[RedisServer], fail: Callable[[RedisServer, RedisServer], None]
) -> tuple[Load, Fault, int, Callable[[str], bool]]:
    """The README's Cluster recipe under load while ``fail(master, replica)`` runs.

    ``master`` holds the session under load; ``replica`` is its replica, which is to
    take its place.
    """
    cluster = RedisCluster(host="127.0.0.1", port=nodes[0].port, socket_timeout=2, socket_connect_timeout=2)
    store = create_redis_store(client=cluster)
    assert store.min_replicas == 1
    middleware = SessionMiddleware(app, store=store, secret=SECRET)
    cookie = session_cookie(call(middleware, "/")[1])
    key = "session:" + session_id(cookie)
    owner, backup = cluster.nodes_manager.slots_cache[cluster.keyslot(key)]
    master, replica = (next(n for n in nodes if n.port == node.port) for node in (owner, backup))
    on_master = new_sessions(middleware, 100, lambda key: cluster.get_node_from_key(key).port == master.port)
    load = Load(middleware, cookie, on_master)
    fault = Fault()
    with load.running():
        fault.began = time.monotonic()
        watching = watch_for_durable_master(fault, lambda: in_sync(replica) >= 1)
        fail(master, replica)
        wait_until(
            lambda: master.info("replication").get("master_link_status") == "up", "no rejoin", FAULT_BOUND
        )
        watching.join()
        wait_until(lambda: fault.durable is not None, "no durable master", FAULT_BOUND)
        time.sleep(AFTER)
    cluster.close()
    return load, fault, stored_visits(replica, key) - 1, key_exists(replica)


def manual_failover(master: RedisServer, replica: RedisServer) -> None:
    with replica.client() as client:
        client.execute_command("CLUSTER", "FAILOVER")


def crash(master: RedisServer, replica: RedisServer) -> None:
    """SIGKILL the master; once its replica took over, start it again: it rejoins as a replica."""
    master.kill()
    wait_until(lambda: replica.info("replication")["role"] == "master", "no promotion", FAULT_BOUND)
    time.sleep(AFTER)  # the new master alone: its writes cannot be made durable
    master.start()


@pytest.mark.parametrize("fail", [manual_failover, crash], ids=["CLUSTER-FAILOVER", "SIGKILL"])
def test_cluster_failover_loses_no_acknowledged_write(cluster_servers, fail, capsys):
    load, fault, stored, exists = cluster_failover(cluster_servers, fail)
    with capsys.disabled():
        print("\n" + report(f"Cluster, {fail.__name__}", load, fault, stored, exists))
    assert_nothing_acknowledged_was_lost(load, stored, exists)
