"""Throwaway Redis servers on free loopback ports, for one benchmark run.

``redis_server()`` is one standalone server; ``sentinel_master()`` a master with one
replica, watched by a Sentinel, for the configuration whose writes wait for a replica.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

#: The name the Sentinel knows the master by.
SERVICE = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int, command: bytes, expected: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(command)
            return expected in conn.recv(4096)
    except OSError:
        return False


@contextmanager
def _process(
    *options: str, config: str = "", ready: tuple[bytes, bytes] = (b"PING\r\n", b"+PONG")
) -> Iterator[int]:
    """Run ``redis-server`` with ``config`` and ``options`` on a free port until it is
    ``ready`` (its reply to a command holds the bytes given); yield the port."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        path = f"{workdir}/redis.conf"
        with open(path, "w", encoding="utf-8") as file:  # Sentinel needs a file to rewrite
            file.write(f"port {port}\nbind 127.0.0.1\ndir {workdir}\n{config}")
        process = subprocess.Popen([binary, path, *options], stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while not _answers(port, *ready):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"redis-server {' '.join(options)} did not become ready")
                time.sleep(0.05)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


_NO_PERSISTENCE = ("--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0")


@contextmanager
def redis_server() -> Iterator[str]:
    """Start redis-server without persistence; yield its URL; always stop it."""
    with _process(*_NO_PERSISTENCE) as port:
        yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def sentinel_master() -> Iterator[str]:
    """A master, its replica in sync, and a Sentinel that knows both: yield ``host:port`` of the Sentinel."""
    with ExitStack() as stack:
        master = stack.enter_context(_process(*_NO_PERSISTENCE))
        replica = stack.enter_context(
            _process(
                *_NO_PERSISTENCE,
                "--replicaof",
                "127.0.0.1",
                str(master),
                ready=(b"INFO replication\r\n", b"master_link_status:up"),
            )
        )
        port = str(replica)
        sentinel = stack.enter_context(
            _process(
                "--sentinel",
                config=f"sentinel monitor {SERVICE} 127.0.0.1 {master} 1\n",
                ready=(f"SENTINEL REPLICAS {SERVICE}\r\n".encode(), f"${len(port)}\r\n{port}\r\n".encode()),
            )
        )
        yield f"127.0.0.1:{sentinel}"
