"""Store URLs: one setting, such as ``SESSION_STORE_URL``, picks the store and where it is.

A URL names a store and its place, nothing more: each store's other options keep
their defaults, and an app that needs another calls the store's function itself.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from .memory_store import create_memory_store
from .postgres_store import create_postgres_store
from .redis_store import create_redis_store
from .sqlite_store import create_sqlite_store
from .store import SessionStore

_SCHEMES = "memory://, sqlite:///, redis://, rediss://, unix:// or postgresql://"


def store_from_url(url: str) -> SessionStore:
    """Return the store that ``url`` names.

    ``memory://``
        ``create_memory_store()``: one process only.
    ``sqlite:///sessions.db``, ``sqlite:////var/lib/app/sessions.db``
        ``create_sqlite_store(path)``: the path after the third slash, relative to
        the current directory unless it starts with a fourth; percent-escapes decoded.
    ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS)
        ``create_redis_store(url=url)``: the URL as redis-py reads it.
    ``unix://[[user]:password@]/path/to/redis.sock[?db=N]``
        The same, for Redis over a Unix socket.
    ``postgresql://[user[:password]@][host][:port][/dbname][?param=value&...]``, ``postgres://...``
        ``create_postgres_store(url)``: the URL as libpq reads it, parameters
        included (``sslmode``, ``application_name``, several hosts).

    A URL that names no known scheme, or whose parts do not fit it, is a
    ``ValueError`` naming the scheme or the part; no message shows the password.
    """
    if not isinstance(url, str):
        raise ValueError(f"store URL must be text, not {type(url).__name__}")
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise ValueError(f"store URL must start with a scheme: {_SCHEMES}")
    # Schemes are case-insensitive; redis-py and libpq read them in lowercase only.
    scheme = scheme.lower()
    url = f"{scheme}://{rest}"
    if scheme == "memory":
        if rest:
            raise ValueError("memory:// takes nothing after the scheme")
        return create_memory_store()
    if scheme in ("postgresql", "postgres"):
        return create_postgres_store(url)  # libpq parses it; the errors hide the password
    if scheme not in ("sqlite", "redis", "rediss", "unix"):
        raise ValueError(f"store URL scheme {scheme!r} is not one of {_SCHEMES}")
    parts = urlsplit(url)
    if scheme == "sqlite":
        if parts.netloc:
            raise ValueError(
                "sqlite:// URL names a host: write sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        if parts.query or parts.fragment:
            raise ValueError("sqlite:// URL takes no query or fragment: only a path")
        return create_sqlite_store(unquote(parts.path[1:]))
    if scheme == "unix":
        if not parts.path:
            raise ValueError("unix:// URL needs the path of the Redis socket: unix:///run/redis/redis.sock")
    else:
        try:
            host, _port = parts.hostname, parts.port  # urllib checks the port as it reads it
        except ValueError:
            raise ValueError(f"{scheme}:// URL: the port must be a number from 0 to 65535") from None
        if not host:
            raise ValueError(f"{scheme}:// URL needs a host: {scheme}://host:6379/0")
        if parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise ValueError(f"{scheme}:// URL: the path must be a database number, such as /0")
    return create_redis_store(url=url)
