"""Real Redis servers for the tests: standalone, Cluster and Sentinel, on loopback.

Each server is a ``redis-server`` process of its own on a free 127.0.0.1 port, with
no persistence, in a temporary directory, always stopped after. Without
``redis-server`` the tests that need it are skipped with one message naming the
install command, unless ``WSGI_SESSION_REQUIRE_REDIS=1`` (set by CI) makes that a
failure.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import redis

MISSING = (
    "redis-server or redis-cli not found: the Redis tests are skipped. "
    "Install them with: apt-get install redis-server"
)
#: Seconds a server gets to start answering, or to stop, before the test fails.
STARTUP_BOUND = 10.0


def require_redis() -> None:
    """Skip (or fail, under ``WSGI_SESSION_REQUIRE_REDIS=1``) when Redis is not installed."""
    if shutil.which("redis-server") and shutil.which("redis-cli"):
        return
    if os.environ.get("WSGI_SESSION_REQUIRE_REDIS") == "1":
        pytest.fail(MISSING.replace("are skipped", "are required here"), pytrace=False)
    pytest.skip(MISSING)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Report every "no Redis" skip at one place, so that ``-ra`` shows it once, with a count."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple) and MISSING in report.longrepr[2]:
        report.longrepr = (__file__, require_redis.__code__.co_firstlineno, report.longrepr[2])


def free_port() -> int:
    """A loopback port free now, whose cluster bus port (+10000) is free too.

    Both stay below the kernel's ephemeral range (32768 and up on Linux), so no
    outgoing connection takes them while a server is stopped for a restart.
    """
    while True:
        port = random.randrange(10000, 22768)
        if _is_free(port) and _is_free(port + 10000):
            return port


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class RedisServer:
    """One ``redis-server`` process on a fixed port, which can be stopped and restarted."""

    def __init__(self, directory: Path, config: str = "", *, sentinel: bool = False) -> None:
        self.port = free_port()
        self.directory = directory
        self.config = config
        self.sentinel = sentinel
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=STARTUP_BOUND)

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers."""
        # Sentinel rewrites its configuration file, so each server has a file of its own.
        config = self.directory / "redis.conf"
        # No persistence; a replica that asks for a full copy gets it at once, not 5 s on.
        persistence = "" if self.sentinel else 'save ""\nappendonly no\nrepl-diskless-sync-delay 0\n'
        # Its log stays in the test's temporary directory, for a failure to be read.
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\nlogfile {self.directory}/redis.log\n"
            f"{persistence}{self.config}"
        )
        command = ["redis-server", str(config), *(["--sentinel"] if self.sentinel else [])]
        self.process = subprocess.Popen(
            command, cwd=self.directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + STARTUP_BOUND
        probe = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {command}")
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not answer within {STARTUP_BOUND} s") from None
                time.sleep(0.02)
        probe.close()

    def info(self, section: str) -> dict[str, Any]:
        with self.client() as client:
            return client.info(section)  # type: ignore[no-any-return]

    def kill(self) -> None:
        """Stop the server as a crash would: SIGKILL, nothing saved or said to anyone."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(STARTUP_BOUND)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One standalone server for the whole run; each test flushes it (``redis_client``)."""
    require_redis()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the shared server, emptied and with fresh statistics for this test."""
    client = redis_server.client()
    client.flushall()
    client.config_resetstat()
    try:
        yield client
    finally:
        client.close()


def wait_until(condition: Callable[[], object], what: str, bound: float = STARTUP_BOUND) -> None:
    """Poll ``condition`` until it is true; fail the test if ``bound`` seconds pass first."""
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {bound} s")
        time.sleep(0.05)


def stop_all(servers: list[RedisServer]) -> None:
    for server in servers:
        server.stop()


def cluster_slots(node: RedisServer) -> list[list[Any]]:
    """``CLUSTER SLOTS`` as the server sends it: [first, last, master, replicas...] per range."""
    with node.client() as client:
        return client.execute_command("CLUSTER SLOTS", **{"NEVER_DECODE": True})  # type: ignore[no-any-return]


def start_cluster(
    base: Path, masters: int = 3, replicas: int = 0, node_timeout: int = 15000
) -> list[RedisServer]:
    """``masters`` masters splitting the slots, each with ``replicas`` replicas, all in sync.

    A node silent for ``node_timeout`` milliseconds is failed: fault tests make it short.
    A cluster whose nodes do not join within the bound (seen once on a loaded machine:
    one node never took the others' gossip) is stopped and made again, once.
    """
    try:
        return _start_cluster(base / "first", masters, replicas, node_timeout)
    except subprocess.TimeoutExpired:
        return _start_cluster(base / "second", masters, replicas, node_timeout)


def _start_cluster(base: Path, masters: int, replicas: int, node_timeout: int) -> list[RedisServer]:
    config = f"cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout {node_timeout}\n"
    nodes = [RedisServer(base / str(i), config) for i in range(masters * (1 + replicas))]
    try:
        for node in nodes:
            node.start()
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *[f"127.0.0.1:{node.port}" for node in nodes],
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=STARTUP_BOUND,
        )
        for node in nodes:
            with node.client() as client:
                wait_until(
                    lambda: client.execute_command("CLUSTER INFO").get("cluster_state") == "ok",
                    "the cluster was not ready",
                )
        # Clients learn the replicas from CLUSTER SLOTS, which lists a replica only once
        # the others heard by gossip that it copied some data: a few seconds.
        wait_until(
            lambda: all(len(entry) == 3 + replicas for node in nodes for entry in cluster_slots(node)),
            "the cluster's replicas did not sync",
        )
    except BaseException:
        stop_all(nodes)
        raise
    return nodes


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """Three masters, slots split by ``redis-cli --cluster create``, no replicas."""
    require_redis()
    nodes = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield nodes
    finally:
        stop_all(nodes)


def in_sync(server: RedisServer) -> int:
    """How many replicas ``server`` streams its writes to: none unless it is a master."""
    info = server.info("replication")
    if info.get("role") != "master":
        return 0
    replicas = [entry for name, entry in info.items() if name.startswith("slave")]
    return sum(1 for entry in replicas if entry.get("state") == "online")


def writes_reach(master: RedisServer, count: int) -> bool:
    """Whether a write on ``master`` reaches ``count`` replicas within 0.1 s.

    A replica is "online" from the end of its copy, but the master streams writes
    to it only from its first acknowledgement, up to a second later. The probe
    leaves no key behind.
    """
    with master.client() as client, client.pipeline(transaction=False) as pipe:
        replies = pipe.set("test:probe", 1).delete("test:probe").execute_command("WAIT", count, 100).execute()
    return bool(replies[-1] >= count)


def start_replicas(base: Path, master: RedisServer, count: int) -> list[RedisServer]:
    """``count`` replicas of ``master``, started and in sync with it."""
    config = f"replicaof 127.0.0.1 {master.port}\n"
    replicas = [RedisServer(base / f"replica{i}", config) for i in range(count)]
    try:
        for replica in replicas:
            replica.start()
        wait_until(lambda: writes_reach(master, count), "the replicas did not sync")
    except BaseException:
        stop_all(replicas)
        raise
    return replicas


MASTER_NAME = "mymaster"


def start_sentinel(base: Path, master: RedisServer, replicas: int) -> RedisServer:
    """A Sentinel watching ``master`` as ``mymaster``, once it can promote any of its ``replicas``.

    A failover is given 3 s. A master is down after 5 s of silence: less lets a
    machine busy with other work see a failover where there is none.
    """
    sentinel = RedisServer(
        base,
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master.port} 1\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} 5000\n"
        f"sentinel failover-timeout {MASTER_NAME} 3000\n",
        sentinel=True,
    )
    sentinel.start()
    try:
        with sentinel.client() as client:

            def ready() -> bool:
                # A replica found in the master's INFO is promotable only once the
                # Sentinel has reached it and read its own INFO.
                seen = client.sentinel_slaves(MASTER_NAME)
                good = [r for r in seen if r["flags"] == "slave" and r["master-link-status"] == "ok"]
                return len(seen) == len(good) == replicas

            wait_until(ready, "the sentinel cannot promote the replicas")
    except BaseException:
        sentinel.stop()
        raise
    return sentinel


@pytest.fixture(scope="session")
def redis_sentinel(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    """A Sentinel watching the standalone server as master ``mymaster``."""
    sentinel = start_sentinel(tmp_path_factory.mktemp("sentinel"), redis_server, replicas=0)
    try:
        yield sentinel
    finally:
        sentinel.stop()
