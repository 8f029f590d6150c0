"""The benchmark runs end to end: one tiny in-process round, no timing asserted."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from redis_servers import require_redis

# The benchmark draws its chart with matplotlib, from benchmarks/requirements.txt,
# which CI installs; the README's test command alone does not.
pytest.importorskip("matplotlib", reason="pip install -r benchmarks/requirements.txt")

ROOT = Path(__file__).resolve().parent.parent


def run_benchmark(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_names_quick_mode():
    result = run_benchmark("--help")
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout


def test_one_tiny_run_writes_table_and_chart(tmp_path):
    result = run_benchmark(
        "--quick",
        "--no-gunicorn",
        "--only",
        "wsgi_session (memory)",
        "--requests",
        "3",
        "--repeats",
        "1",
        "--output",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "results.md").read_text(encoding="utf-8")
    row = next(line for line in table.splitlines() if line.startswith("| wsgi_session (memory)"))
    assert row.rstrip(" |").endswith("| 0"), row  # no lost update among the concurrent increments
    assert "Memory store:" in table
    # list_sessions found the user's every session, without a server to count round trips to
    assert "| wsgi_session (memory) | 1,000 | none (in process) |" in table
    assert (tmp_path / "benchmark.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "results.rst").exists()


def test_metrics_cost_in_both_modes_of_prometheus_client():
    """python -m benchmarks.metrics fails unless the metrics counted the sessions it loaded."""
    pytest.importorskip("prometheus_client")
    require_redis()
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.metrics", "--processes", "2", "--repeats", "1", "--requests", "3"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for mode in ("in-process registry", "multiprocess files"):
        for store in ("memory", "Redis"):
            assert f"| {mode} | wsgi_session ({store}, metrics) | W1 |" in result.stdout
