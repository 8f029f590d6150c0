"""Metrics through prometheus_client: counted in process, and added up under gunicorn -w 4."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import webtest
from conftest import SECRET, contested_session, counter_app
from gunicorn_server import request, serve
from prometheus_client import REGISTRY
from redis_servers import RedisServer, require_redis

from wsgi_session import (
    SessionConflictError,
    SessionMiddleware,
    create_memory_store,
    create_redis_store,
    destroy_session,
    regenerate_session,
    revoke_sessions,
    sign_cookie,
    update_session,
)
from wsgi_session.record import encode_record
from wsgi_session.signing import new_session_id


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


#: The counts a request of test_loads_writes_and_store_calls_are_counted may change.
COUNTED = [
    ("new", "loads", {"outcome": "new"}),
    ("found", "loads", {"outcome": "found"}),
    ("bad", "loads", {"outcome": "bad_cookie"}),
    ("unknown", "loads", {"outcome": "unknown"}),
    ("replaced", "loads", {"outcome": "replaced"}),
    ("create", "writes", {"kind": "create"}),
    ("update", "writes", {"kind": "update"}),
    ("regenerate", "writes", {"kind": "regenerate"}),
    ("destroy", "writes", {"kind": "destroy"}),
]


def counts() -> dict[str, float]:
    return {name: sample(f"wsgi_session_{metric}_total", **labels) for name, metric, labels in COUNTED}


def test_importing_wsgi_session_or_a_middleware_without_metrics_imports_no_prometheus():
    code = (
        "import sys, wsgi_session\n"
        "wsgi_session.SessionMiddleware(lambda e, s: [], store=wsgi_session.create_memory_store(), "
        "secret='x' * 32)\n"
        "assert 'prometheus_client' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_loads_writes_and_store_calls_are_counted():
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/login":
            regenerate_session(environ)
        elif path == "/logout":
            destroy_session(environ)
        else:
            return counter_app(environ, start_response)
        start_response("200 OK", [])
        return [b""]

    middleware = SessionMiddleware(app, store=create_memory_store(), secret=SECRET, metrics=True)
    client = webtest.TestApp(middleware, extra_environ={"wsgi.url_scheme": "https"})
    before = counts()
    gets = sample("wsgi_session_store_seconds_count", operation="get")
    client.get("/")  # new, create
    old = client.cookies["session"]
    client.get("/")  # found, update
    client.get("/login")  # found, regenerate
    client.get("/", headers={"Cookie": f"session={old}"})  # replaced
    client.get("/logout")  # found, destroy
    client.get("/", headers={"Cookie": "session=s:forged.signature"})  # bad cookie, create
    client.get("/read", headers={"Cookie": f"session={sign_cookie(new_session_id(), SECRET)}"})  # unknown
    after = counts()
    assert {name: after[name] - before[name] for name in before} == {
        "new": 1,
        "found": 3,
        "bad": 1,
        "unknown": 1,
        "replaced": 1,
        "create": 2,
        "update": 1,
        "regenerate": 1,
        "destroy": 1,
    }
    # One GET per request that read a cookie's ID, plus those of the ends that follow.
    assert sample("wsgi_session_store_seconds_count", operation="get") - gets == 5


def test_the_other_outcomes_and_kinds_are_counted(tmp_path: Path) -> None:
    """Expired, corrupt and unavailable loads; touch and revoke writes; give-ups and
    store errors: each counted once it happens, through real stores."""
    store = create_memory_store()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/login":
            update_session(environ, lambda s: {"user": "ann"})
        return counter_app(environ, start_response)

    def stored(record: str) -> str:
        session_id = new_session_id()
        store.set(session_id, record, 3600)
        return f"session={sign_cookie(session_id, SECRET)}"

    def counted() -> dict[str, float]:
        return {
            "expired": sample("wsgi_session_loads_total", outcome="expired"),
            "corrupt": sample("wsgi_session_loads_total", outcome="corrupt"),
            "touch": sample("wsgi_session_writes_total", kind="touch"),
            "revoke": sample("wsgi_session_writes_total", kind="revoke"),
        }

    before = counted()
    middleware = SessionMiddleware(
        app, store=store, secret=SECRET, metrics=True, rolling=True, absolute_timeout=60, user_key="user"
    )
    client = webtest.TestApp(middleware, extra_environ={"wsgi.url_scheme": "https"})
    client.get("/read", headers={"Cookie": stored(encode_record(time.time() - 3600, "{}"))})  # expired
    client.get("/read", headers={"Cookie": stored("not a session")})  # corrupt
    client.get("/login")
    client.get("/read")  # rolling: a touch
    assert revoke_sessions(middleware, "ann", keep_current=False) == 1
    after = counted()
    assert {name: after[name] - before[name] for name in before} == dict.fromkeys(before, 1)

    # Another writer wins every try of the request: it gives up.
    session_id, outrun = contested_session(store)

    def contested(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        update_session(environ, outrun)
        start_response("200 OK", [])
        return [b""]

    conflicts, give_ups = (
        sample("wsgi_session_conflicts_total"),
        sample("wsgi_session_conflict_give_ups_total"),
    )
    contest = webtest.TestApp(
        SessionMiddleware(contested, store=store, secret=SECRET, metrics=True),
        extra_environ={"wsgi.url_scheme": "https"},
    )
    with pytest.raises(SessionConflictError):
        contest.get("/", headers={"Cookie": f"session={sign_cookie(session_id, SECRET)}"})
    assert sample("wsgi_session_conflict_give_ups_total") - give_ups == 1
    assert sample("wsgi_session_conflicts_total") - conflicts == 50

    # Redis stopped: the load fails, and the request goes on with an anonymous session.
    require_redis()
    server = RedisServer(tmp_path / "redis")
    server.start()
    redis_store = create_redis_store(url=server.url, socket_timeout=1, socket_connect_timeout=1)
    server.stop()
    unavailable = sample("wsgi_session_loads_total", outcome="unavailable")
    errors = sample("wsgi_session_store_errors_total", operation="get")
    outage = webtest.TestApp(
        SessionMiddleware(
            counter_app, store=redis_store, secret=SECRET, metrics=True, on_store_error="anonymous"
        ),
        extra_environ={"wsgi.url_scheme": "https"},
    )
    assert outage.get("/", headers={"Cookie": f"session={sign_cookie(new_session_id(), SECRET)}"}).text == "1"
    assert sample("wsgi_session_loads_total", outcome="unavailable") - unavailable == 1
    assert sample("wsgi_session_store_errors_total", operation="get") - errors == 1


def test_four_gunicorn_workers_add_up(tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        "WSGI_SESSION_TEST_DB": str(tmp_path / "sessions.sqlite3"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    with serve("tests.metrics_gunicorn_app:app", tmp_path, ["--workers", "4"], env) as port:
        _, cookie, body = request(port, "GET", "/")
        assert body == "1" and cookie is not None

        def visit(_: int) -> int:
            return sum(request(port, "GET", "/", cookie)[0] == 200 for _ in range(50))

        with ThreadPoolExecutor(4) as pool:
            served = sum(pool.map(visit, range(4)))
        _, _, text = request(port, "GET", "/metrics")
    assert served == 200

    def value(pattern: str) -> float:
        found = re.search(rf"^{pattern} (\S+)$", text, re.M)
        assert found, f"{pattern} not in /metrics"
        return float(found.group(1))

    assert value(r'wsgi_session_loads_total\{outcome="new"\}') == 1
    assert value(r'wsgi_session_loads_total\{outcome="found"\}') == 200
    assert value(r'wsgi_session_writes_total\{kind="create"\}') == 1
    assert value(r'wsgi_session_writes_total\{kind="update"\}') == 200
    # Each conflicting try is counted and retried: every update still lands once.
    assert value(r'wsgi_session_store_seconds_count\{operation="compare_and_set"\}') == (
        200 + value("wsgi_session_conflicts_total")
    )
    assert len(set(metrics_dir.iterdir())) >= 2  # more than one worker wrote its counts


@pytest.mark.parametrize("enabled", [False, True])
def test_metrics_change_no_response(enabled):
    middleware = SessionMiddleware(counter_app, store=create_memory_store(), secret=SECRET, metrics=enabled)
    client = webtest.TestApp(middleware, extra_environ={"wsgi.url_scheme": "https"})
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
