"""The results as tables (Markdown for the results folder, reStructuredText for the
README) and as a bar chart of the overheads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .configs import Config
from .inprocess import WORKLOADS, Concurrency, Timing
from .memory import Footprint
from .throughput import Throughput

RAW = "raw minimum (Redis)"
RAW_CAS = "raw minimum + CAS (Redis)"


@dataclass
class Results:
    meta: dict[str, str]
    configs: list[Config]
    timings: dict[tuple[str, str], Timing]
    round_trips: dict[tuple[str, str], float] = field(default_factory=dict)
    lost: dict[str, Concurrency] = field(default_factory=dict)
    concurrent_updates: int = 0
    problems: dict[str, list[str]] = field(default_factory=dict)
    throughput: dict[str, Throughput] = field(default_factory=dict)
    footprint: Footprint | None = None

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
        "x raw+CAS: divided by the raw minimum that writes with a compare-and-set script. "
        "W1 reads and increments a counter; W2 reads ten keys; W3 never touches the session; "
        "W4 is a new visitor who reads and gets no session. Round trips per request: Redis "
        "commands counted in redis-py, SQL statements counted in PostgreSQL's log. "
        "Lost updates: concurrent W1 requests of one session "
        "whose increment is missing from the final counter.",
        "",
        markdown_table(timing_rows(results)),
        "",
    ]
    if results.throughput:
        parts += ["Under gunicorn, wrk on 127.0.0.1:", "", markdown_table(throughput_rows(results)), ""]
    if results.footprint is not None:
        parts += [footprint_text(results.footprint), ""]
    for name, problems in results.problems.items():
        parts += [f"Check failed for {name}: {problem}" for problem in problems]
    parts += ["", "![overhead per request](benchmark.png)", ""]
    path.write_text("\n".join(parts), encoding="utf-8")


def write_rst(results: Results, path: Path) -> None:
    """The body of the README's Performance section after its prose: the run and its tables."""
    parts = [f"- {key}: {value}" for key, value in results.meta.items()]
    parts += ["", rst_table(timing_rows(results)), ""]
    if results.throughput:
        parts += [rst_table(throughput_rows(results)), ""]
    if results.footprint is not None:
        parts += [footprint_text(results.footprint), ""]
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
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 0.45 * len(names) + 1.8), sharey=True)
    for ax, (title, label, values, number) in zip(axes, panels):
        ax.barh(names, values, color=colours)
        ax.set_title(title)
        ax.set_xlabel(label)
        for y, value in enumerate(values):
            ax.text(value, y, f" {value:{number}}", va="center", fontsize=8)
        ax.margins(x=0.25)
    axes[0].invert_yaxis()  # shared: once turns all, to the order of the table
    date = results.meta.get("date", "")
    fig.suptitle(f"Session cost per request, in-process (lower is better), {date}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
