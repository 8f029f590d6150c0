"""The Redis store: sessions shared by every process and host that reach one Redis.

Each session is one string key, ``prefix + id``, with the session's TTL set by Redis
itself. Every operation touches that one key only, so the store works the same on a
standalone server, a Sentinel-managed master and a Redis Cluster.

The key holds the session layer's JSON object with a version in front:
``{"v":"<token>",`` then the payload less its opening brace. The token is random and
new on every write, so a compare-and-set sends it and not the old payload: an update
puts the session on the wire once, and the script compares 22 bytes, not the session.
It is still one JSON object, which the first release's decoder reads (it ignores
unknown keys); a value without the prefix was written by that release, and its
version is its SHA-1 digest, computed only then.

A write waits for ``min_replicas`` replicas (``WAIT``) in the same round trip, by
default every replica there is: a write answered as done survives a failover,
whichever replica it promotes.

redis-py is imported only when a Redis store is created, so that importing
``wsgi_session`` costs nothing to apps on other stores.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, Union, cast

from .errors import SessionStoreError
from .signing import SESSION_ID_LENGTH
from .store import StoredSession, UserSession

if TYPE_CHECKING:
    from redis import ConnectionPool, Redis
    from redis.cluster import RedisCluster

    Client = Union[Redis, RedisCluster]

#: Seconds to wait for a reply, and for a connection. A session command takes well
#: under a millisecond; past these bounds the request fails instead of hanging.
DEFAULT_SOCKET_TIMEOUT = 2.0
DEFAULT_SOCKET_CONNECT_TIMEOUT = 2.0
#: Seconds a write waits for its replicas. A replica on the same network acknowledges
#: within a few milliseconds; one that takes a second is as good as gone.
DEFAULT_REPLICA_TIMEOUT = 1.0

_VERSION_OPEN = b'{"v":"'
_VERSION_CLOSE = b'",'
_TOKEN_BYTES = 16  # 22 URL-safe characters: two writers never draw the same one
_TOKEN_LENGTH = 22
_HEAD = len(_VERSION_OPEN) + _TOKEN_LENGTH + len(_VERSION_CLOSE)

# KEYS[1]: the session's key. ARGV[1]: the version the request read. To replace:
# ARGV[2] this write's version, ARGV[3] the payload (a JSON object), ARGV[4] the TTL.
# To delete: ARGV[1] alone. Returns 1 if the key now holds this write, else 0.
# Only the head of the value is read, unless a release-0.1 value needs its digest.
_COMPARE_AND_SET = """
local head = redis.call('GETRANGE', KEYS[1], 0, 29)
if head == '' then
    return 0
end
local version
if string.sub(head, 1, 6) == '{"v":"' and string.sub(head, 29, 30) == '",' then
    version = string.sub(head, 7, 28)
else
    version = redis.sha1hex(redis.call('GET', KEYS[1]))
end
if #ARGV == 1 then
    if version ~= ARGV[1] then
        return 0
    end
    redis.call('DEL', KEYS[1])
    return 1
end
if version == ARGV[2] then
    -- This write, sent again after its reply was lost, was applied the first time.
    -- The EXPIRE makes it a write of this connection again, so that WAIT counts it.
    redis.call('EXPIRE', KEYS[1], ARGV[4])
    return 1
end
if version ~= ARGV[1] then
    return 0
end
redis.call('SET', KEYS[1], '{"v":"' .. ARGV[2] .. '",' .. string.sub(ARGV[3], 2), 'EX', ARGV[4])
return 1
"""
_COMPARE_AND_SET_SHA = hashlib.sha1(_COMPARE_AND_SET.encode(), usedforsecurity=False).hexdigest()


def _stored(value: bytes | None) -> StoredSession | None:
    """The stored session in a key's value: the payload without the version, and the version."""
    if value is None:
        return None
    if value.startswith(_VERSION_OPEN) and value[_HEAD - 2 : _HEAD] == _VERSION_CLOSE:
        return StoredSession(b"{" + value[_HEAD:], value[len(_VERSION_OPEN) : _HEAD - 2])
    return StoredSession(value, hashlib.sha1(value, usedforsecurity=False).hexdigest())


def _check_object(payload: str) -> None:
    if payload[:1] != "{":
        raise ValueError("the Redis store keeps JSON objects: a payload starts with '{'")


