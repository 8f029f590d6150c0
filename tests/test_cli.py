"""The command line, run as a user would: ``python -m wsgi_session`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import webtest
from conftest import SECRET

from wsgi_session import (
    SessionMiddleware,
    create_sqlite_store,
    regenerate_session,
    sign_cookie,
    update_session,
)
from wsgi_session.events import short_hash
from wsgi_session.signing import new_session_id

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
    environment.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "wsgi_session", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    if environ["PATH_INFO"] == "/login":
        regenerate_session(environ)
        update_session(environ, lambda s: {"user_id": environ["QUERY_STRING"]})
    else:
        update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})
    start_response("200 OK", [])
    return [b""]


@pytest.fixture
def site(tmp_path: Path) -> tuple[str, SessionMiddleware]:
    url = f"sqlite:///{tmp_path / 'sessions.sqlite3'}"
    store = create_sqlite_store(tmp_path / "sessions.sqlite3")
    return url, SessionMiddleware(app, store=store, secret=SECRET, user_key="user_id")


def browser(middleware: SessionMiddleware) -> webtest.TestApp:
    return webtest.TestApp(middleware, extra_environ={"wsgi.url_scheme": "https", "REMOTE_ADDR": "10.1.2.3"})


def test_inspect_describes_a_session_and_shows_its_data_only_when_asked(site):
    url, middleware = site
    client = browser(middleware)
    client.get("/")
    client.get("/")
    cookie = client.cookies["session"]
    session_id = cookie[2:].rsplit(".", 1)[0]
    env = {"SESSION_STORE_URL": url, "SESSION_SECRET": SECRET}
    result = run("inspect", cookie, env=env)
    assert result.returncode == 0, result.stderr
    assert short_hash(session_id) in result.stdout
    for label in ("created:", "last active:", "size:", "expires:"):
        assert label in result.stdout
    assert "visits" not in result.stdout and session_id not in result.stdout
    with_data = run("inspect", f"session={cookie}", "--data", env=env)
    assert json.loads(with_data.stdout[with_data.stdout.index("{") :]) == {"visits": 2}
    assert session_id not in with_data.stdout + with_data.stderr


@pytest.mark.parametrize(
    ("cookie", "message", "code"),
    [
        ("s:forged.signature", "does not verify", 2),
        (sign_cookie("x" * 43, "another secret entirely, 32+ chars"), "does not verify", 2),
        (sign_cookie(new_session_id(), SECRET), "not in the store", 1),
    ],
)
def test_inspect_of_a_bad_or_unknown_cookie_is_one_line_and_a_failure(site, cookie, message, code):
    url, _ = site
    result = run("inspect", cookie, env={"SESSION_STORE_URL": url, "SESSION_SECRET": SECRET})
    assert result.returncode == code
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr and SECRET not in result.stderr + result.stdout


def test_count_and_purge(site, tmp_path):
    url, middleware = site
    for _ in range(3):
        browser(middleware).get("/")
    env = {"SESSION_STORE_URL": url}
    assert run("count", env=env).stdout.strip() == "3"
    store = create_sqlite_store(tmp_path / "sessions.sqlite3")
    for _ in range(5):
        store.set(new_session_id(), '{"created":1.0,"data":{}}', -10)  # already expired
    result = run("purge", env=env)
    assert result.returncode == 0, result.stderr
    assert "deleted 5 expired sessions" in result.stdout
    assert run("count", "--store", url).stdout.strip() == "3"
    # --store before the command's name, as in git -C or docker --host, is the same.
    assert run("--store", url, "count").stdout.strip() == "3"
    assert run("--store", "ftp://x", "count", "--store", url).stdout.strip() == "3"


def test_list_and_revoke_a_users_sessions(site):
    url, middleware = site
    ann = [browser(middleware) for _ in range(2)]
    for client in ann:
        client.get("/")
        client.get("/login?ann")
    browser(middleware).get("/login?bob")
    env = {"SESSION_STORE_URL": url, "SESSION_SECRET": SECRET}
    listed = run("list", "--user", "ann", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("10.1.2.3") == 2
    revoked = run("revoke", "--user", "ann", env=env)
    assert revoked.stdout.strip() == "ended 2 sessions of user ann"
    assert run("list", "--user", "ann", env=env).stdout == ""
    assert run("list", "--user", "bob", env=env).stdout.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["count"], {}, "SESSION_STORE_URL"),
        (["count"], {"SESSION_STORE_URL": "ftp://x"}, "scheme 'ftp'"),
        (["count", "--store", "postgresql://ann:hunter2@127.0.0.1:1/db"], {}, "the store failed"),
        (["count", "--store", "redis://:hunter2@127.0.0.1:1/0"], {}, "the store failed"),
        (["inspect", "s:x.y"], {"SESSION_STORE_URL": "memory://"}, "SESSION_SECRET"),
    ],
)
def test_bad_input_is_one_line_on_stderr_never_a_traceback(args, env, message):
    result = run(*args, env=env)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr


def test_the_installed_command_is_the_same(tmp_path):
    """``wsgi-session`` is installed by pip as a console script of ``wsgi_session.cli:main``."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["options.entry_points"]["console_scripts"].strip() == "wsgi-session = wsgi_session.cli:main"


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
def test_count_on_redis_counts_sessions_not_the_users_index(topology, request):
    from redis.cluster import RedisCluster

    from wsgi_session import create_redis_store

    if topology == "standalone":
        request.getfixturevalue("redis_client")
        url = request.getfixturevalue("redis_server").url
        store = create_redis_store(url=url)
    else:
        nodes = request.getfixturevalue("redis_cluster")
        for node in nodes:
            with node.client() as client:
                client.flushall()
        store = create_redis_store(client=RedisCluster(host="127.0.0.1", port=nodes[0].port))
        url = None
    middleware = SessionMiddleware(app, store=store, secret=SECRET, user_key="user_id")
    for user in ("ann", "bob", "ann"):
        browser(middleware).get(f"/login?{user}")
    assert len(store) == 3
    if url is not None:
        assert run("count", "--store", url).stdout.strip() == "3"
