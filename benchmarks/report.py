"""The results as tables (Markdown for the results folder, reStructuredText for the
docs' performance page) and as a bar chart of the overheads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .configs import METRICS_PAIRS, Config
from .inprocess import SIZES, WORKLOADS, Concurrency, Timing, sweep_workload
from .memory import Footprint
from .throughput import Throughput
from .users import CALLS, SESSIONS, Listing

RAW = "raw minimum (Redis)"
#: The least work that loses no update: a compare-and-set on a constant-size version.
RAW_CAS = "raw minimum + version CAS (Redis)"
STANDALONE = "wsgi_session (Redis)"
DURABLE = "wsgi_session (Sentinel, 1 replica)"


@dataclass
class Results:
    meta: dict[str, str]
    configs: list[Config]
    timings: dict[tuple[str, str], Timing]
    round_trips: dict[tuple[str, str], float] = field(default_factory=dict)
    bytes_sent: dict[tuple[str, int], float] = field(default_factory=dict)  # to Redis, per W1, by size
    lost: dict[str, Concurrency] = field(default_factory=dict)
    concurrent_updates: int = 0
    problems: dict[str, list[str]] = field(default_factory=dict)
    throughput: dict[str, Throughput] = field(default_factory=dict)
    footprint: Footprint | None = None
    listings: dict[str, Listing] = field(default_factory=dict)  # list_sessions, by configuration

    def bare(self, config: Config) -> Config:
        return next(c for c in self.configs if c.is_bare and c.family == config.family)

    def overhead(self, name: str, workload: str) -> float | None:
        config = next((c for c in self.configs if c.name == name), None)
        if config is None or (name, workload) not in self.timings:
            return None
        return self.timings[name, workload].cpu - self.timings[self.bare(config).name, workload].cpu

    def ratio(self, name: str, workload: str, to: str) -> str:
        mine, floor = self.overhead(name, workload), self.overhead(to, workload)
        if mine is None or floor is None or floor <= 0:
            return ""
        return f"{mine / floor:.2f}x"


def _us(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def timing_rows(results: Results) -> list[list[str]]:
    header = [
        "configuration",
        "W1 CPU µs (wall)",
        "W1 overhead",
        "x raw",
        "x raw+CAS",
        "W2 CPU µs (wall)",
        "W2 overhead",
        "x raw",
        "W3 overhead",
        "W4 overhead",
        "round trips W1/W2/W3/W4",
        f"lost updates of {results.concurrent_updates}",
    ]
    rows = [header]
    for config in results.configs:
        name = config.name
        row = [name]
        for workload in ("W1", "W2"):
            timing = results.timings.get((name, workload))
            row.append("" if timing is None else f"{timing.cpu:.1f} ({timing.wall:.1f})")
            if config.is_bare:
                row += ["", ""] if workload == "W2" else ["", "", ""]
                continue
            row.append(_us(results.overhead(name, workload)))
            row.append(results.ratio(name, workload, RAW))
            if workload == "W1":
                row.append(results.ratio(name, workload, RAW_CAS))
        for workload in ("W3", "W4"):
            row.append("" if config.is_bare else _us(results.overhead(name, workload)))
        trips = [results.round_trips.get((name, w)) for w in WORKLOADS]
        row.append("" if trips[0] is None else "/".join(f"{t:g}" for t in trips if t is not None))
        lost = results.lost.get(name)
        failed = f" ({lost.failed} failed)" if lost and lost.failed else ""
        row.append("" if lost is None else f"{lost.lost}{failed}")
        rows.append(row)
    return rows


def throughput_rows(results: Results) -> list[list[str]]:
    rows = [["configuration (gunicorn, 1 sync worker)", "W1 req/s", "W3 req/s", "W3 / bare W3 (paired)"]]
    for config in results.configs:
        measured = results.throughput.get(config.name)
        if measured is None:
            continue
        rps, ratio = measured.requests_per_second, measured.ratio_to_bare
        rows.append(
            [config.name, f"{rps['/w1']:.0f}", f"{rps['/w3']:.0f}", "" if ratio is None else f"{ratio:.2f}"]
        )
    return rows


def _size(size: int) -> str:
    return sweep_workload(size).removeprefix("W1 ")


def sweep_rows(results: Results) -> list[list[str]]:
    """W1 by the size of the session's extra string: CPU µs (wall), and bytes sent to Redis."""
    header = ["configuration"]
    for size in SIZES:
        header += [f"{_size(size)}: CPU µs (wall)", "bytes to Redis"]
    rows = [header]
    for config in results.configs:
        if not any((config.name, size) in results.bytes_sent for size in SIZES):
            continue
        row = [config.name]
        for size in SIZES:
            timing = results.timings.get((config.name, sweep_workload(size)))
            row.append("" if timing is None else f"{timing.cpu:.1f} ({timing.wall:.1f})")
            sent = results.bytes_sent.get((config.name, size))
            row.append("" if sent is None else f"{sent:,.0f}")
        rows.append(row)
    return rows


