"""Direct WSGI calls: CPU and wall microseconds per request.

Configurations are interleaved (each repeat visits all of them, in a shuffled
order) so that a slow moment of the machine spreads over all of them instead of
landing on one. The repeats run in several fresh processes, because each process
lays out its objects in memory in its own way, which moves its figures by a few
percent. One batch's figures move too: the ratio of two overheads of some 180 µs
varies by about 7 % from one batch to the next, so each figure is the median of all
the repeats of all the processes, twenty by default. CPU time
(``time.process_time``) is the primary figure: Redis runs in its own process, so a
round trip costs this process only its system calls, and the figure is not blurred by
the scheduler. Wall time is shown beside it.

``python -m benchmarks.inprocess`` is one such process: it reads what to time as
JSON on stdin and writes its samples as JSON on stdout.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable
from unittest import mock

from . import ROOT
from .configs import Config, Context, WSGIApp, find_config

WORKLOADS = {
    "W1": ("/w1", True),  # read and increment the counter
    "W2": ("/w2", True),  # read ten keys
    "W3": ("/w3", True),  # never touch the session
    "W4": ("/w2", False),  # a new visitor: reads, gets no session
}
#: The size sweep: W1 on a session that also holds a string of each of these lengths.
SIZES = (100, 1_000, 10_000, 100_000)


def sweep_workload(size: int) -> str:
    return f"W1 {size // 1000} KB" if size >= 1000 else f"W1 {size} B"


def base_environ(path: str, cookie: str | None) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "443",
        "HTTP_HOST": "example.com",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    return environ


@dataclass
class Response:
    status: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def call(app: WSGIApp, path: str, cookie: str | None) -> Response:
    response = Response()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        response.status, response.headers = status, headers
        return lambda data: None

    result = app(base_environ(path, cookie), start_response)
    try:
        response.body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not response.status.startswith("200"):
        raise RuntimeError(f"{path} answered {response.status}: {response.body[:200]!r}")
    return response


#: What a bare app is sent: a cookie of the same size as the session cookies.
BARE_COOKIE = "session=s:" + "x" * 43 + "." + "y" * 43


def start_session(config: Config, app: WSGIApp) -> str:
    """Run ``/setup`` as a new visitor; return the ``Cookie`` header of the session."""
    set_cookie = call(app, "/setup", None).header("Set-Cookie")
    if config.is_bare:
        return BARE_COOKIE
    if set_cookie is None:
        raise RuntimeError(f"{config.name}: /setup sent no cookie")
    return set_cookie.split(";", 1)[0]


def _ignore_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return _ignore_write


def _ignore_write(data: bytes) -> None:
    pass


def time_batch(app: WSGIApp, environ: dict[str, Any], requests: int) -> tuple[float, float]:
    """CPU and wall microseconds per request over ``requests`` calls of ``app``."""
    copy = environ.copy
    start_response = _ignore_start_response
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(requests):
        result = app(copy(), start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / requests * 1e6, wall / requests * 1e6


@dataclass
class Timing:
    cpu: float  # median CPU microseconds per request
    wall: float  # median wall microseconds per request


Samples = dict[tuple[str, str], list[tuple[float, float]]]


def measure(
    configs: list[Config],
    context: Context,
    requests: int,
    repeats: int,
    processes: int,
    progress: Callable[[str], None],
) -> dict[tuple[str, str], Timing]:
    """Time every workload of every configuration in ``processes`` fresh processes.

    The Redis configurations are also timed on W1 at each size of the sweep, with a
    tenth of the requests per batch. Returns the medians by (config name, workload)
    over all their repeats.
    """
    spec = json.dumps(
        {
            "configs": [c.name for c in configs],
            "context": dataclasses.asdict(context),
            "requests": requests,
            "repeats": repeats,
        }
    )
    samples: Samples = {}
    for number in range(processes):
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.inprocess"],
            input=spec,
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        if done.returncode != 0:
            raise RuntimeError(f"the timing process failed:\n{done.stderr}")
        for name, workload, runs in json.loads(done.stdout):
            samples.setdefault((name, workload), []).extend(tuple(run) for run in runs)
        progress(f"in-process: process {number + 1}/{processes} done")
    return {
        key: Timing(statistics.median(c for c, _ in runs), statistics.median(w for _, w in runs))
        for key, runs in samples.items()
    }


#: What one timed batch runs: an app, the environ of its request, and how many requests.
Batch = tuple[WSGIApp, dict[str, Any], int]


def batches(
    configs: list[Config], context: Context, requests: int, sweep: bool = True
) -> dict[tuple[str, str], Batch]:
    """The batches of a timing process: every workload, and unless told not to, the sweep's sizes on Redis."""
    result: dict[tuple[str, str], Batch] = {}
    for config in configs:
        app = config.build(context)
        cookie = start_session(config, app)
        for workload, (path, with_cookie) in WORKLOADS.items():
            environ = base_environ(path, cookie if with_cookie else None)
            result[config.name, workload] = (app, environ, requests)
        if config.redis and sweep:
            for size in SIZES:
                sized = config.build(dataclasses.replace(context, size=size))
                environ = base_environ("/w1", start_session(config, sized))
                result[config.name, sweep_workload(size)] = (sized, environ, max(requests // 10, 3))
    return result


def time_in_this_process(planned: dict[tuple[str, str], Batch], repeats: int) -> Samples:
    """``repeats`` timed runs of every batch, in a shuffled order each."""
    samples: Samples = {}
    order = list(planned)
    for key in order:  # warm up: imports, connection pools, caches
        app, environ, requests = planned[key]
        time_batch(app, environ, max(requests // 10, 3))
    for _ in range(repeats):
        random.shuffle(order)
        for key in order:
            samples.setdefault(key, []).append(time_batch(*planned[key]))
    return samples


def bytes_to_redis(app: WSGIApp, cookie: str, context: Context, requests: int = 20) -> float:
    """Bytes the Redis servers of ``context`` received per W1 request (untimed).

    From each server's ``INFO stats``; the Sentinel-watched master counts when there
    is one. What reading the figure itself sends is measured and taken off.
    """
    import redis
    from redis.sentinel import Sentinel

    from .redis_server import SERVICE

    servers = [redis.Redis.from_url(context.redis_url)] if context.redis_url else []
    if context.sentinel:
        host, port = context.sentinel.rsplit(":", 1)
        servers.append(Sentinel([(host, int(port))]).master_for(SERVICE))

    def received() -> int:
        return sum(int(server.info("stats")["total_net_input_bytes"]) for server in servers)

    call(app, "/w1", cookie)  # connections, and scripts, are ready
    reading = -received() + received()
    before = received()
    for _ in range(requests):
        call(app, "/w1", cookie)
    total = received() - before - reading
    for server in servers:
        server.close()
    return total / requests


@contextmanager
def redis_sends() -> Iterator[mock.MagicMock]:
    """Counts, meanwhile, what redis-py sends: once per command or pipeline, a round trip each.

    Counted in the client, as calls of ``send_packed_command``, which every redis-py
    user goes through, so the peers are counted the same way.
    """
    from redis.connection import AbstractConnection

    with mock.patch.object(
        AbstractConnection,
        "send_packed_command",
        autospec=True,
        side_effect=AbstractConnection.send_packed_command,
    ) as sent:
        yield sent


def redis_round_trips(app: WSGIApp, path: str, cookie: str | None, requests: int = 50) -> float:
    """Round trips to Redis per request (untimed)."""
    with redis_sends() as sent:
        for _ in range(requests):
            call(app, path, cookie)
    return sent.call_count / requests


@dataclass
class Concurrency:
    lost: int  # increments missing from the final counter (failed requests included)
    failed: int  # requests that raised, e.g. SessionConflictError past the retry bound


def lost_updates(config: Config, app: WSGIApp, threads: int, per_thread: int) -> Concurrency:
    """Run ``threads`` x ``per_thread`` concurrent increments of one session's counter."""
    cookie = start_session(config, app)
    barrier = threading.Barrier(threads)
    failed: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        for _ in range(per_thread):
            try:
                call(app, "/w1", cookie)
            except Exception as exc:
                failed.append(exc)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    final = int(call(app, "/w2", cookie).body)
    return Concurrency(threads * per_thread - final, len(failed))


def check(config: Config, app: WSGIApp, cookie: str) -> list[str]:
    """Sanity checks before timing: the session loads, increments, and W4 stores nothing."""
    problems = []
    if config.is_bare:
        return problems
    before = int(call(app, "/w2", cookie).body)
    after = int(call(app, "/w1", cookie).body)
    if after != before + 1:
        problems.append(f"W1 did not increment the counter ({before} -> {after})")
    if config.counts_updates and int(call(app, "/w2", cookie).body) != after:
        problems.append("W2 did not read the stored counter")
    if call(app, "/w2", None).header("Set-Cookie") is not None:
        problems.append("W4 (new visitor, read only) was sent a cookie")
    return problems


if __name__ == "__main__":
    spec = json.load(sys.stdin)
    configs = [find_config(name) for name in spec["configs"]]
    timed = time_in_this_process(
        batches(configs, Context(**spec["context"]), spec["requests"]), spec["repeats"]
    )
    json.dump([[name, workload, runs] for (name, workload), runs in timed.items()], sys.stdout)
