"""PostgreSQL in the benchmark: a throwaway server, and the configurations that use it.

wsgi_session's PostgreSQL store, plain and in Flask, beside Flask-Session's
SQLAlchemy backend on the same server, through the same driver (psycopg 3). The
server runs with fsync off: the benchmark compares what each library asks of the
database, not the disk.

The server's URL reaches every process of a run (the timing processes, gunicorn)
in the environment variable ``BENCH_POSTGRES_URL``. Round trips are counted in the
server's own log: every statement the counting connections send is logged,
``BEGIN``, ``COMMIT`` and ``ROLLBACK`` included.
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .configs import (
    INITIAL,
    MAX_AGE,
    SECRET,
    Config,
    Context,
    FlaskSession,
    WSGIApp,
    _flask_app,
    _flask_session_increment,
    _wsgi_session,
    read_all,
)
from .redis_server import free_port

URL_VARIABLE = "BENCH_POSTGRES_URL"


def _url() -> str:
    url = os.environ.get(URL_VARIABLE)
    if not url:
        raise RuntimeError(f"{URL_VARIABLE} is not set: the PostgreSQL server of the run is not started")
    return url


def wsgi_session_postgres(ctx: Context) -> WSGIApp:
    from wsgi_session import create_postgres_store

    return _wsgi_session(create_postgres_store(_url()), ctx.initial)


def wsgi_session_postgres_flask(_: Context) -> WSGIApp:
    import flask

    from wsgi_session import SessionMiddleware, create_postgres_store, get_session, update_session

    def setup() -> None:
        update_session(flask.request, lambda s: INITIAL)

    def increment() -> int:
        return int(update_session(flask.request, lambda s: {"counter": s.get("counter", 0) + 1})["counter"])

    app = _flask_app(FlaskSession(setup, increment, read=lambda: read_all(get_session(flask.request))))
    app.wsgi_app = SessionMiddleware(
        app.wsgi_app, store=create_postgres_store(_url()), secret=SECRET, max_age=MAX_AGE
    )
    return app  # type: ignore[no-any-return]


def flask_session_sqlalchemy(_: Context) -> WSGIApp:
    import flask
    from flask_session import Session
    from flask_sqlalchemy import SQLAlchemy

    app = _flask_app(
        FlaskSession(
            setup=lambda: flask.session.update(INITIAL),
            increment=_flask_session_increment,
            read=lambda: read_all(flask.session),
        )
    )
    app.config.update(
        SECRET_KEY=SECRET,
        SQLALCHEMY_DATABASE_URI=_url().replace("postgresql://", "postgresql+psycopg://", 1),
        SESSION_TYPE="sqlalchemy",
        SESSION_USE_SIGNER=True,
        SESSION_COOKIE_SECURE=True,
        PERMANENT_SESSION_LIFETIME=MAX_AGE,
    )
    app.config["SESSION_SQLALCHEMY"] = SQLAlchemy(app)
    Session(app)
    return app  # type: ignore[no-any-return]


def wsgi_configs() -> list[Config]:
    return [Config("wsgi_session (PostgreSQL)", "wsgi", wsgi_session_postgres, postgres=True)]


def flask_configs() -> list[Config]:
    return [
        Config("Flask-Session (SQLAlchemy, PostgreSQL)", "flask", flask_session_sqlalchemy, postgres=True),
        Config("wsgi_session (PostgreSQL) in Flask", "flask", wsgi_session_postgres_flask, postgres=True),
    ]


# -- the server ----------------------------------------------------------------------


@dataclass
class PostgresServer:
    url: str
    log: Path
    version: str

    def counted_url(self, name: str) -> str:
        """The URL of connections whose statements the server logs under ``name``."""
        return f"{self.url}?application_name=count-{name}&options=-c%20log_statement%3Dall"

    def statements(self, name: str) -> int:
        prefix = f"count-{name}|"
        lines = self.log.read_text(errors="replace").splitlines()
        return sum(
            1
            for line in lines
            if line.startswith(prefix) and ("LOG:  statement: " in line or "LOG:  execute " in line)
        )


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a PostgreSQL server of Debian's package on a free port; yield it; always stop it.

    Its URL is set in ``BENCH_POSTGRES_URL`` meanwhile. Run as root, it runs as the
    ``postgres`` user, since PostgreSQL refuses root.
    """
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parent.parent.name)
    )
    if not found:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
    postgres = Path(found[-1])
    as_postgres: dict[str, Any] = {}
    directory = Path(tempfile.mkdtemp(prefix="wsgi-session-bench-postgres-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(directory, user.pw_uid, user.pw_gid)
        as_postgres = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    port, log = free_port(), directory / "postgres.log"
    process = None
    try:
        subprocess.run(
            [
                postgres.with_name("initdb"),
                "-D",
                directory / "data",
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            **as_postgres,
        )
        settings = [
            f"port={port}",
            "listen_addresses=127.0.0.1",
            "unix_socket_directories=",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "log_line_prefix=%a|",
        ]
        with log.open("ab") as output:
            process = subprocess.Popen(
                [postgres, "-D", directory / "data", *(f"-c{setting}" for setting in settings)],
                stdout=output,
                stderr=subprocess.STDOUT,
                **as_postgres,
            )
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        version = _wait_until_ready(url, process)
        os.environ[URL_VARIABLE] = url
        yield PostgresServer(url, log, version)
    finally:
        os.environ.pop(URL_VARIABLE, None)
        if process is not None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _wait_until_ready(url: str, process: subprocess.Popen[bytes]) -> str:
    """Wait until the server answers; return its version."""
    import psycopg

    deadline = time.monotonic() + 20
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as connection:
                version = connection.info.server_version  # 150018 for 15.18
                return f"{version // 10000}.{version % 10000} (fsync off)"
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("postgres did not start") from None
            time.sleep(0.05)


def round_trips(
    server: PostgresServer, config: Config, context: Context, path: str, cookie: bool, requests: int = 20
) -> float:
    """SQL statements per request of ``path``, on an app of ``config`` of its own, counted by the server.

    The app is warmed first, so that its connections are open and its statements
    prepared, as in the timed runs.
    """
    from .inprocess import call, start_session

    name = f"{config.name}-{path}-{cookie}".replace(" ", "_")
    os.environ[URL_VARIABLE] = server.counted_url(name)
    try:
        app = config.build(context)
    finally:
        os.environ[URL_VARIABLE] = server.url
    session = start_session(config, app) if cookie else None
    for _ in range(10):
        call(app, path, session)
    before = server.statements(name)
    for _ in range(requests):
        call(app, path, session)
    return (server.statements(name) - before) / requests
