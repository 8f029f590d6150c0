"""``python -m benchmarks.against_release``: this checkout against a release, on the memory store and Redis.

The release's ``wsgi_session`` is taken from git (``git archive``) and imported under
another name, so that both run in one process against one Redis server. Each
*case* is a workload (W1 to W4, as in the main run) on a store, with the main run's
session of ten keys; on Redis also W1 on the sweep's sessions holding a string of
100 B to 100 KB. Both apps enable nothing the release lacks: what an app that
upgrades and changes nothing pays.

Each round times every case, in a random order, as a pair of batches run one right
after the other, the release and the checkout in a random order: a slow moment of
the machine falls on both alike. The whole runs in several fresh processes, since
each process lays out its memory in its own way. Each pair gives the checkout's CPU
time over the release's, and their difference; the figures are the medians of all
the pairs, with the range of the processes' own medians of the ratio beside.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
from types import ModuleType
from typing import Any, Callable

from . import ROOT
from .configs import INITIAL, MAX_AGE, SECRET, padding, read_all
from .inprocess import SIZES, WORKLOADS, base_environ, call, sweep_workload, time_batch
from .redis_server import redis_server

RELEASE = "67f831d"  # 0.1
NAME = "wsgi_session_release"
STORES = ("memory", "Redis")
#: A memory-store request is some ten times shorter than a Redis one: its batches are ten times longer.
MEMORY_BATCH_FACTOR = 10


def cases() -> list[tuple[str, str, int]]:
    """(store, workload, size of the extra string, 0 for none) of every case."""
    found = [(store, workload, 0) for store in STORES for workload in WORKLOADS]
    return found + [("Redis", "W1", size) for size in SIZES]


def case_name(store: str, workload: str, size: int) -> str:
    return f"{store} {sweep_workload(size) if size else workload}"


def app_of(package: ModuleType, store: str, url: str, size: int) -> Callable[..., Any]:
    """The main run's pages behind ``package``'s middleware and ``store``, sessions of ``size``."""
    initial = dict(INITIAL, pad=padding(size)) if size else INITIAL

    def page(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ["PATH_INFO"]
        counter: object = "plain"
        if path == "/setup":
            package.update_session(environ, lambda s: initial)
            counter = 0
        elif path == "/w1":
            counter = package.update_session(environ, lambda s: {"counter": s["counter"] + 1})["counter"]
        elif path == "/w2":
            counter = read_all(package.get_session(environ))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(counter).encode()]

    if store == "memory":
        backend = package.create_memory_store(max_entries=100_000)
    else:
        backend = package.create_redis_store(url=url)
    return package.SessionMiddleware(page, store=backend, secret=SECRET, max_age=MAX_AGE)  # type: ignore[no-any-return]


Batch = tuple[Callable[..., Any], dict[str, Any], int]


def child(spec: dict[str, Any]) -> dict[str, list[tuple[float, float]]]:
    """Interleaved pairs of batches in this process: (release CPU µs, checkout CPU µs) by case."""
    sys.path.insert(0, spec["release_dir"])
    packages = {"release": importlib.import_module(NAME), "checkout": importlib.import_module("wsgi_session")}
    planned: dict[str, dict[str, Batch]] = {}
    for store, workload, size in map(tuple, spec["cases"]):
        path, with_cookie = WORKLOADS[workload]
        requests = spec["requests"] * (MEMORY_BATCH_FACTOR if store == "memory" else 1)
        pair = planned[case_name(store, workload, size)] = {}
        for variant, package in packages.items():
            app = app_of(package, store, spec["redis_url"], size)
            cookie = call(app, "/setup", None).header("Set-Cookie")
            assert cookie is not None
            environ = base_environ(path, cookie.split(";", 1)[0] if with_cookie else None)
            time_batch(app, environ, requests)  # warm up
            pair[variant] = (app, environ, requests)
    pairs: dict[str, list[tuple[float, float]]] = {}
    order = list(planned)
    for _ in range(spec["batches"]):
        random.shuffle(order)
        for name in order:
            variants = list(planned[name])
            random.shuffle(variants)
            cpu = {variant: time_batch(*planned[name][variant])[0] for variant in variants}
            pairs.setdefault(name, []).append((cpu["release"], cpu["checkout"]))
    return pairs


def table(by_process: list[dict[str, list[tuple[float, float]]]]) -> str:
    lines = [
        "| case | release CPU µs | checkout CPU µs | checkout - release (µs) | checkout / release"
        " | range of process medians |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for store, workload, size in cases():
        name = case_name(store, workload, size)
        pairs = [pair for process in by_process for pair in process[name]]
        medians = [statistics.median(after / before for before, after in p[name]) for p in by_process]
        lines.append(
            f"| {name} | {statistics.median(b for b, _ in pairs):.1f}"
            f" | {statistics.median(a for _, a in pairs):.1f}"
            f" | {statistics.median(a - b for b, a in pairs):+.1f}"
            f" | {statistics.median(a / b for b, a in pairs):.3f}"
            f" | {min(medians):.3f} to {max(medians):.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.against_release", description=__doc__)
    parser.add_argument("--release", default=RELEASE, help=f"git revision to compare with ({RELEASE}: 0.1)")
    parser.add_argument("--processes", type=int, default=16, help="fresh processes")
    parser.add_argument("--batches", type=int, default=10, help="pairs of batches per case and process")
    parser.add_argument(
        "--requests",
        type=int,
        default=100,
        help=f"requests per Redis batch ({MEMORY_BATCH_FACTOR} times as many on the memory store)",
    )
    args = parser.parse_args(argv)
    archive = subprocess.run(
        ["git", "archive", args.release, "wsgi_session"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    by_process: list[dict[str, list[tuple[float, float]]]] = []
    with tempfile.TemporaryDirectory() as release_dir, redis_server() as url:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(release_dir)
        os.rename(os.path.join(release_dir, "wsgi_session"), os.path.join(release_dir, NAME))
        spec = {
            "release_dir": release_dir,
            "redis_url": url,
            "cases": cases(),
            "batches": args.batches,
            "requests": args.requests,
        }
        for number in range(args.processes):
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.against_release", "--child"],
                input=json.dumps(spec),
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
                env=dict(os.environ, PYTHONPATH=str(ROOT)),
            )
            by_process.append(json.loads(done.stdout))
            print(f"process {number + 1}/{args.processes} done", file=sys.stderr, flush=True)
    print(f"CPU µs per request: this checkout against {args.release}")
    print(
        f"({args.processes} processes x {args.batches} pairs of batches per case, {args.requests}"
        f" requests per Redis batch, {args.requests * MEMORY_BATCH_FACTOR} per memory batch)"
    )
    print()
    print(table(by_process))
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        json.dump(child(json.load(sys.stdin)), sys.stdout)
    else:
        sys.exit(main())
