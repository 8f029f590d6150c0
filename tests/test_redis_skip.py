"""Without redis-server the Redis tests skip, saying once how to install it; CI fails instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from redis_servers import MISSING

ROOT = Path(__file__).resolve().parent.parent
REDIS_TESTS = [
    "tests/test_redis_store.py",
    "tests/test_redis_gunicorn.py",
    "tests/test_redis_upgrade.py",
    "tests/test_redis_failover.py",
]


def run_without_redis(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the Redis tests with a PATH on which no redis-server can be found."""
    environ = {k: v for k, v in os.environ.items() if k != "WSGI_SESSION_REQUIRE_REDIS"}
    environ.update(PATH=str(tmp_path), PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", *REDIS_TESTS],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_redis_skips_with_one_message(tmp_path):
    result = run_without_redis(tmp_path)
    assert result.returncode == 0, result.stdout
    assert result.stdout.count(MISSING) == 1, result.stdout
    assert "apt-get install redis-server" in MISSING
    assert " passed" in result.stdout  # the tests that need no server still run


def test_missing_redis_fails_when_required(tmp_path):
    result = run_without_redis(tmp_path, WSGI_SESSION_REQUIRE_REDIS="1")
    assert result.returncode == 1, result.stdout
    assert "Install them with: apt-get install redis-server" in result.stdout
