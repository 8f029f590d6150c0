"""Without Chromium the browser tests skip, naming the install commands; CI fails instead."""

from __future__ import annotations

import shutil

import pytest
from browsers import require_browser


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A machine on whose PATH neither chromium nor chromedriver is found."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("WSGI_SESSION_REQUIRE_BROWSER", raising=False)
    return monkeypatch


def test_missing_chromium_skips_naming_the_install_commands(no_chromium):
    install = "Install them with: apt-get install chromium chromium-driver && pip install selenium"
    with pytest.raises(pytest.skip.Exception, match="are skipped") as skipped:
        require_browser()
    assert install in str(skipped.value)


def test_missing_chromium_fails_when_required(no_chromium):
    no_chromium.setenv("WSGI_SESSION_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="are required here"):
        require_browser()
