"""The README as a newcomer uses it: valid reStructuredText, working code, a way into the docs.

The documentation's own examples are run by ``test_docs.py``; the public names are
checked against the API reference page there.
"""

from __future__ import annotations

import re
from pathlib import Path

import docutils.core
import docutils.utils
import flask
import webtest
from conftest import SECRET

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.rst").read_text(encoding="utf-8")
#: A README that grows past this becomes the manual again: the docs are the manual.
MAX_LINES = 250


def section(title: str) -> str:
    """The text of the README section ``title``, up to the next section."""
    match = re.search(rf"^{re.escape(title)}\n=+\n(.*?)(?=^\S[^\n]*\n=+\n|\Z)", README, re.M | re.S)
    assert match, f"no section {title!r}"
    return match.group(1)


def python_blocks(text: str) -> list[str]:
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:(?: {4}.*)?\n)+)", text)
    return [re.sub(r"^ {4}", "", block, flags=re.M) for block in blocks]


def test_readme_is_valid_restructuredtext_without_sphinx_roles():
    # What PyPI renders as long_description: any warning means a broken page or link,
    # and a Sphinx-only role (:doc:, :ref:) is an error to plain docutils.
    docutils.core.publish_doctree(
        README, settings_overrides={"halt_level": docutils.utils.Reporter.WARNING_LEVEL, "report_level": 5}
    )


def test_readme_stays_short():
    assert len(README.splitlines()) <= MAX_LINES


def test_every_docs_page_is_linked_and_every_link_leads_somewhere():
    links = set(re.findall(r"<((?:docs/)?[\w./-]+\.rst)>`_", README))
    for link in links:
        assert (ROOT / link).is_file(), link
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.rst")}
    pages -= {"docs/index.rst", "docs/changelog.rst"}  # the README is the index; CHANGELOG.rst is linked
    assert sorted(pages - links) == []
    assert "CHANGELOG.rst" in links


def test_quick_start_runs_and_counts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # its sessions.sqlite3 goes there, not in the checkout
    quick_start, _flask = python_blocks(section("Quick start"))
    namespace: dict[str, object] = {"__name__": "quick_start"}
    exec(quick_start, namespace)
    client = webtest.TestApp(namespace["app"], extra_environ={"wsgi.url_scheme": "https"})
    assert [client.get("/").text for _ in range(3)] == ["visits: 1\n", "visits: 2\n", "visits: 3\n"]


def test_the_flask_lines_of_the_quick_start_give_flask_session(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    monkeypatch.delenv("SESSION_STORE_URL", raising=False)
    _quick_start, with_flask = python_blocks(section("Quick start"))
    namespace: dict[str, object] = {"__name__": "readme_flask"}
    exec(with_flask, namespace)
    app = namespace["app"]
    assert isinstance(app, flask.Flask)

    @app.get("/")
    def count() -> str:
        flask.session["visits"] = flask.session.get("visits", 0) + 1
        return str(flask.session["visits"])

    client = app.test_client()
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
    assert (tmp_path / "sessions.sqlite3").exists()
