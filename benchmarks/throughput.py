"""Requests per second under gunicorn, measured with wrk on 127.0.0.1.

One sync worker per configuration, so that a memory store sees every request of
its session and the figure is the cost of one worker; wrk runs for a bounded
duration, and gunicorn is always stopped.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent


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


def requests_per_second(
    config_name: str, redis_url: str | None, workdir: str, paths: list[str], duration: int
) -> dict[str, float]:
    """Start gunicorn with ``config_name``; run wrk on each path with a session cookie."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), BENCH_CONFIG=config_name, BENCH_WORKDIR=workdir)
    if redis_url:
        env["BENCH_REDIS_URL"] = redis_url
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "benchmarks.served:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_until_serving(f"{base}/w3", process)
        with urllib.request.urlopen(f"{base}/setup", timeout=5) as response:
            set_cookie = response.headers.get("Set-Cookie")
        cookie = set_cookie.split(";", 1)[0] if set_cookie else ""
        results = {}
        for path in paths:
            out = subprocess.run(
                [wrk, "-t1", "-c2", f"-d{duration}s", "-H", f"Cookie: {cookie}", f"{base}{path}"],
                capture_output=True,
                text=True,
                timeout=duration + 30,
                check=True,
            ).stdout
            if "Non-2xx" in out:
                raise RuntimeError(f"wrk saw errors for {config_name} {path}:\n{out}")
            match = re.search(r"Requests/sec:\s+([\d.]+)", out)
            if match is None:
                raise RuntimeError(f"no Requests/sec in wrk's output:\n{out}")
            results[path] = float(match.group(1))
        return results
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
