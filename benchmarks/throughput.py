"""Requests per second under gunicorn, measured with wrk on 127.0.0.1.

One sync worker per configuration, all started at once, so that a memory store sees
every request of its session and the figure is the cost of one worker; wrk runs for
a bounded duration, and gunicorn is always stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import Callable

import gunicorn.config

from . import ROOT
from .configs import Context
from .redis_server import free_port


def _control_socket_off() -> list[str]:
    # gunicorn 27 opens a control socket at one path per user: the servers of one run
    # must not fight over it. Older versions have none.
    known = {setting.name for setting in gunicorn.config.KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in known else []


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited at start-up")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start serving in time")


class Server:
    """One gunicorn, one sync worker, serving one configuration on a free port."""

    def __init__(self, config_name: str, context: Context) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            BENCH_CONFIG=config_name,
            BENCH_CONTEXT=json.dumps(dataclasses.asdict(context)),
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                *_control_socket_off(),
                "benchmarks.served:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        self.cookie = ""

    def start_session(self) -> None:
        _wait_until_serving(f"{self.base}/w3", self.process)
        with urllib.request.urlopen(f"{self.base}/setup", timeout=5) as response:
            set_cookie = response.headers.get("Set-Cookie")
        self.cookie = set_cookie.split(";", 1)[0] if set_cookie else ""

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wrk(url: str, cookie: str, duration: int) -> float:
    """Requests per second that wrk gets from ``url`` in ``duration`` seconds."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    out = subprocess.run(
        [binary, "-t1", "-c2", f"-d{duration}s", "-H", f"Cookie: {cookie}", url],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk got error responses from {url}:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{out}")
    return float(match.group(1))


@dataclass
class Throughput:
    requests_per_second: dict[str, float]  # median of the rounds, by path
    ratio_to_bare: float | None = None  # on the paired path: median of the paired runs' ratios


def requests_per_second(
    baselines: dict[str, str],
    context: Context,
    paths: list[str],
    paired: str,
    duration: int,
    rounds: int,
    progress: Callable[[str], None],
) -> dict[str, Throughput]:
    """Requests/s of each configuration and path, over interleaved wrk runs.

    ``baselines`` maps each configuration to its bare app (itself for a bare app).
    All servers run at once; each round visits the configurations in a new order.
    On the ``paired`` path each configuration's bare app runs just before it, so
    that the ratio to the bare app compares two runs a few seconds apart, not a slow
    moment of the machine with a quiet one.
    """
    servers: dict[str, Server] = {}
    try:
        for name in baselines:
            servers[name] = Server(name, context)
        for server in servers.values():
            server.start_session()

        def run(name: str, path: str) -> float:
            return wrk(servers[name].base + path, servers[name].cookie, duration)

        samples: dict[tuple[str, str], list[float]] = {}
        ratios: dict[str, list[float]] = {}
        order = list(baselines)
        for round_ in range(rounds):
            random.Random(round_).shuffle(order)
            for name in order:
                for path in paths:
                    bare = baselines[name]
                    bare_rps = run(bare, path) if bare != name and path == paired else None
                    rps = run(name, path)
                    samples.setdefault((name, path), []).append(rps)
                    if bare_rps is not None:
                        ratios.setdefault(name, []).append(rps / bare_rps)
            progress(f"gunicorn + wrk: round {round_ + 1}/{rounds} done")
        results = {name: Throughput({}) for name in baselines}
        for (name, path), runs in samples.items():
            results[name].requests_per_second[path] = statistics.median(runs)
        for name, runs in ratios.items():
            results[name].ratio_to_bare = statistics.median(runs)
        return results
    finally:
        for server in servers.values():
            server.stop()
