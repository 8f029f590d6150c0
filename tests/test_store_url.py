"""store_from_url: each scheme gives its store, configured as the URL says; bad URLs say why."""

from __future__ import annotations

import os
from typing import Any

import pytest
import redis
from conftest import SECRET, counter_app

from wsgi_session import SessionMiddleware, store_from_url
from wsgi_session.memory_store import MemoryStore
from wsgi_session.postgres_store import PostgresStore
from wsgi_session.redis_store import RedisStore
from wsgi_session.sqlite_store import SQLiteStore

PASSWORD = "hunter2-in-the-url"


def connection_kwargs(store: Any) -> dict[str, Any]:
    assert isinstance(store, RedisStore)
    return dict(store.client.connection_pool.connection_kwargs)


def test_memory():
    assert isinstance(store_from_url("memory://"), MemoryStore)


def test_sqlite_relative_and_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = store_from_url("sqlite:///sessions.sqlite3")
    assert isinstance(relative, SQLiteStore)
    assert relative.path == str(tmp_path / "sessions.sqlite3")
    absolute = store_from_url(f"sqlite:///{tmp_path}/other%20name.sqlite3")  # four slashes in all
    assert absolute.path == str(tmp_path / "other name.sqlite3")
    assert os.path.exists(absolute.path)


def test_redis_url_parts_reach_the_client():
    kwargs = connection_kwargs(store_from_url(f"redis://:{PASSWORD}@cache.internal:6380/3"))
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == (
        "cache.internal",
        6380,
        3,
        PASSWORD,
    )
    default = connection_kwargs(store_from_url("REDIS://localhost"))
    assert (default["host"], default.get("port", 6379), default.get("db", 0)) == ("localhost", 6379, 0)


def test_rediss_uses_tls_and_unix_a_socket():
    tls = store_from_url("rediss://cache.internal:6380/0")
    assert tls.client.connection_pool.connection_class is redis.SSLConnection
    socket_store = store_from_url(f"unix://:{PASSWORD}@/run/redis/redis.sock?db=2")
    kwargs = connection_kwargs(socket_store)
    assert (kwargs["path"], kwargs["db"], kwargs["password"]) == ("/run/redis/redis.sock", 2, PASSWORD)
    assert socket_store.client.connection_pool.connection_class is redis.UnixDomainSocketConnection


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "PostgreSQL"])
def test_postgres_schemes_connect_nowhere_yet(scheme):
    store = store_from_url(f"{scheme}://ann:{PASSWORD}@127.0.0.1:1/app")
    assert isinstance(store, PostgresStore)
    assert PASSWORD not in repr(store)


def test_a_postgres_url_reaches_the_server(postgres_server, postgres_url, close_after, make_client):
    url = postgres_server.url(postgres_server.PASSWORD_USER, postgres_server.PASSWORD)
    client = make_client(store=close_after(store_from_url(url)))
    assert [client.get("/").text for _ in range(2)] == ["1", "2"]
    assert postgres_server.execute("SELECT count(*) FROM wsgi_session") == [(1,)]


def test_a_wrong_postgres_password_fails_without_showing_it(postgres_server, close_after, caplog):
    from wsgi_session import SessionStoreError

    url = postgres_server.url(postgres_server.PASSWORD_USER, PASSWORD)  # not the role's password
    store = close_after(store_from_url(url.replace("postgresql://", "postgres://") + "?connect_timeout=2"))
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.url_scheme": "https", "HTTP_HOST": "h"}
    with pytest.raises(SessionStoreError) as raised:
        app(environ, lambda status, headers, exc_info=None: None)
    assert "password authentication failed" in caplog.text  # the pool's log says why
    assert PASSWORD not in str(raised.value) and PASSWORD not in caplog.text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "must be text"),
        (b"memory://", "must be text"),
        ("", "must start with a scheme"),
        (f"localhost:{PASSWORD}@6379", "must start with a scheme"),
        (f"mysql://root:{PASSWORD}@db/app", "scheme 'mysql' is not one of"),
        ("http://example.com/", "scheme 'http' is not one of"),
        ("memory://x", "memory:// takes nothing"),
        ("sqlite://", "database file"),
        ("sqlite:///", "database file"),
        ("sqlite://host/sessions.db", "sqlite:// URL names a host"),
        ("sqlite:///sessions.db?mode=ro", "sqlite:// URL takes no query"),
        (f"redis://:{PASSWORD}@h:port/0", "redis:// URL: the port"),
        (f"redis://:{PASSWORD}@h:70000/0", "redis:// URL: the port"),
        (f"rediss://:{PASSWORD}@/0", "rediss:// URL needs a host"),
        (f"redis://:{PASSWORD}@h/zero", "redis:// URL: the path must be a database number"),
        (f"redis://:{PASSWORD}@h/0?db=zero", "Invalid value for 'db'"),
        (f"unix://:{PASSWORD}@", "unix:// URL needs the path"),
        (f"postgresql://ann:{PASSWORD}@h:port/app", "conninfo: the port"),
        (f"postgresql://ann:{PASSWORD}@h/app?no_such_option=1", "no_such_option"),
        (f"postgresql://ann:{PASSWORD}@[::1/app", "conninfo is not a valid"),
    ],
)
def test_a_bad_url_names_the_part_and_never_the_password(tmp_path, monkeypatch, url, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message) as raised:
        store_from_url(url)
    assert PASSWORD not in str(raised.value)
    assert os.listdir(tmp_path) == []