def durability_text(results: Results) -> str:
    """What waiting for a replica costs on W1: the Sentinel configuration against the standalone one."""
    durable, standalone = results.timings.get((DURABLE, "W1")), results.timings.get((STANDALONE, "W1"))
    if durable is None or standalone is None:
        return ""
    cpu, wall = durable.cpu / standalone.cpu, durable.wall / standalone.wall
    return (
        f"Cost of durability: W1 through a Sentinel master whose writes wait for its replica takes"
        f" {durable.cpu:.1f} µs of CPU ({cpu:.2f}x the standalone server's {standalone.cpu:.1f}) and"
        f" {durable.wall:.1f} µs of wall time ({wall:.2f}x its {standalone.wall:.1f}),"
        " in the same round trips."
    )


def metrics_text(results: Results) -> str:
    """What ``metrics=True`` cost in this run: W1 and W2 with it, against the same configuration without."""
    parts = []
    for name, without in METRICS_PAIRS.items():
        for workload in ("W1", "W2"):
            on, off = results.timings.get((name, workload)), results.timings.get((without, workload))
            overhead = results.overhead(without, workload)
            if on is None or off is None or not overhead:
                continue
            cost = on.cpu - off.cpu
            parts.append(f"{workload} {cost:+.1f} µs ({cost / overhead:+.1%} of the overhead) on {without}")
    if not parts:
        return ""
    return (
        "Metrics (metrics=True, prometheus_client's registry in the process), in this run's medians: "
        + "; ".join(parts)
        + ". Timed interleaved over many processes, with multiprocess mode: python -m benchmarks.metrics."
    )


def listing_rows(results: Results) -> list[list[str]]:
    rows = [["store", "sessions listed", "round trips per call", "wall ms per call", "CPU ms per call"]]
    for name, listing in results.listings.items():
        trips = "none (in process)" if listing.round_trips is None else str(listing.round_trips)
        rows.append([name, f"{listing.sessions:,}", trips, f"{listing.wall_ms:.1f}", f"{listing.cpu_ms:.1f}"])
    return rows


