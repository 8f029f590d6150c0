"""``python -m benchmarks``: run the whole benchmark, write the results folder.

Starts its own redis-server on a free loopback port, and a master with a replica
behind a Sentinel (all stopped at the end), builds every configuration, checks each
works, times them in-process (the Redis ones also on a sweep of session sizes,
with the bytes Redis receives), counts lost updates under concurrent requests,
measures the memory store, lists a user's sessions on each store, and, unless told
not to, the throughput under gunicorn with wrk.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack, suppress
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .configs import Context, all_configs
from .inprocess import (
    SIZES,
    WORKLOADS,
    bytes_to_redis,
    check,
    lost_updates,
    measure,
    redis_round_trips,
    start_session,
)
from .memory import memory_store_footprint
from .postgres import postgres_server, round_trips
from .redis_server import redis_server, sentinel_master
from .report import Results, write_chart, write_markdown, write_rst
from .throughput import requests_per_second
from .users import list_sessions_costs

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = (
    "werkzeug",
    "redis",
    "beaker",
    "flask",
    "flask-session",
    "pyramid",
    "pyramid_session_redis",
    "gunicorn",
    "psycopg",
    "psycopg-pool",
    "sqlalchemy",
    "flask-sqlalchemy",
)


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = []
    for package in PACKAGES:
        with suppress(PackageNotFoundError):
            versions.append(f"{package} {version(package)}")
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    redis_version = next((w.split("=")[1] for w in redis_version.split() if w.startswith("v=")), "?")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "redis-server": redis_version,
        "packages": ", ".join(versions),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests and shorter wrk runs (< 3 min)")
    parser.add_argument("--requests", type=int, help="requests per timed batch")
    parser.add_argument("--repeats", type=int, help="timed batches per configuration, workload and process")
    parser.add_argument("--processes", type=int, help="fresh processes the in-process timing runs in")
    parser.add_argument("--duration", type=int, help="seconds of each wrk run")
    parser.add_argument("--rounds", type=int, help="wrk runs per configuration and workload")
    parser.add_argument("--no-gunicorn", action="store_true", help="skip the gunicorn + wrk run")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only configurations whose name contains TEXT (bare apps always run)",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="folder for results.md and benchmark.png"
    )
    args = parser.parse_args(argv)
    # Stopped from outside: unwind, so that redis-server and the gunicorns stop too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    requests = args.requests or (300 if args.quick else 2000)
    repeats = args.repeats or 5
    processes = args.processes or (1 if args.quick else 4)
    duration = args.duration or 2
    rounds = args.rounds or (1 if args.quick else 5)
    threads, per_thread = 8, 100

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    configs = [c for c in all_configs() if c.is_bare or not args.only or any(t in c.name for t in args.only)]
    with ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="wsgi-session-bench-"))
        redis_url = stack.enter_context(redis_server()) if any(c.redis for c in configs) else None
        # Its URL reaches the configurations, here and in the processes the run starts, in the environment.
        postgres = stack.enter_context(postgres_server()) if any(c.postgres for c in configs) else None
        sentinel = stack.enter_context(sentinel_master()) if any(c.sentinel for c in configs) else None
        context = Context(redis_url, workdir, sentinel)
        apps = {c.name: c.build(context) for c in configs}
        cookies = {c.name: start_session(c, apps[c.name]) for c in configs}
        results = Results(
            meta=machine(), configs=configs, timings={}, concurrent_updates=threads * per_thread
        )
        if postgres is not None:
            results.meta["PostgreSQL"] = postgres.version
        for config in configs:
            problems = check(config, apps[config.name], cookies[config.name])
            if problems:
                results.problems[config.name] = problems
                progress(f"CHECK FAILED {config.name}: {problems}")
        progress(
            f"{len(configs)} configurations; timing {processes} processes x {repeats} x {requests}"
            " requests per workload"
        )
        results.timings = measure(configs, context, requests, repeats, processes, progress)
        for config in configs:
            if config.redis:
                for workload, (path, with_cookie) in WORKLOADS.items():
                    results.round_trips[config.name, workload] = redis_round_trips(
                        apps[config.name], path, cookies[config.name] if with_cookie else None
                    )
                for size in SIZES:
                    sized = config.build(dataclasses.replace(context, size=size))
                    results.bytes_sent[config.name, size] = bytes_to_redis(
                        sized, start_session(config, sized), context
                    )
            if config.postgres and postgres is not None:
                for workload, (path, with_cookie) in WORKLOADS.items():
                    results.round_trips[config.name, workload] = round_trips(
                        postgres, config, context, path, with_cookie
                    )
        for config in configs:
            if config.counts_updates:
                results.lost[config.name] = lost_updates(config, apps[config.name], threads, per_thread)
                progress(f"concurrent updates, {config.name}: {results.lost[config.name]}")
        results.footprint = memory_store_footprint(max_entries=2000 if args.quick else 10_000)
        results.listings = list_sessions_costs(configs, context, postgres)
        if not args.no_gunicorn:
            baselines = {c.name: results.bare(c).name for c in configs}
            results.throughput = requests_per_second(
                baselines, context, ["/w1", "/w3"], "/w3", duration, rounds, progress
            )
    args.output.mkdir(parents=True, exist_ok=True)
    write_markdown(results, args.output / "results.md")
    write_rst(results, args.output / "results.rst")
    write_chart(results, args.output / "benchmark.png")
    print((args.output / "results.md").read_text(encoding="utf-8"))
    return 1 if results.problems else 0


if __name__ == "__main__":
    sys.exit(main())
