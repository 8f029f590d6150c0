"""Without PostgreSQL the PostgreSQL tests skip, saying once how to install it; CI fails instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from postgres_server import MISSING

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_TESTS = ["tests/test_postgres_store.py"]
# pytest, with the plugin looking for Debian's servers where there are none.
WITHOUT_SERVERS = (
    "import sys; sys.path.insert(0, 'tests'); import postgres_server, pytest; "
    "postgres_server.DEBIAN_SERVERS = '/nowhere/*/bin/postgres'; "
    "sys.exit(pytest.main(['-ra', '-p', 'no:cacheprovider', *sys.argv[1:]]))"
)


def run_without_postgres(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the PostgreSQL tests where no server can be found: on no PATH, nor Debian's directory."""
    environ = {k: v for k, v in os.environ.items() if k != "WSGI_SESSION_REQUIRE_POSTGRES"}
    environ.update(PATH=str(tmp_path), PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVERS, *POSTGRES_TESTS],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_postgres_skips_with_one_message(tmp_path):
    result = run_without_postgres(tmp_path)
    assert result.returncode == 0, result.stdout
    assert result.stdout.count(MISSING) == 1, result.stdout
    assert "apt-get install postgresql" in MISSING
    assert " passed" in result.stdout and " skipped" in result.stdout  # what needs no server still runs


def test_missing_postgres_fails_when_required(tmp_path):
    result = run_without_postgres(tmp_path, WSGI_SESSION_REQUIRE_POSTGRES="1")
    assert result.returncode == 1, result.stdout
    assert "Install them with: apt-get install postgresql" in result.stdout
