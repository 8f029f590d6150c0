"""The SQLite store through real faults, under a real gunicorn (row E10): files it may
not write, and a full disk. Each test shows the fault (requests fail), fixes it, and
shows the same worker process writing again, without a restart; acknowledged visits
are counted against the stored ones.

As root, file modes do not bind: the app runs under ``setpriv`` without
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so that a mode of 0444 stops it as it stops
a service user (a normal user needs no wrapper). The full disk is a 1 MiB tmpfs in a
mount namespace of the app's own (``unshare``). Where either cannot be had, its tests
skip, unless ``WSGI_SESSION_REQUIRE_FAULTS=1`` (set by CI) makes that a failure.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import NoReturn

import pytest
from conftest import SECRET
from gunicorn_server import ROOT, request, serve

from wsgi_session import create_sqlite_store, sign_cookie
from wsgi_session.record import decode_record, encode_data, encode_record
from wsgi_session.signing import new_session_id

#: Requests sent during a fault, and again after it is fixed.
EPISODE = 5
#: gunicorn options: one worker, so that every request meets the same process.
OPTIONS = ["--preload", "--workers", "1"]
APP = "tests.sqlite_gunicorn_app:app"


def skip_or_fail(reason: str) -> NoReturn:
    if os.environ.get("WSGI_SESSION_REQUIRE_FAULTS") == "1":
        pytest.fail(f"{reason} (required: WSGI_SESSION_REQUIRE_FAULTS=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def unprivileged(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A command prefix under which file modes bind, checked on a read-only file."""
    wrapper = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    probe = tmp_path_factory.mktemp("modes") / "read-only"
    probe.write_bytes(b"")
    probe.chmod(0o444)
    opens = [sys.executable, "-c", "import sys; open(sys.argv[1], 'r+b')", str(probe)]
    try:
        result = subprocess.run([*wrapper, *opens], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        skip_or_fail("file modes do not bind for root without setpriv (util-linux), which is not installed")
    if "PermissionError" not in result.stderr:
        skip_or_fail(f"file modes do not bind here, even under {wrapper}: {result.stderr.strip()!r}")
    return wrapper


def app_env(db: Path) -> dict[str, str]:
    return {"WSGI_SESSION_TEST_SQLITE_DB": str(db), "WSGI_SESSION_TEST_SECRET": SECRET}


def seed(db: Path, visits: int) -> str:
    """Write a session of ``visits`` straight to the file; return its cookie.

    The connection is closed at once, as the arbiter's is, so that when the fault
    starts no process holds the file open.
    """
    create_sqlite_store(db)
    session_id = new_session_id()
    payload = encode_record(time.time(), encode_data({"visits": visits}))
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.execute(
            "INSERT INTO wsgi_session (id, payload, version, expires_at) VALUES (?, ?, 1, ?)",
            (session_id, payload, time.time() + 3600),
        )
    return "session=" + sign_cookie(session_id, SECRET)


def stored_visits(db: Path) -> int:
    with closing(sqlite3.connect(db)) as connection:
        (payload,) = connection.execute("SELECT payload FROM wsgi_session").fetchone()
    record = decode_record(payload)
    assert record is not None
    return int(record[1]["visits"])


def log_of_one_worker(tmp_path: Path) -> str:
    """gunicorn's log, once it is checked that one worker served all along, never restarted."""
    log = (tmp_path / "gunicorn.log").read_text()
    assert log.count("Booting worker") == 1, log
    return log


def visits(port: int, cookie: str, count: int, path: str = "/") -> list[tuple[int, str]]:
    """``count`` requests with the cookie: each one's status and body."""
    return [(status, body) for status, _, body in (request(port, "GET", path, cookie) for _ in range(count))]


def writes_fail_and_reads_go_on(port: int, cookie: str, stored: int) -> str:
    """During a fault: EPISODE writes fail, a read sees the ``stored`` visits. Returns
    the worker's pid.
    """
    failed = visits(port, cookie, EPISODE)
    assert [status for status, _ in failed] == [500] * EPISODE
    [(status, body)] = visits(port, cookie, 1, "/read")
    assert status == 200 and body.split()[0] == str(stored)
    return body.split()[1]


def writes_count_on(port: int, cookie: str, worker: str | None, stored: int) -> None:
    """After a fault: EPISODE writes count on from ``stored``, all in ``worker`` if named."""
    after = visits(port, cookie, EPISODE)
    worker = worker or after[0][1].split()[1]
    assert after == [(200, f"{n} {worker}") for n in range(stored + 1, stored + 1 + EPISODE)]


def kept_every_acknowledged_visit(db: Path, tmp_path: Path) -> None:
    """After a read-only episode: the seeded visit and EPISODE acknowledged ones are
    stored, no more; SQLite's error is in the log of the one worker."""
    assert stored_visits(db) == 1 + EPISODE
    assert "attempt to write a readonly database" in log_of_one_worker(tmp_path)


# -- read-only files -------------------------------------------------------------


def test_a_worker_writes_again_once_the_database_file_is_writable(tmp_path, unprivileged):
    db = tmp_path / "sessions.sqlite3"
    cookie = seed(db, visits=1)
    wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
    with serve(APP, tmp_path, OPTIONS, app_env(db), unprivileged) as port:
        db.chmod(0o444)
        # The read leaves the worker a connection opened read-only, which must not
        # outlive the fault.
        worker = writes_fail_and_reads_go_on(port, cookie, stored=1)
        # Opened while the file was read-only, the worker's connections created -wal
        # and -shm with the file's mode then: fixing the file alone is not enough.
        assert wal.stat().st_mode & 0o777 == shm.stat().st_mode & 0o777 == 0o444
        db.chmod(0o644)
        assert visits(port, cookie, 1)[0][0] == 500
        for path in (db, wal, shm):
            if path.exists():
                path.chmod(0o644)
        writes_count_on(port, cookie, worker, stored=1)
    kept_every_acknowledged_visit(db, tmp_path)


def test_a_worker_writes_again_once_wal_and_shm_are_writable(tmp_path, unprivileged):
    db = tmp_path / "sessions.sqlite3"
    cookie = seed(db, visits=1)
    wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
    holder = closing(sqlite3.connect(db))
    with serve(APP, tmp_path, OPTIONS, app_env(db), unprivileged) as port, holder as holder:
        holder.execute("SELECT COUNT(*) FROM wsgi_session")  # -wal and -shm exist while it is open
        wal.chmod(0o444)
        shm.chmod(0o444)
        worker = writes_fail_and_reads_go_on(port, cookie, stored=1)
        wal.chmod(0o644)
        shm.chmod(0o644)
        writes_count_on(port, cookie, worker, stored=1)
    kept_every_acknowledged_visit(db, tmp_path)


def test_a_worker_writes_again_once_the_directory_is_writable(tmp_path, unprivileged):
    directory = tmp_path / "sessions"
    directory.mkdir()
    db = directory / "sessions.sqlite3"
    cookie = seed(db, visits=1)
    with serve(APP, tmp_path, OPTIONS, app_env(db), unprivileged) as port:
        directory.chmod(0o555)
        # No -wal and -shm can be created beside the file: even reads fail.
        failed = visits(port, cookie, EPISODE) + visits(port, cookie, 1, "/read")
        assert [status for status, _ in failed] == [500] * (EPISODE + 1)
        directory.chmod(0o755)
        writes_count_on(port, cookie, None, stored=1)
    kept_every_acknowledged_visit(db, tmp_path)


# -- refused at start-up ---------------------------------------------------------

CREATE = """
import sys
from wsgi_session import create_sqlite_store
try:
    create_sqlite_store(sys.argv[1])
except ValueError as error:
    print(error)
else:
    print("accepted")
"""


@pytest.mark.parametrize("read_only", ["s.sqlite3", "s.sqlite3-wal", "s.sqlite3-shm", "."])
def test_a_file_or_directory_it_cannot_write_is_refused_at_start_up(tmp_path, unprivileged, read_only):
    directory = tmp_path / "sessions"
    directory.mkdir()
    db = directory / "s.sqlite3"
    create_sqlite_store(db)
    target = (directory / read_only).resolve()
    with closing(sqlite3.connect(db)) as holder:
        holder.execute("SELECT COUNT(*) FROM wsgi_session")  # -wal and -shm exist while it is open
        mode = target.stat().st_mode
        target.chmod(mode & ~0o222)
        try:
            result = subprocess.run(
                [*unprivileged, sys.executable, "-c", CREATE, str(db)],
                capture_output=True,
                text=True,
                check=False,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        finally:
            target.chmod(mode)
    assert result.stdout.startswith(f"path {str(db)!r}: "), result.stderr
    assert f"may not write {str(target)!r}" in result.stdout


# -- a full disk -----------------------------------------------------------------

MOUNT_TMPFS = 'mount -t tmpfs -o size=1m wsgi-session-test "$0" && exec "$@"'


@pytest.fixture
def own_tmpfs(tmp_path: Path) -> tuple[Path, list[str]]:
    """A directory and a wrapper that runs a command with a 1 MiB tmpfs mounted there.

    The mount lives in the command's own user and mount namespaces: nothing outside
    sees it, and it goes when the command ends. Others reach it through
    ``/proc/<pid>/root``.
    """
    disk = tmp_path / "disk"
    disk.mkdir()
    wrapper = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", MOUNT_TMPFS, str(disk)]
    try:
        result = subprocess.run([*wrapper, "true"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        skip_or_fail("a full disk needs unshare (util-linux), which is not installed")
    if result.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs in a namespace of its own: {result.stderr.strip()!r}")
    return disk, wrapper


def fill(directory: Path) -> None:
    """Write the file ``filler`` in ``directory`` until the file system has no room left."""
    descriptor = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(descriptor, bytes(4096))  # a page at a time: none is left half free
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(descriptor)


def test_a_worker_writes_again_once_the_disk_has_room(tmp_path, own_tmpfs):
    disk, wrapper = own_tmpfs
    with serve(APP, tmp_path, OPTIONS, app_env(disk / "sessions.sqlite3"), wrapper) as port:
        status, cookie, body = request(port, "GET", "/")
        assert status == 200 and cookie is not None
        worker = body.split()[1]
        assert visits(port, cookie, 2) == [(200, f"{n} {worker}") for n in (2, 3)]
        # The worker's own view of the directory: the tmpfs mounted over it.
        seen = Path(f"/proc/{worker}/root") / disk.relative_to("/")
        fill(seen)
        assert writes_fail_and_reads_go_on(port, cookie, stored=3) == worker
        (seen / "filler").unlink()
        writes_count_on(port, cookie, worker, stored=3)
    assert "database or disk is full" in log_of_one_worker(tmp_path)
