"""The benchmark runs end to end: one tiny in-process round, no timing asserted."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert (tmp_path / "benchmark.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "results.rst").exists()
