"""``python -m benchmarks.metrics``: what ``SessionMiddleware(..., metrics=True)`` costs a request.

Each fresh process times, interleaved as the main run does, the bare app and
wsgi_session on the memory store and on Redis, each with and without metrics, on
every workload. Every other process runs with ``PROMETHEUS_MULTIPROC_DIR`` set (a
directory of its own), as under gunicorn with ``prometheus_client``'s multiprocess
mode, where every counter and histogram bucket lives in a memory-mapped file; the
others keep their values in the process.

A repeat times all of a process's batches once, so each repeat gives a pair: the
cost of metrics (CPU with them minus CPU without) and that cost as a share of the
overhead without them (CPU over the bare app's in the same repeat). The figures are
the medians over all the repeats of one mode, with the range of the processes' own
medians beside. The memory store's overhead is small enough to show the cost in
microseconds; on Redis the target is a share (issue 19: at most 5 % of W1's).

Each process also reads its counters back: a run whose metrics counted nothing fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Any

from . import ROOT
from .configs import METRICS_PAIRS, Context, find_config
from .inprocess import WORKLOADS, batches, time_in_this_process
from .redis_server import redis_server

BARE = "bare WSGI app"
MODES = ("in-process registry", "multiprocess files")


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Time the batches in this process; return the samples and the loads its metrics counted."""
    configs = [find_config(name) for name in spec["configs"]]
    planned = batches(configs, Context(**spec["context"]), spec["requests"], sweep=False)
    samples = time_in_this_process(planned, spec["repeats"])
    return {
        "samples": [[name, workload, runs] for (name, workload), runs in samples.items()],
        "counted": counted_loads(),
    }


def counted_loads() -> float:
    """Sessions found, as this process's metrics counted them; read from the files in multiprocess mode."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    in_process = REGISTRY.get_sample_value("wsgi_session_loads_total", {"outcome": "found"}) or 0.0
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return in_process
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    from_files = registry.get_sample_value("wsgi_session_loads_total", {"outcome": "found"}) or 0.0
    if from_files != in_process:
        raise RuntimeError(f"the multiprocess files counted {from_files} loads, the process {in_process}")
    return from_files


@dataclasses.dataclass
class Process:
    mode: str
    samples: dict[tuple[str, str], list[tuple[float, float]]]
    counted: float

    def cpu(self, name: str, workload: str) -> list[float]:
        return [cpu for cpu, _ in self.samples[name, workload]]


def run_process(mode: str, spec: dict[str, Any]) -> Process:
    with tempfile.TemporaryDirectory(prefix="wsgi-session-bench-metrics-") as directory:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if mode == MODES[1]:
            env["PROMETHEUS_MULTIPROC_DIR"] = directory
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.metrics", "--child"],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
            env=env,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the timing process failed:\n{done.stderr}")
    out = json.loads(done.stdout)
    samples = {(name, workload): [tuple(run) for run in runs] for name, workload, runs in out["samples"]}
    if not out["counted"]:
        raise RuntimeError(f"metrics counted no session in a process of mode {mode!r}")
    return Process(mode, samples, out["counted"])  # type: ignore[arg-type]


@dataclasses.dataclass
class Cost:
    without: float  # median CPU µs per request, metrics off
    with_metrics: float  # and on
    cost: float  # median over the repeats of (on - off), µs
    share: float  # median over the repeats of (on - off) / (off - bare)
    share_range: tuple[float, float]  # of the processes' own medians of that share


def cost_of(processes: list[Process], name: str, workload: str) -> Cost:
    without = METRICS_PAIRS[name]
    costs, shares, medians = [], [], []
    offs, ons = [], []
    for process in processes:
        rounds = zip(process.cpu(BARE, workload), process.cpu(without, workload), process.cpu(name, workload))
        mine = []
        for bare, off, on in rounds:
            offs.append(off)
            ons.append(on)
            costs.append(on - off)
            mine.append((on - off) / (off - bare))
        shares += mine
        medians.append(statistics.median(mine))
    return Cost(
        statistics.median(offs),
        statistics.median(ons),
        statistics.median(costs),
        statistics.median(shares),
        (min(medians), max(medians)),
    )


def table(processes: list[Process]) -> str:
    lines = [
        "| prometheus_client | configuration | workload | CPU µs without | with | cost µs"
        " | cost / overhead without | range of process medians |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        mine = [p for p in processes if p.mode == mode]
        for name in METRICS_PAIRS:
            for workload in WORKLOADS:
                cost = cost_of(mine, name, workload)
                low, high = cost.share_range
                lines.append(
                    f"| {mode} | {name} | {workload} | {cost.without:.1f} | {cost.with_metrics:.1f}"
                    f" | {cost.cost:+.1f} | {cost.share:+.1%} | {low:+.1%} to {high:+.1%} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metrics", description=__doc__)
    parser.add_argument("--processes", type=int, default=12, help="fresh processes, half in each mode")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per process")
    parser.add_argument("--requests", type=int, default=2000, help="requests per batch")
    args = parser.parse_args(argv)
    names = [BARE, *(name for pair in METRICS_PAIRS.items() for name in pair)]
    processes = []
    with tempfile.TemporaryDirectory() as workdir, redis_server() as url:
        spec = {
            "configs": names,
            "context": dataclasses.asdict(Context(url, workdir)),
            "requests": args.requests,
            "repeats": args.repeats,
        }
        for number in range(args.processes):
            processes.append(run_process(MODES[number % 2], spec))
            print(f"process {number + 1}/{args.processes} done", file=sys.stderr, flush=True)
    print("CPU µs per request with metrics=True and without, in-process, interleaved")
    print(
        f"({args.processes} processes, half in each mode, x {args.repeats} repeats"
        f" of {args.requests}-request batches)"
    )
    print()
    print(table(processes))
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        json.dump(child(json.load(sys.stdin)), sys.stdout)
    else:
        sys.exit(main())
