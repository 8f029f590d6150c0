"""The Redis store: sessions shared by every process and host that reach one Redis.

Each session is one string key, ``prefix + id``, holding the payload JSON, with the
session's TTL set by Redis itself. Every operation is a single command on that one
key, so the store works the same on a standalone server, a Sentinel-managed master
and a Redis Cluster.

redis-py is imported only when a Redis store is created, so that importing
``wsgi_session`` costs nothing to apps on other stores.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Union

from .store import StoredSession

if TYPE_CHECKING:
    from redis import Redis
    from redis.cluster import RedisCluster

    Client = Union[Redis, RedisCluster]

#: Seconds to wait for a reply, and for a connection. A session command takes well
#: under a millisecond; past these bounds the request fails instead of hanging.
DEFAULT_SOCKET_TIMEOUT = 2.0
DEFAULT_SOCKET_CONNECT_TIMEOUT = 2.0

# The version of a session is the payload that get() read: the script writes only
# if the key still holds exactly those bytes. Equal bytes mean equal data, so a
# write that passes the check is right even if the key changed and changed back.
# One argument (the version) deletes; three (version, payload, ttl) replace.
_COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
if #ARGV == 1 then
    redis.call('DEL', KEYS[1])
else
    redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return 1
"""


class RedisStore:
    """Session payloads in Redis, one key each, expired by Redis.

    A read is one ``GET``; a write one ``SET ... EX``, ``EXPIRE``, ``DEL``, or one
    ``EVALSHA`` of the compare-and-set script (loaded by redis-py on first use).
    """

    def __init__(self, client: Client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._compare_and_set = client.register_script(_COMPARE_AND_SET)

    def __repr__(self) -> str:  # never shows a password from the URL
        return f"<RedisStore prefix={self.prefix!r} client={type(self.client).__name__}>"

    def get(self, session_id: str) -> StoredSession | None:
        payload = self.client.get(self.prefix + session_id)
        return None if payload is None else StoredSession(payload, payload)

    def set(self, session_id: str, payload: str, ttl: int) -> None:
        self.client.set(self.prefix + session_id, payload, ex=ttl)

    def delete(self, session_id: str) -> None:
        self.client.delete(self.prefix + session_id)

    def touch(self, session_id: str, ttl: int) -> None:
        self.client.expire(self.prefix + session_id, ttl)

    def compare_and_set(self, session_id: str, version: Hashable, payload: str | None, ttl: int) -> bool:
        args: list[Any] = [version] if payload is None else [version, payload, ttl]
        return bool(self._compare_and_set(keys=[self.prefix + session_id], args=args))


def create_redis_store(
    *,
    url: str | None = None,
    host: str = "localhost",
    port: int = 6379,
    password: str | None = None,
    db: int = 0,
    client: Client | None = None,
    prefix: str = "session:",
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
    socket_connect_timeout: float = DEFAULT_SOCKET_CONNECT_TIMEOUT,
) -> RedisStore:
    """Return a store keeping each session at ``prefix + id`` in Redis.

    Connect with ``url`` (``redis://``, ``rediss://`` or ``unix://``), or with
    ``host``, ``port``, ``password`` and ``db``; or pass a ready ``client``: a
    ``redis.Redis``, a ``redis.cluster.RedisCluster``, or a Sentinel's
    ``master_for(...)``, whose own timeouts and retries then apply.

    The store's own client waits at most ``socket_timeout`` seconds for a reply and
    ``socket_connect_timeout`` for a connection, and never retries a command: a
    retried compare-and-set whose reply was lost could apply an update twice. It
    opens connections on first use; its pool notices a fork (gunicorn workers,
    with or without ``--preload``) and opens new ones in the child.
    """
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("prefix must be a non-empty string: it keeps session keys apart from others")
    for option, seconds in (
        ("socket_timeout", socket_timeout),
        ("socket_connect_timeout", socket_connect_timeout),
    ):
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise ValueError(f"{option} must be a positive number of seconds, not {seconds!r}")
    if client is not None:
        if url is not None or (host, port, password, db) != ("localhost", 6379, None, 0):
            raise ValueError("client excludes url, host, port, password and db: configure the client")
        if client.get_encoder().decode_responses:
            raise ValueError("client must not decode responses (decode_responses=False): payloads are bytes")
        return RedisStore(client, prefix)

    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    options: dict[str, Any] = {
        "password": password,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
        # A pooled connection the server closed (a restart) is noticed and replaced
        # when it is taken from the pool, so no command needs a retry.
        "retry": Retry(NoBackoff(), 0),
    }
    if url is not None:
        if (host, port, db) != ("localhost", 6379, 0):
            raise ValueError("url excludes host, port and db: put them in the URL")
        return RedisStore(redis.Redis.from_url(url, **options), prefix)
    return RedisStore(redis.Redis(host=host, port=port, db=db, **options), prefix)
