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
        persistence = "" if self.sentinel else 'save ""\nappendonly no\n'
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n{persistence}{self.config}"
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


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """Three masters, slots split by ``redis-cli --cluster create``, no replicas."""
    require_redis()
    base = tmp_path_factory.mktemp("cluster")
    nodes = [
        RedisServer(base / str(i), "cluster-enabled yes\ncluster-config-file nodes.conf\n") for i in range(3)
    ]
    try:
        for node in nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=STARTUP_BOUND,
        )
        deadline = time.monotonic() + STARTUP_BOUND
        for node in nodes:
            with node.client() as client:
                while client.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the cluster was not ready within {STARTUP_BOUND} s")
                    time.sleep(0.05)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture(scope="session")
def redis_sentinel(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    """A Sentinel watching the standalone server as master ``mymaster``."""
    sentinel = RedisServer(
        tmp_path_factory.mktemp("sentinel"),
        f"sentinel monitor mymaster 127.0.0.1 {redis_server.port} 1\n",
        sentinel=True,
    )
    sentinel.start()
    try:
        yield sentinel
    finally:
        sentinel.stop()
