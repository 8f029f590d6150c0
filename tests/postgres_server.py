"""A real PostgreSQL server for the tests, from Debian's ``postgresql`` package.

Each server is a ``postgres`` process of its own, in a new data directory made by
``initdb``, on a free 127.0.0.1 port, with the fast settings of a throwaway server
(no fsync), always stopped after, by its PID. Run as root, both run as the
``postgres`` user, since PostgreSQL refuses root. Without the server binaries or
psycopg the tests that need them are skipped with one message naming the install
commands, unless ``WSGI_SESSION_REQUIRE_POSTGRES=1`` (set by CI) makes that a failure.

Every statement a connection named ``counted-*`` sends is logged, so that a test
can count the statements a request costs in the server's own log.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from redis_servers import free_port

MISSING = (
    "PostgreSQL or psycopg not found: the PostgreSQL tests are skipped. "
    "Install them with: apt-get install postgresql && pip install -e '.[postgres]'"
)
#: Seconds a server gets to start answering, or to stop, before the test fails.
STARTUP_BOUND = 20.0


#: Where Debian installs each version's server programs (not on PATH).
DEBIAN_SERVERS = "/usr/lib/postgresql/*/bin/postgres"


def binaries() -> tuple[str, str] | None:
    """``initdb`` and ``postgres`` of the newest version Debian installed, else from PATH."""
    found = sorted(glob.glob(DEBIAN_SERVERS), key=lambda path: int(Path(path).parent.parent.name))
    if found:
        return str(Path(found[-1]).with_name("initdb")), found[-1]
    initdb, postgres = shutil.which("initdb"), shutil.which("postgres")
    return (initdb, postgres) if initdb and postgres else None


def require_postgres() -> tuple[str, str]:
    """Skip (or fail, under ``WSGI_SESSION_REQUIRE_POSTGRES=1``) without PostgreSQL or psycopg."""
    found = binaries()
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        found = None
    if found:
        return found
    if os.environ.get("WSGI_SESSION_REQUIRE_POSTGRES") == "1":
        pytest.fail(MISSING.replace("are skipped", "are required here"), pytrace=False)
    pytest.skip(MISSING)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Report every "no PostgreSQL" skip at one place, so that ``-ra`` shows it once."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple) and MISSING in report.longrepr[2]:
        report.longrepr = (__file__, require_postgres.__code__.co_firstlineno, report.longrepr[2])


class PostgresServer:
    """One ``postgres`` process on a fixed port, which can be stopped and started again."""

    #: A role that must give its password (SCRAM); every other role is trusted.
    PASSWORD_USER, PASSWORD = "secret_user", "hunter2-not-to-be-shown"

    def __init__(self) -> None:
        self.initdb, self.postgres = require_postgres()
        self.port = free_port()
        # Not under pytest's temporary directory, which only root may enter.
        self.directory = Path(tempfile.mkdtemp(prefix="wsgi-session-postgres-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._as_postgres: dict[str, Any] = {}
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)
            self._as_postgres = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        subprocess.run(
            [self.initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=STARTUP_BOUND * 3,
            **self._as_postgres,
        )
        hba = f"host all {self.PASSWORD_USER} 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\n"
        (self.data / "pg_hba.conf").write_text(hba)

    def url(self, user: str = "postgres", password: str | None = None) -> str:
        secret = "" if password is None else f":{password}"
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/postgres"

    def counted_url(self, name: str) -> str:
        """The URL of a connection whose every statement the server logs, under ``name``."""
        return f"{self.url()}?application_name=counted-{name}&options=-c%20log_statement%3Dall"

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers."""
        import psycopg

        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "log_line_prefix": "%a|",
            "log_min_messages": "warning",
            "max_connections": "200",
        }
        command = [self.postgres, "-D", str(self.data)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, **self._as_postgres
            )
        deadline = time.monotonic() + STARTUP_BOUND
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"postgres did not answer within {STARTUP_BOUND} s") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): open connections are ended, the data is kept."""
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STARTUP_BOUND)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def execute(self, statement: str, *parameters: Any) -> list[tuple[Any, ...]]:
        """Run one statement past any store, as the superuser; return its rows."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            cursor = connection.execute(statement, parameters)
            return cursor.fetchall() if cursor.description else []

    def statements(self, name: str) -> list[str]:
        """The statements the connections of ``counted_url(name)`` ran, from the server's log."""
        prefix = f"counted-{name}|"
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                message = line[len(prefix) :]
                for kind in ("LOG:  statement: ", "LOG:  execute "):
                    if message.startswith(kind):
                        found.append(message[len(kind) :])
        return found


def own_server() -> PostgresServer:
    """A new server, started, for a test that stops it; ``remove()`` it after."""
    server = PostgresServer()
    try:
        server.start()
    except BaseException:
        server.remove()
        raise
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the whole run; each test empties it (``postgres_url``)."""
    server = own_server()
    try:
        server.execute(f"CREATE ROLE {server.PASSWORD_USER} LOGIN PASSWORD '{server.PASSWORD}'")
        server.execute(f"GRANT ALL ON SCHEMA public TO {server.PASSWORD_USER}")
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of the shared server, its tables dropped for this test."""
    postgres_server.execute("DROP SCHEMA public CASCADE")
    postgres_server.execute("CREATE SCHEMA public")
    postgres_server.execute(f"GRANT ALL ON SCHEMA public TO {postgres_server.PASSWORD_USER}")
    return postgres_server.url()


@pytest.fixture
def close_after() -> Iterator[Callable[[Any], Any]]:
    """``close_after(store)`` closes the store's connections when the test ends."""
    stores: list[Any] = []

    def close_later(store: Any) -> Any:
        stores.append(store)
        return store

    yield close_later
    for store in stores:
        store.close()
