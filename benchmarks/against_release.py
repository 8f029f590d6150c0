"""``python -m benchmarks.against_release``: W1 on Redis, this checkout against a release.

The release's ``wsgi_session`` is taken from git (``git archive``) and imported under
another name, so that both run in one process against one Redis server. For each
session size, batches of the two alternate, in a random order each time, and the
whole runs in several fresh processes: a slow moment of the machine, or one
process's memory layout, falls on both alike. Each pair of batches gives a ratio,
this checkout's CPU time over the release's; the figure is the median of all the
pairs, with the range of the processes' own medians beside it.
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
from .configs import INITIAL, MAX_AGE, SECRET, padding
from .inprocess import SIZES, base_environ, call, sweep_workload, time_batch
from .redis_server import redis_server

RELEASE = "67f831d"  # 0.1
NAME = "wsgi_session_release"


def app_of(package: ModuleType, url: str, size: int) -> Callable[..., Any]:
    """W1's page behind ``package``'s middleware and Redis store, its session of ``size``."""

    def page(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/setup":
            package.update_session(environ, lambda s: dict(INITIAL, pad=padding(size)))
            counter = 0
        else:
            counter = package.update_session(environ, lambda s: {"counter": s["counter"] + 1})["counter"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(counter).encode()]

    store = package.create_redis_store(url=url)
    return package.SessionMiddleware(page, store=store, secret=SECRET, max_age=MAX_AGE)  # type: ignore[no-any-return]


def child(spec: dict[str, Any]) -> dict[str, list[tuple[float, float]]]:
    """Alternating batches in this process: (release CPU µs, checkout CPU µs) pairs by size."""
    sys.path.insert(0, spec["release_dir"])
    packages = {"release": importlib.import_module(NAME), "checkout": importlib.import_module("wsgi_session")}
    pairs: dict[str, list[tuple[float, float]]] = {}
    for size in spec["sizes"]:
        environs = {}
        apps = {name: app_of(package, spec["redis_url"], size) for name, package in packages.items()}
        for name, app in apps.items():
            cookie = call(app, "/setup", None).header("Set-Cookie")
            assert cookie is not None
            environs[name] = base_environ("/w1", cookie.split(";", 1)[0])
            time_batch(app, environs[name], spec["requests"])  # warm up
        for _ in range(spec["batches"]):
            order = list(apps)
            random.shuffle(order)
            cpu = {name: time_batch(apps[name], environs[name], spec["requests"])[0] for name in order}
            pairs.setdefault(sweep_workload(size), []).append((cpu["release"], cpu["checkout"]))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.against_release", description=__doc__)
    parser.add_argument("--release", default=RELEASE, help=f"git revision to compare with ({RELEASE}: 0.1)")
    parser.add_argument("--processes", type=int, default=8, help="fresh processes")
    parser.add_argument("--batches", type=int, default=10, help="pairs of batches per size and process")
    parser.add_argument("--requests", type=int, default=100, help="W1 requests per batch")
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
            "sizes": SIZES,
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
    print(f"W1 on Redis, CPU µs per request: this checkout against {args.release}")
    print(f"({args.processes} processes x {args.batches} pairs of {args.requests}-request batches per size)")
    print("| size | release | checkout | checkout / release (median of pairs) | range of process medians |")
    print("|---|---:|---:|---:|---:|")
    for size in SIZES:
        workload = sweep_workload(size)
        pairs = [pair for process in by_process for pair in process[workload]]
        medians = [statistics.median(after / before for before, after in p[workload]) for p in by_process]
        print(
            f"| {workload.removeprefix('W1 ')} | {statistics.median(b for b, _ in pairs):.1f}"
            f" | {statistics.median(a for _, a in pairs):.1f}"
            f" | {statistics.median(a / b for b, a in pairs):.3f}"
            f" | {min(medians):.3f} to {max(medians):.3f} |"
        )
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        json.dump(child(json.load(sys.stdin)), sys.stdout)
    else:
        sys.exit(main())
