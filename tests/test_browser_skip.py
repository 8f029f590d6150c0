"""Without Chromium the browser tests skip, naming the install commands; CI fails instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from browsers import MISSING

ROOT = Path(__file__).resolve().parent.parent
BROWSER_TESTS = ["tests/test_browser_sessions.py", "tests/test_browser_race.py"]


def run_without_chromium(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the browser tests with a PATH on which neither chromium nor chromedriver is found."""
    environ = {k: v for k, v in os.environ.items() if k != "WSGI_SESSION_REQUIRE_BROWSER"}
    environ.update(PATH=str(tmp_path), PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", *BROWSER_TESTS],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_chromium_skips_every_browser_test(tmp_path):
    result = run_without_chromium(tmp_path)
    assert result.returncode == 0, result.stdout
    assert "5 skipped" in result.stdout and MISSING in result.stdout, result.stdout
    assert "apt-get install chromium chromium-driver" in MISSING


def test_missing_chromium_fails_when_required(tmp_path):
    result = run_without_chromium(tmp_path, WSGI_SESSION_REQUIRE_BROWSER="1")
    assert result.returncode == 1, result.stdout
    assert "5 errors" in result.stdout, result.stdout  # each test's fixture fails
    assert "are required here" in result.stdout
