"""The PostgreSQL store under real gunicorn processes: forks, with and without --preload,
and two gunicorn instances sharing one database as two hosts would."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import SECRET
from gunicorn_server import request, serve


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no-preload"])
def test_each_worker_uses_a_connection_of_its_own(postgres_url, tmp_path, preload):
    options = ["--workers", "2", *(["--preload"] if preload else [])]
    env = {"WSGI_SESSION_TEST_POSTGRES_URL": postgres_url}
    with serve("tests.postgres_gunicorn_app:app", tmp_path, options, env) as port:
        status, cookie, body = request(port, "GET", "/")
        assert status == 200 and cookie is not None and body.split()[0] == "1"

        # A reply shows the count its request computed; on a conflict the write-back
        # counts again on fresher data, so the stored count is what must be exact.
        def visit_25_times(_: int) -> list[list[int]]:
            replies = []
            for _ in range(25):
                status, _, body = request(port, "GET", "/", cookie)
                assert status == 200, body
                replies.append([int(word) for word in body.split()])
            return replies

        with ThreadPoolExecutor(8) as pool:
            replies = [reply for replies in pool.map(visit_25_times, range(8)) for reply in replies]

        assert request(port, "GET", "/", cookie)[2].split()[0] == "202"  # 1 + 8 x 25 + 1: none lost
    backends_of = {}
    for _, worker, backend, _ in replies:
        backends_of.setdefault(worker, set()).add(backend)
    assert len(backends_of) == 2, "both workers served"
    (first,), (second,) = backends_of.values()  # one connection per worker...
    assert first != second  # ...of its own
    imported = {imported for *_, imported in replies}
    if preload:  # the arbiter's connection, opened at import, was used by no worker
        assert len(imported) == 1 and not imported & {first, second}
    else:  # each worker imported the app, and connected, itself
        assert imported == {first, second}


def test_two_gunicorn_instances_share_sessions_through_one_database(postgres_url, tmp_path):
    env = {"SESSION_SECRET": SECRET, "SESSION_STORE_URL": postgres_url}
    options = ["--workers", "2"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        serve("examples.app:app", tmp_path / "a", options, env) as a,
        serve("examples.app:app", tmp_path / "b", options, env) as b,
    ):
        status, cookie, _ = request(a, "POST", "/login", form="user=alice")
        assert status == 303 and cookie is not None
        bodies = [request(port, "GET", "/", cookie)[2] for port in (b, a, b, b, a)]
    assert bodies == [f"visits: {n}\nlogged in as alice\n" for n in range(1, 6)]