class RedisStore:
    """Session payloads in Redis, one key each, expired by Redis.

    A read is one ``GET``. A write is one round trip to the master of the key: one
    ``SET ... EX``, ``EXPIRE``, ``DEL`` or ``EVALSHA`` of the compare-and-set script,
    followed by ``WAIT`` when writes must reach replicas.
    """

    def __init__(self, client: Client, prefix: str, min_replicas: int, replica_timeout: float) -> None:
        from redis import exceptions
        from redis.cluster import RedisCluster

        # Looked up once: an import statement on every request costs a microsecond.
        self._errors = exceptions
        # The master may have changed, and the write did not run: an error reply, or
        # a connection that failed before anything was sent.
        self._moved = (
            exceptions.ConnectionError,
            exceptions.ReadOnlyError,
            exceptions.AskError,
            exceptions.ClusterDownError,
            exceptions.TryAgainError,
        )
        self.client = client
        self.prefix = prefix
        self.min_replicas = min_replicas
        self._wait = ("WAIT", min_replicas, max(1, round(replica_timeout * 1000)))
        self._replica_timeout = replica_timeout
        self._cluster: Any = client if isinstance(client, RedisCluster) else None

    def __repr__(self) -> str:  # never shows a password from the URL
        return (
            f"<RedisStore prefix={self.prefix!r} client={type(self.client).__name__}"
            f" min_replicas={self.min_replicas}>"
        )

    def get(self, session_id: str) -> StoredSession | None:
        try:
            value: bytes | None = self.client.get(self.prefix + session_id)  # type: ignore[assignment]
        except self._errors.ResponseError as error:
            value = self._not_a_string(error)
        return _stored(value)

    def _not_a_string(self, error: Exception) -> bytes:
        """Someone else's key of another type: no payload, which the session layer reads
        as "not a session" (and logs), never as a store failure."""
        if not str(error).startswith("WRONGTYPE"):
            raise error
        return b""

    def set(self, session_id: str, payload: str, ttl: int) -> None:
        _check_object(payload)
        key = self.prefix + session_id
        value = '{"v":"' + secrets.token_urlsafe(_TOKEN_BYTES) + '",' + payload[1:]
        self._write(key, ("SET", key, value, "EX", ttl))

    def delete(self, session_id: str) -> None:
        key = self.prefix + session_id
        self._write(key, ("DEL", key))

    def touch(self, session_id: str, ttl: int) -> None:
        key = self.prefix + session_id
        self._write(key, ("EXPIRE", key, ttl))

    def compare_and_set(self, session_id: str, version: Hashable, payload: str | None, ttl: int) -> bool:
        key = self.prefix + session_id
        if payload is None:
            args: tuple[Any, ...] = (version,)
        else:
            _check_object(payload)
            args = (version, secrets.token_urlsafe(_TOKEN_BYTES), payload, ttl)
        (applied,), doubtful = self._write(key, ("EVALSHA", _COMPARE_AND_SET_SHA, 1, key, *args))
        if doubtful and not applied:
            # Sent twice: the first try may have applied, then another write came.
            # Only finding this very write (or making it now) is an answer.
            raise SessionStoreError(
                "a compare-and-set was sent again after its connection broke, and the session had"
                " changed: the first try may or may not have been applied"
            )
        return bool(applied)

    # -- the index of sessions by user: one hash per user -------------------------

    def add_user_session(self, user_id: str, session_id: str, entry: str) -> int:
        key = self._user_key(user_id)
        (_, count), _ = self._write(key, ("HSET", key, session_id, entry), ("HLEN", key))
        return int(count)

    def remove_user_sessions(self, user_id: str, session_ids: Sequence[str]) -> None:
        if session_ids:
            key = self._user_key(user_id)
            self._write(key, ("HDEL", key, *session_ids))

    def user_sessions(self, user_id: str) -> list[UserSession]:
        """The user's index, then each session's value and TTL, pipelined: two round trips.

        The sessions' keys may live on other nodes of a cluster than the user's hash:
        a cluster pipeline sends each command to its node.
        """
        entries = cast("dict[bytes, bytes]", self.client.hgetall(self._user_key(user_id)))
        if not entries:
            return []
        session_ids = [raw.decode("ascii", "replace") for raw in entries]
        pipeline = self.client.pipeline(transaction=False)
        for session_id in session_ids:
            pipeline.get(self.prefix + session_id)
            pipeline.pttl(self.prefix + session_id)
        replies = pipeline.execute(raise_on_error=False)
        now = time.time()
        found = []
        for index, (session_id, entry) in enumerate(zip(session_ids, entries.values())):
            value, ttl = replies[2 * index], replies[2 * index + 1]
            if isinstance(value, Exception):
                value = self._not_a_string(value)
            stored = _stored(value)
            expires_at = now + ttl / 1000 if isinstance(ttl, int) and ttl > 0 else None
            found.append(UserSession(session_id, entry, stored, expires_at))
        return found

    def _user_key(self, user_id: str) -> str:
        # ":" is in no session ID: a user's key never meets a session's.
        return f"{self.prefix}user:{user_id}"

    # -- for the command line ---------------------------------------------------

    def __len__(self) -> int:
        """The live sessions (and markers of replaced IDs), counted with ``SCAN``.

        For the command line only: a scan is never done on a request's path.
        """
        length = len(self.prefix) + SESSION_ID_LENGTH
        keys = self.client.scan_iter(match=self.prefix + "*", count=1000)
        return sum(1 for key in keys if len(key) == length and b":" not in key[len(self.prefix) :])

    def expires_at(self, session_id: str) -> float | None:
        ttl = self.client.pttl(self.prefix + session_id)
        return time.time() + ttl / 1000 if isinstance(ttl, int) and ttl > 0 else None

    # -- one write: one round trip to the key's master --------------------------

    def _write(self, key: str, *commands: tuple[Any, ...]) -> tuple[list[Any], bool]:
        """Send ``commands`` to the key's master; return their replies, and whether an
        earlier try may have applied them too.

        When the master may have changed (a broken connection, a read-only replica,
        a cluster redirection), the store asks again where the master is and sends
        the command once more: each write here is safe to repeat (see the script).
        """
        pool = self._pool(key)
        try:
            return self._send(pool, commands), False
        except _ReplyLost:
            doubtful, redirection = True, None
        except self._moved as error:
            doubtful, redirection = False, error
        self._forget_master(pool, redirection)
        pool = self._pool(key)
        try:
            return self._send(pool, commands), doubtful
        except (_ReplyLost, *self._moved) as error:
            self._forget_master(pool)
            if isinstance(error, _ReplyLost):
                raise SessionStoreError(
                    "the connection to Redis broke after a write was sent, twice: it may or may not"
                    " have been applied"
                ) from error.__cause__
            raise

    def _pool(self, key: str) -> ConnectionPool:
        if self._cluster is None:
            return self.client.connection_pool  # type: ignore[union-attr]
        node = self._cluster.get_node_from_key(key)
        return cast("ConnectionPool", self._cluster.get_redis_connection(node).connection_pool)

    def _forget_master(self, pool: ConnectionPool, error: Exception | None = None) -> None:
        """Make the next write ask again which server is the master.

        A Sentinel-managed pool asks Sentinel on every new connection, so closing
        the idle ones is enough. A cluster client takes the new master from a MOVED
        reply, which names it, and otherwise reloads its slot map.
        """
        pool.disconnect(inuse_connections=False)
        if self._cluster is None:
            return
        if isinstance(error, self._errors.MovedError):
            self._cluster.nodes_manager.move_slot(error)
        else:
            self._cluster.nodes_manager.initialize()

    def _send(self, pool: ConnectionPool, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
        sent = [*commands, self._wait] if self.min_replicas else list(commands)
        replies = self._round_trip(pool, sent)
        if isinstance(replies[0], self._errors.NoScriptError):  # it did not run: load it, send again
            self._round_trip(pool, [("SCRIPT", "LOAD", _COMPARE_AND_SET)])
            replies = self._round_trip(pool, sent)
        for reply in replies:
            if isinstance(reply, self._errors.ResponseError):
                raise reply
        if self.min_replicas and replies[-1] < self.min_replicas:
            self._forget_master(pool)
            raise SessionStoreError(
                f"the write reached {replies[-1]} of {self.min_replicas} replicas within"
                f" {self._replica_timeout} s: it is not durable, a failover could undo it"
            )
        return replies[: len(commands)]

    def _round_trip(self, pool: ConnectionPool, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` at once on one connection of ``pool``; return every reply.

        An error reply is returned, not raised, so that every reply is read. Sent on the
        connection itself, without the client's retries: redis-py would send a write
        again after a lost reply, and the store decides itself when that is safe.
        """
        connection: Any = pool.get_connection()  # a failure to connect sends nothing
        try:
            connection.send_packed_command(connection.pack_commands(commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except self._errors.ResponseError as error:
                    replies.append(error)
            return replies
        except self._errors.ConnectionError as error:
            connection.disconnect()
            # A Sentinel-managed connection turns a READONLY reply into this error: the
            # master was demoted, and the write did not run.
            if isinstance(error.__context__, self._errors.ReadOnlyError):
                raise
            raise _ReplyLost from error
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)


class _ReplyLost(Exception):
    """The connection broke once a command was sent: it may or may not have run."""


def _automatic_min_replicas(client: Client) -> int:
    """Every replica the deployment has now: whichever a failover promotes holds each write.

    Waiting for fewer is not enough once there are two: an old master that lost the
    replica Sentinel promoted keeps taking writes that its other replicas acknowledge,
    until Sentinel points them at the new master, and they drop those writes. A
    Sentinel master waits for at least one; a cluster for the fewest any master has;
    a plain server for none.
    """
    from redis.cluster import RedisCluster
    from redis.sentinel import SentinelConnectionPool

    if isinstance(client, RedisCluster):
        shards: dict[str, int] = {}
        for nodes in cast(Any, client).nodes_manager.slots_cache.values():
            shards[nodes[0].name] = len(nodes) - 1
        return min(shards.values(), default=0)
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool) and pool.is_master:
        return max(1, len(pool.sentinel_manager.discover_slaves(pool.service_name)))
    return 0


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
    min_replicas: int | None = None,
    replica_timeout: float = DEFAULT_REPLICA_TIMEOUT,
) -> RedisStore:
    """Return a store keeping each session at ``prefix + id`` in Redis.

    Connect with ``url`` (``redis://``, ``rediss://`` or ``unix://``), or with
    ``host``, ``port``, ``password`` and ``db``; or pass a ready ``client``: a
    ``redis.Redis``, a ``redis.cluster.RedisCluster``, or a Sentinel's
    ``master_for(...)``, whose own timeouts then apply.

    The store's own client waits at most ``socket_timeout`` seconds for a reply and
    ``socket_connect_timeout`` for a connection. It opens connections on first use;
    its pool notices a fork (gunicorn workers, with or without ``--preload``) and
    opens new ones in the child.

    A write succeeds only once ``min_replicas`` replicas have it, waiting at most
    ``replica_timeout`` seconds, else it raises :class:`SessionStoreError`: a write
    the app was told is done survives a failover. ``None`` (the default) waits for
    every replica there is when the store is created: those Sentinel knows for its
    master (at least one), the fewest any cluster master has, none on a plain
    server. Fewer (``0`` never waits) trades that guarantee for writes that go on
    while replicas are missing.
    """
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("prefix must be a non-empty string: it keeps session keys apart from others")
    for option, seconds in (
        ("socket_timeout", socket_timeout),
        ("socket_connect_timeout", socket_connect_timeout),
        ("replica_timeout", replica_timeout),
    ):
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise ValueError(f"{option} must be a positive number of seconds, not {seconds!r}")
    if min_replicas is not None and (
        isinstance(min_replicas, bool) or not isinstance(min_replicas, int) or min_replicas < 0
    ):
        raise ValueError(f"min_replicas must be None or a whole number >= 0, not {min_replicas!r}")
    if client is not None:
        if url is not None or (host, port, password, db) != ("localhost", 6379, None, 0):
            raise ValueError("client excludes url, host, port, password and db: configure the client")
        if client.get_encoder().decode_responses:
            raise ValueError("client must not decode responses (decode_responses=False): payloads are bytes")
        socket_timeout = client.get_connection_kwargs().get("socket_timeout") or 0
    else:
        client = _own_client(url, host, port, password, db, socket_timeout, socket_connect_timeout)
    if min_replicas is None:
        min_replicas = _automatic_min_replicas(client)
    if min_replicas and socket_timeout and replica_timeout >= socket_timeout:
        raise ValueError(
            f"replica_timeout ({replica_timeout} s) must be shorter than the client's socket_timeout"
            f" ({socket_timeout} s), or the connection gives up before the replicas answer"
        )
    return RedisStore(client, prefix, min_replicas, replica_timeout)


def _own_client(
    url: str | None,
    host: str,
    port: int,
    password: str | None,
    db: int,
    socket_timeout: float,
    socket_connect_timeout: float,
) -> Redis:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    options: dict[str, Any] = {
        "password": password,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
        # A pooled connection the server closed (a restart) is noticed and replaced
        # when it is taken from the pool; a read that fails is the request's failure.
        "retry": Retry(NoBackoff(), 0),
    }
    if url is not None:
        if (host, port, db) != ("localhost", 6379, 0):
            raise ValueError("url excludes host, port and db: put them in the URL")
        return redis.Redis.from_url(url, **options)
    return redis.Redis(host=host, port=port, db=db, **options)
