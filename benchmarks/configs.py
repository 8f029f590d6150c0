"""The configurations under test: one WSGI app each, all serving the same four paths.

- ``/setup`` starts a session of ten keys (``counter`` and ``k1`` .. ``k9``), and for
  the size sweep an eleventh, ``pad``, a string of the size swept;
- ``/w1`` reads the counter and writes it back plus one (W1);
- ``/w2`` only reads the ten keys (W2; without a cookie it is W4, a new visitor);
- ``/w3`` never touches the session (W3).

Each body is the counter as text, so that a run can check that the session was
really loaded and that concurrent increments all counted. A configuration belongs
to a family (plain WSGI, Flask or Pyramid) whose bare app, the same paths without
sessions, is the baseline its overhead is measured against.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import random
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Callable

from wsgi_session import SessionMiddleware, create_memory_store, get_session, update_session

SECRET = "benchmark-secret-0123456789-abcdefghijklmnop"
MAX_AGE = 86400
KEYS = ["counter"] + [f"k{i}" for i in range(1, 10)]
INITIAL = {"counter": 0, **{f"k{i}": f"value number {i}" for i in range(1, 10)}}

#: The configurations with metrics enabled, and the same without.
METRICS_PAIRS = {
    "wsgi_session (memory, metrics)": "wsgi_session (memory)",
    "wsgi_session (Redis, metrics)": "wsgi_session (Redis)",
}
MEMORY_METRICS, REDIS_METRICS = METRICS_PAIRS

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class Context:
    """What a configuration may need to build its app.

    ``sentinel`` is the ``host:port`` of a Sentinel watching a master with one
    replica; ``size`` the length of the ``pad`` string a new session holds.
    """

    redis_url: str | None
    workdir: str
    sentinel: str | None = None
    size: int = 0

    @property
    def initial(self) -> dict[str, Any]:
        """What ``/setup`` stores."""
        return dict(INITIAL, pad=padding(self.size)) if self.size else INITIAL


@functools.lru_cache
def padding(size: int) -> str:
    """``size`` letters and digits drawn at random (always the same): text that does not
    compress much, as real session data, so that a store that compresses gains no more."""
    return "".join(random.Random(size).choices(string.ascii_letters + string.digits, k=size))


@dataclass(frozen=True)
class Config:
    name: str
    family: str  # "wsgi", "flask" or "pyramid": which bare app is the baseline
    build: Callable[[Context], WSGIApp]
    redis: bool = False  # needs the Redis server
    postgres: bool = False  # needs the PostgreSQL server (benchmarks/postgres.py)
    sentinel: bool = False  # needs the Sentinel-watched master and replica
    is_bare: bool = False
    counts_updates: bool = True  # has a session whose counter the lost-update run can check


def read_all(session: Any) -> int:
    """W2: read every key, as a page that shows the session would."""
    values = [session.get(key) for key in KEYS]
    return int(values[0] or 0)


def respond(start_response: Callable[..., Any], body: object, headers: list[tuple[str, str]] | None = None):
    start_response("200 OK", [("Content-Type", "text/plain"), *(headers or [])])
    return [str(body).encode()]


# -- bare apps ---------------------------------------------------------------------


def bare_wsgi(_: Context) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return respond(start_response, 0)

    return app


@dataclass(frozen=True)
class FlaskSession:
    """What the Flask views do with the session, in the idiom of each library."""

    setup: Callable[[], None]
    increment: Callable[[], int]
    read: Callable[[], int]


def _flask_app(session: FlaskSession | None) -> Any:
    import flask

    # No SECRET_KEY: Flask's own cookie session stays off, so the bare app pays no session.
    app = flask.Flask("bench")

    @app.route("/setup")
    def setup() -> str:
        if session is not None:
            session.setup()
        return "0"

    @app.route("/w1")
    def w1() -> str:
        return "0" if session is None else str(session.increment())

    @app.route("/w2")
    def w2() -> str:
        return "0" if session is None else str(session.read())

    @app.route("/w3")
    def w3() -> str:
        return "plain"

    return app


def _flask_session_increment() -> int:
    import flask

    flask.session["counter"] = flask.session.get("counter", 0) + 1
    return int(flask.session["counter"])


def bare_flask(_: Context) -> WSGIApp:
    return _flask_app(None)  # type: ignore[no-any-return]


def flask_session_redis(ctx: Context) -> WSGIApp:
    import flask
    import redis
    from flask_session import Session

    app = _flask_app(
        FlaskSession(
            setup=lambda: flask.session.update(ctx.initial),
            increment=_flask_session_increment,
            read=lambda: read_all(flask.session),
        )
    )
    app.config.update(
        SECRET_KEY=SECRET,
        SESSION_TYPE="redis",
        SESSION_REDIS=redis.Redis.from_url(ctx.redis_url),
        SESSION_USE_SIGNER=True,
        SESSION_COOKIE_SECURE=True,
    )
    Session(app)
    return app  # type: ignore[no-any-return]


def _pyramid_app(session_factory: Any | None, initial: dict[str, Any]) -> WSGIApp:
    from pyramid.config import Configurator
    from pyramid.response import Response

    def w1(request: Any) -> Response:
        if session_factory is None:
            return Response("0")
        session = request.session
        session["counter"] = session.get("counter", 0) + 1
        return Response(str(session["counter"]))

    def w2(request: Any) -> Response:
        return Response("0" if session_factory is None else str(read_all(request.session)))

    def setup(request: Any) -> Response:
        if session_factory is not None:
            request.session.update(initial)
        return Response("0")

    with Configurator() as config:
        if session_factory is not None:
            config.set_session_factory(session_factory)
        for name, view in (("setup", setup), ("w1", w1), ("w2", w2), ("w3", lambda r: Response("plain"))):
            config.add_route(name, f"/{name}")
            config.add_view(view, route_name=name)
        return config.make_wsgi_app()  # type: ignore[no-any-return]


def bare_pyramid(_: Context) -> WSGIApp:
    return _pyramid_app(None, INITIAL)


def pyramid_session_redis(ctx: Context) -> WSGIApp:
    from pyramid_session_redis import RedisSessionFactory

    factory = RedisSessionFactory(
        SECRET,
        redis_url=ctx.redis_url,
        timeout=MAX_AGE,
        cookie_secure=True,
        cookie_samesite="Lax",
        serialize=lambda data: json.dumps(data).encode(),
        deserialize=json.loads,
    )
    return _pyramid_app(factory, ctx.initial)


# -- Beaker ------------------------------------------------------------------------


def _beaker(options: dict[str, Any], initial: dict[str, Any]) -> WSGIApp:
    from beaker.middleware import SessionMiddleware

    def page(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/w3":
            return respond(start_response, "plain")
        session = environ["beaker.session"]
        if path == "/setup":
            session.update(initial)
            session.save()
            return respond(start_response, 0)
        if path == "/w1":
            session["counter"] = session.get("counter", 0) + 1
            session.save()
            return respond(start_response, session["counter"])
        return respond(start_response, read_all(session))

    return SessionMiddleware(  # type: ignore[no-any-return]
        page,
        {
            "session.key": "session",
            "session.secret": SECRET,
            "session.timeout": MAX_AGE,
            "session.httponly": True,
            "session.secure": True,
            "session.samesite": "Lax",
            "session.data_serializer": "json",
            **options,
        },
    )


def beaker_memory(ctx: Context) -> WSGIApp:
    return _beaker({"session.type": "memory"}, ctx.initial)


def beaker_redis(ctx: Context) -> WSGIApp:
    return _beaker({"session.type": "ext:redis", "session.url": ctx.redis_url}, ctx.initial)


# -- wsgi_session -----------------------------------------------------------------


def _wsgi_session(store: Any, initial: dict[str, Any], *, metrics: bool = False) -> WSGIApp:
    def page(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/w3":
            return respond(start_response, "plain")
        if path == "/setup":
            update_session(environ, lambda s: initial)
            return respond(start_response, 0)
        if path == "/w1":
            visits = update_session(environ, lambda s: {"counter": s.get("counter", 0) + 1})["counter"]
            return respond(start_response, visits)
        return respond(start_response, read_all(get_session(environ)))

    return SessionMiddleware(page, store=store, secret=SECRET, max_age=MAX_AGE, metrics=metrics)


def wsgi_session_memory(ctx: Context) -> WSGIApp:
    return _wsgi_session(create_memory_store(max_entries=100_000), ctx.initial)


def wsgi_session_memory_metrics(ctx: Context) -> WSGIApp:
    """With Prometheus metrics: a store this cheap shows what counting costs."""
    return _wsgi_session(create_memory_store(max_entries=100_000), ctx.initial, metrics=True)


def wsgi_session_sqlite(ctx: Context) -> WSGIApp:
    from wsgi_session.sqlite_store import create_sqlite_store  # type: ignore[import-not-found]

    return _wsgi_session(create_sqlite_store(os.path.join(ctx.workdir, "sessions.sqlite3")), ctx.initial)


def wsgi_session_redis(ctx: Context) -> WSGIApp:
    from wsgi_session.redis_store import create_redis_store  # type: ignore[import-not-found]

    return _wsgi_session(create_redis_store(url=ctx.redis_url), ctx.initial)


def wsgi_session_redis_metrics(ctx: Context) -> WSGIApp:
    from wsgi_session.redis_store import create_redis_store

    return _wsgi_session(create_redis_store(url=ctx.redis_url), ctx.initial, metrics=True)


def wsgi_session_sentinel(ctx: Context) -> WSGIApp:
    """The Sentinel recipe of docs/stores.rst: each write waits for the master's one replica."""
    from redis.sentinel import Sentinel

    from wsgi_session.redis_store import create_redis_store

    from .redis_server import SERVICE

    assert ctx.sentinel is not None
    host, port = ctx.sentinel.rsplit(":", 1)
    sentinel = Sentinel([(host, int(port))], socket_timeout=1)
    master = sentinel.master_for(SERVICE, socket_timeout=2, socket_connect_timeout=2)
    return _wsgi_session(create_redis_store(client=master), ctx.initial)