LISTING_TEXT = (
    f"list_sessions of a user signed in {SESSIONS:,} times, called from the middleware;"
    f" medians of {CALLS} calls. Round trips: Redis commands and pipelines sent, counted in redis-py;"
    " statements, counted in PostgreSQL's log and traced by sqlite3 (SQLite's are calls into a"
    " library in the process)."
)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def rst_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(row: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |"

    out = [rule, line(rows[0]), rule.replace("-", "=")]
    for row in rows[1:]:
        out += [line(row), rule]
    return "\n".join(out)


def footprint_text(footprint: Footprint | None) -> str:
    if footprint is None:
        return ""
    return (
        f"Memory store: {footprint.bytes_per_session:.0f} bytes of Python heap per stored session "
        f"(ten short keys, written through the middleware). With max_entries={footprint.max_entries}: "
        f"{footprint.entries_when_full} entries when full and {footprint.entries_after_flood} after "
        f"{2 * footprint.max_entries} more new visitors, {footprint.refused} of them refused (a full store "
        f"evicts no live session); heap change over the first {footprint.max_entries} of them: "
        f"{footprint.first_flood_growth:+d} bytes, over the next {footprint.max_entries}: "
        f"{footprint.second_flood_growth:+d} bytes."
    )


def meta_text(meta: dict[str, str]) -> str:
    return "; ".join(f"{key}: {value}" for key, value in meta.items())


SWEEP_TEXT = (
    "Size sweep: W1 on a session that also holds a string of the size given, on each Redis "
    "configuration. CPU µs per request (wall in parentheses), median of the repeats, a tenth of the "
    "requests per batch; bytes the Redis server received per request (INFO stats "
    "total_net_input_bytes; the Sentinel's master for the Sentinel configuration)."
)


def write_markdown(results: Results, path: Path) -> None:
    parts = [
        "# wsgi_session benchmark",
        "",
        meta_text(results.meta),
        "",
        "In-process, direct WSGI calls; median of the repeats in several fresh processes. "
        "CPU microseconds per request "
        "(time.process_time), wall time in parentheses. Overhead: CPU µs over the matching bare "
        "app (plain WSGI, Flask or Pyramid). x raw: that overhead divided by the raw minimum's "
        "(parse the cookie, one HMAC verify, one Redis GET, JSON, one SET EX, one HMAC sign); "
        "x raw+CAS: divided by the raw minimum that writes with a compare-and-set script on a "
        "constant-size version (raw minimum + CAS compares the whole value instead, which it sends twice). "
        "W1 reads and increments a counter; W2 reads ten keys; W3 never touches the session; "
        "W4 is a new visitor who reads and gets no session. Round trips per request: Redis "
        "commands counted in redis-py, SQL statements counted in PostgreSQL's log. "
        "Lost updates: concurrent W1 requests of one session "
        "whose increment is missing from the final counter.",
        "",
        markdown_table(timing_rows(results)),
        "",
    ]
    if durability_text(results):
        parts += [durability_text(results), ""]
    if metrics_text(results):
        parts += [metrics_text(results), ""]
    if results.bytes_sent:
        parts += [SWEEP_TEXT, "", markdown_table(sweep_rows(results)), ""]
    if results.throughput:
        parts += ["Under gunicorn, wrk on 127.0.0.1:", "", markdown_table(throughput_rows(results)), ""]
    if results.footprint is not None:
        parts += [footprint_text(results.footprint), ""]
    if results.listings:
        parts += [LISTING_TEXT, "", markdown_table(listing_rows(results)), ""]
    for name, problems in results.problems.items():
        parts += [f"Check failed for {name}: {problem}" for problem in problems]
    parts += ["", "![overhead per request](benchmark.png)", ""]
    path.write_text("\n".join(parts), encoding="utf-8")


def write_rst(results: Results, path: Path) -> None:
    """What docs/performance.rst includes after its prose: the run and its tables."""
    parts = [f"- {key}: {value}" for key, value in results.meta.items()]
    parts += ["", rst_table(timing_rows(results)), ""]
    if durability_text(results):
        parts += [durability_text(results), ""]
    if metrics_text(results):
        parts += [metrics_text(results), ""]
    if results.bytes_sent:
        parts += [SWEEP_TEXT, "", rst_table(sweep_rows(results)), ""]
    if results.throughput:
        parts += [rst_table(throughput_rows(results)), ""]
    if results.footprint is not None:
        parts += [footprint_text(results.footprint), ""]
    if results.listings:
        parts += [LISTING_TEXT, "", rst_table(listing_rows(results)), ""]
    path.write_text("\n".join(parts), encoding="utf-8")


def write_chart(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = [c for c in results.configs if not c.is_bare]
    names = [c.name for c in configs]
    colours = [
        "tab:green" if n.startswith("wsgi_session") else "tab:gray" if n.startswith("raw") else "tab:blue"
        for n in names
    ]
    panels: list[tuple[str, str, list[float], str]] = [
        (title, "CPU µs over the bare app", [max(results.overhead(n, w) or 0.0, 0.0) for n in names], ".1f")
        for w, title in (
            ("W1", "W1 read + increment"),
            ("W2", "W2 read 10 keys"),
            ("W3", "W3 session untouched"),
            ("W4", "W4 new visitor"),
        )
    ]
    if results.lost:
        lost = [float(results.lost[n].lost) if n in results.lost else 0.0 for n in names]
        title = f"lost of {results.concurrent_updates} concurrent updates"
        panels.append((title, "updates lost", lost, ".0f"))
    swept = [c.name for c in configs if any((c.name, size) in results.bytes_sent for size in SIZES)]
    height = 0.45 * len(names) + 1.8
    fig = plt.figure(figsize=(4 * len(panels), height + (4.5 if swept else 0)), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[height, 4.5]) if swept else (fig, None)
    axes = top.subplots(1, len(panels), sharey=True)
    for ax, (title, label, values, number) in zip(axes, panels):
        ax.barh(names, values, color=colours)
        ax.set_title(title)
        ax.set_xlabel(label)
        for y, value in enumerate(values):
            ax.text(value, y, f" {value:{number}}", va="center", fontsize=8)
        ax.margins(x=0.25)
    axes[0].invert_yaxis()  # shared: once turns all, to the order of the table
    if bottom is not None:
        _sweep_panels(results, swept, bottom.subplots(1, 2))
    date = results.meta.get("date", "")
    fig.suptitle(f"Session cost per request, in-process (lower is better), {date}")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _sweep_panels(results: Results, names: list[str], axes: Any) -> None:
    """W1 by session size: bytes sent to Redis, and CPU µs, one line per configuration."""
    for name in names:
        style = "-" if name.startswith("wsgi_session") else ":" if name.startswith("raw") else "--"
        sent = [results.bytes_sent.get((name, size)) for size in SIZES]
        axes[0].plot(SIZES, sent, style, marker="o", label=name)
        cpu = [results.timings.get((name, sweep_workload(size))) for size in SIZES]
        axes[1].plot(SIZES, [None if t is None else t.cpu for t in cpu], style, marker="o", label=name)
    axes[0].plot(SIZES, SIZES, color="black", linewidth=0.8, label="the string's size")
    for ax, title, label in (
        (axes[0], "W1 by session size: bytes sent to Redis", "bytes per request"),
        (axes[1], "W1 by session size: CPU", "CPU µs per request"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("size of the string the session holds (bytes)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7)
