"""The README as a newcomer uses it: valid reStructuredText, every public name, working code."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import docutils.core
import docutils.utils
import pytest
import webtest
from conftest import SECRET

import wsgi_session
from wsgi_session import SessionMiddleware, destroy_session, get_session, update_session

README = (Path(__file__).resolve().parent.parent / "README.rst").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of the README section ``title``, up to the next section."""
    match = re.search(rf"^{re.escape(title)}\n=+\n(.*?)(?=^\S[^\n]*\n=+\n)", README, re.M | re.S)
    assert match, f"no section {title!r}"
    return match.group(1)


def python_blocks(text: str) -> list[str]:
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:(?: {4}.*)?\n)+)", text)
    return [re.sub(r"^ {4}", "", block, flags=re.M) for block in blocks]


def test_readme_is_valid_restructuredtext():
    # What PyPI renders as long_description: any warning means a broken page or link.
    docutils.core.publish_doctree(
        README, settings_overrides={"halt_level": docutils.utils.Reporter.WARNING_LEVEL, "report_level": 5}
    )


@pytest.mark.parametrize("name", wsgi_session.__all__)
def test_every_public_name_is_in_the_api_reference(name):
    assert re.search(rf"``{re.escape(name)}\b", section("API reference")), name


def test_quick_start_runs_and_counts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # its sessions.sqlite3 goes there, not in the checkout
    (code,) = python_blocks(section("Quick start"))
    namespace: dict[str, object] = {"__name__": "quick_start"}
    exec(code, namespace)
    client = webtest.TestApp(namespace["app"], extra_environ={"wsgi.url_scheme": "https"})
    assert [client.get("/").text for _ in range(3)] == ["visits: 1\n", "visits: 2\n", "visits: 3\n"]


def dict_store():
    (code,) = python_blocks(section("Writing a store"))
    namespace: dict[str, object] = {}
    exec(code, namespace)
    return namespace["DictStore"]()


def store_app(environ, start_response):
    if environ["PATH_INFO"] == "/logout":
        destroy_session(environ)
        body = repr(get_session(environ))
    else:
        body = str(update_session(environ, lambda s: {"n": s.get("n", 0) + 1})["n"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


def test_the_store_of_writing_a_store_works():
    store = dict_store()
    client = webtest.TestApp(
        SessionMiddleware(store_app, store=store, secret=SECRET),
        extra_environ={"wsgi.url_scheme": "https"},
    )
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
    assert len(store._records) == 1
    assert client.get("/logout").text == "None"
    assert store._records == {}


def test_the_store_of_writing_a_store_loses_no_concurrent_update():
    store = dict_store()
    middleware = SessionMiddleware(store_app, store=store, secret=SECRET)
    client = webtest.TestApp(middleware, extra_environ={"wsgi.url_scheme": "https"})
    cookie = client.get("/").headers["Set-Cookie"].split(";")[0]

    def work():
        for _ in range(50):
            environ = {"PATH_INFO": "/", "HTTP_COOKIE": cookie, "wsgi.url_scheme": "https"}
            b"".join(middleware(environ, lambda status, headers, exc_info=None: None))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.get("/").text == str(1 + 4 * 50 + 1)