def wsgi_session_redis_flask(ctx: Context) -> WSGIApp:
    import flask

    from wsgi_session.redis_store import create_redis_store

    def setup() -> None:
        update_session(flask.request, lambda s: ctx.initial)

    def increment() -> int:
        return int(update_session(flask.request, lambda s: {"counter": s.get("counter", 0) + 1})["counter"])

    app = _flask_app(FlaskSession(setup, increment, read=lambda: read_all(get_session(flask.request))))
    app.wsgi_app = SessionMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, store=create_redis_store(url=ctx.redis_url), secret=SECRET, max_age=MAX_AGE
    )
    return app  # type: ignore[no-any-return]


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def all_configs() -> list[Config]:
    """Every configuration this checkout can run; stores not yet built are left out."""
    from . import postgres
    from .raw import raw_minimum, raw_minimum_cas, raw_minimum_version_cas

    with_postgres = _importable("psycopg") and _importable("psycopg_pool") and _importable("flask_sqlalchemy")
    with_metrics = _importable("prometheus_client")

    configs = [
        Config("bare WSGI app", "wsgi", bare_wsgi, is_bare=True, counts_updates=False),
        Config("raw minimum (Redis)", "wsgi", raw_minimum, redis=True),
        Config("raw minimum + CAS (Redis)", "wsgi", raw_minimum_cas, redis=True),
        Config("raw minimum + version CAS (Redis)", "wsgi", raw_minimum_version_cas, redis=True),
        Config("Beaker (memory)", "wsgi", beaker_memory),
        Config("Beaker (ext:redis)", "wsgi", beaker_redis, redis=True),
        Config("wsgi_session (memory)", "wsgi", wsgi_session_memory),
    ]
    if with_metrics:
        configs.append(Config(MEMORY_METRICS, "wsgi", wsgi_session_memory_metrics))
    if _importable("wsgi_session.sqlite_store"):
        configs.append(Config("wsgi_session (SQLite)", "wsgi", wsgi_session_sqlite))
    if _importable("wsgi_session.redis_store"):
        configs.append(Config("wsgi_session (Redis)", "wsgi", wsgi_session_redis, redis=True))
        if with_metrics:
            configs.append(Config(REDIS_METRICS, "wsgi", wsgi_session_redis_metrics, redis=True))
        name = "wsgi_session (Sentinel, 1 replica)"
        configs.append(Config(name, "wsgi", wsgi_session_sentinel, redis=True, sentinel=True))
    if with_postgres:
        configs += postgres.wsgi_configs()
    configs += [
        Config("bare Flask app", "flask", bare_flask, is_bare=True, counts_updates=False),
        Config("Flask-Session (Redis)", "flask", flask_session_redis, redis=True),
    ]
    if _importable("wsgi_session.redis_store"):
        configs.append(Config("wsgi_session (Redis) in Flask", "flask", wsgi_session_redis_flask, redis=True))
    if with_postgres:
        configs += postgres.flask_configs()
    configs += [
        Config("bare Pyramid app", "pyramid", bare_pyramid, is_bare=True, counts_updates=False),
        Config("pyramid_session_redis", "pyramid", pyramid_session_redis, redis=True),
    ]
    return configs


def find_config(name: str) -> Config:
    for config in all_configs():
        if config.name == name:
            return config
    raise SystemExit(f"unknown configuration {name!r}")
