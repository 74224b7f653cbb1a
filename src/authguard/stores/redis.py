"""Redis stores (``redis.asyncio``): the store protocols shared by many replicas.

Install with ``pip install authguard[redis]``. Every key carries a TTL and starts with a
prefix; every operation is one round trip (a ``MULTI`` pipeline, a single command or a Lua
script) and atomic. Socket and connect timeouts are bounded, and every Redis error or
timeout is raised as :class:`~authguard.stores.StoreUnavailable`, which the middleware
answers with 503 ``auth_unavailable`` and ``Retry-After``. Connections are re-established
on the next call once Redis is back: no restart is needed.

The Lua scripts of :class:`RedisRevocationStore` and :class:`RedisSessionStore` touch keys
derived from their arguments, so these stores need one Redis (primary with replicas, or
Sentinel), not Redis Cluster.

Example::

    from authguard.stores.redis import from_url

    stores = from_url("redis://redis:6379/0", prefix="myapp:auth:", timeout=0.5)
    guard = AuthGuard(authenticators=[...],
                      brute_force=BruteForceGuard(store=stores.attempts))
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from ..errors import ConfigurationError
from .base import NO_FAILURES, FailureWindow, SessionRecord, StoreUnavailable

__all__ = [
    "RedisAttemptStore",
    "RedisNonceStore",
    "RedisRevocationStore",
    "RedisSessionStore",
    "RedisStores",
    "from_url",
]

T = TypeVar("T")

DEFAULT_PREFIX = "authguard:"
_MAX_KEY_PART = 128  # longer user-supplied key parts are hashed


class _RedisStore:
    """What every Redis store shares: the client, the prefix, error mapping."""

    def __init__(self, client: Redis, *, prefix: str = DEFAULT_PREFIX,
                 operation_timeout: float = 2.0, retry_after: int = 5,
                 clock: Callable[[], float] = time.time) -> None:
        if operation_timeout <= 0:
            raise ConfigurationError("operation_timeout: must be positive")
        self.client = client
        self.prefix = prefix
        self.operation_timeout = operation_timeout
        self.retry_after = retry_after
        self._clock = clock

    def _key(self, kind: str, part: str) -> bytes:
        raw = _bytes(part)
        if len(raw) > _MAX_KEY_PART:  # "#" instead of ":": no short part can look the same
            return _bytes(f"{self.prefix}{kind}#") + hashlib.sha256(raw).hexdigest().encode()
        return _bytes(f"{self.prefix}{kind}:") + raw

    async def _run(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run one operation under the overall deadline; map every failure to 503."""
        try:
            async with asyncio.timeout(self.operation_timeout):
                return await call()
        except (RedisError, OSError, TimeoutError) as exc:
            # The message is logged: name the operation and the error class, never the URL
            # (it may hold a password) nor the key (it may hold an account name).
            raise StoreUnavailable(f"redis {what}: {type(exc).__name__}",
                                   retry_after=self.retry_after) from exc


def _bytes(text: str) -> bytes:
    """UTF-8, keeping even lone surrogates (a JSON string in a token may hold one)."""
    return text.encode("utf-8", "surrogatepass")


def _ms(seconds: float) -> int:
    """A TTL in whole milliseconds, at least 1."""
    return max(1, math.ceil(seconds * 1000))


class RedisAttemptStore(_RedisStore):
    """Sliding-window failure counters: one sorted set per key, scored by time.

    Args:
        client: A ``redis.asyncio.Redis`` client (see :func:`from_url`).
        prefix: Prepended to every key.
        max_per_key: Newest failures kept per key (older ones are dropped).
        operation_timeout: Overall bound on one operation, retries included, in seconds.
        retry_after: ``Retry-After`` of the 503 when Redis cannot be reached.
    """

    def __init__(self, client: Redis, *, prefix: str = DEFAULT_PREFIX,
                 max_per_key: int = 10_000, operation_timeout: float = 2.0,
                 retry_after: int = 5) -> None:
        super().__init__(client, prefix=prefix, operation_timeout=operation_timeout,
                         retry_after=retry_after)
        if max_per_key < 1:
            raise ConfigurationError("max_per_key: must be at least 1")
        self.max_per_key = max_per_key

    async def add_failures(self, keys: Mapping[str, int], now: float, window: float) -> None:
        """Record one failure at ``now`` for each key (one ``MULTI`` round trip).

        The limits are not needed here: every key expires one window after its latest
        failure, and Redis is sized (``maxmemory``) by its operator.
        """
        rkeys = [self._key("fail", key) for key in keys]
        member = f"{now!r}:{secrets.token_hex(6)}"

        async def call() -> None:
            async with self.client.pipeline(transaction=True) as pipe:
                for rkey in rkeys:
                    pipe.zremrangebyscore(rkey, "-inf", now - window)
                    pipe.zadd(rkey, {member: now})
                    pipe.zremrangebyrank(rkey, 0, -(self.max_per_key + 1))
                    pipe.pexpire(rkey, _ms(window))
                await pipe.execute()

        await self._run("add_failures", call)

    async def failures(self, keys: Sequence[str], now: float, window: float
                       ) -> list[FailureWindow]:
        """Each key's failures within the window, the oldest and the newest (one round
        trip)."""
        rkeys = [self._key("fail", key) for key in keys]

        async def call() -> list[Any]:
            async with self.client.pipeline(transaction=True) as pipe:
                for rkey in rkeys:
                    pipe.zremrangebyscore(rkey, "-inf", now - window)
                    pipe.zcard(rkey)
                    pipe.zrange(rkey, 0, 0, withscores=True)
                    pipe.zrange(rkey, -1, -1, withscores=True)
                result: list[Any] = await pipe.execute()
                return result

        result = await self._run("failures", call)
        out = []
        for i in range(len(rkeys)):
            _, count, oldest, newest = result[4 * i:4 * i + 4]
            if not count or not oldest or not newest:
                out.append(NO_FAILURES)
            else:
                out.append(FailureWindow(int(count), float(oldest[0][1]),
                                         float(newest[0][1])))
        return out

    async def clear(self, key: str) -> None:
        """Forget ``key``'s failures."""
        rkey = self._key("fail", key)
        await self._run("clear", lambda: self.client.delete(rkey))


# Keep the latest "not before": set it only if it is later than the stored one; the TTL is
# renewed either way. KEYS[1] = key; ARGV[1] = not_before; ARGV[2] = ttl in ms.
_REVOKE_SUBJECT = """
local current = redis.call('GET', KEYS[1])
local value = ARGV[1]
if current and tonumber(current) > tonumber(value) then value = current end
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return 1
"""


class RedisRevocationStore(_RedisStore):
    """Revoked token ids and per-subject "not before" times, shared by every replica.

    Args:
        client: A ``redis.asyncio.Redis`` client (see :func:`from_url`).
        prefix: Prepended to every key.
        operation_timeout: Overall bound on one operation, retries included, in seconds.
        retry_after: ``Retry-After`` of the 503 when Redis cannot be reached.
        clock: Turns ``expires_at`` into a TTL.
    """

    def __init__(self, client: Redis, *, prefix: str = DEFAULT_PREFIX,
                 operation_timeout: float = 2.0, retry_after: int = 5,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(client, prefix=prefix, operation_timeout=operation_timeout,
                         retry_after=retry_after, clock=clock)
        self._revoke_subject = client.register_script(_REVOKE_SUBJECT)

    async def revoke_token(self, jti: str, expires_at: float) -> None:
        """Revoke ``jti`` until ``expires_at`` (nothing to keep if that has passed)."""
        ttl = expires_at - self._clock()
        if ttl <= 0:
            return
        key = self._key("jti", jti)
        await self._run("revoke_token", lambda: self.client.set(key, b"1", px=_ms(ttl)))

    async def is_revoked(self, jti: str) -> bool:
        """Whether ``jti`` is revoked."""
        key = self._key("jti", jti)
        return bool(await self._run("is_revoked", lambda: self.client.exists(key)))

    async def revoke_subject(self, subject: str, not_before: float, ttl: float) -> None:
        """Void ``subject``'s credentials issued before ``not_before`` (kept ``ttl`` seconds;
        a later "not before" already stored wins)."""
        key = self._key("nbf", subject)
        await self._run("revoke_subject", lambda: self._revoke_subject(
            keys=[key], args=[repr(float(not_before)), _ms(ttl)]))

    async def subject_not_before(self, subject: str) -> float | None:
        """The subject's "not before" time, if any."""
        key = self._key("nbf", subject)
        value = await self._run("subject_not_before", lambda: self.client.get(key))
        return None if value is None else float(value)


# Store a session and index it under its subject; the index lives as long as the longest
# session in it, and forgets the ids of ended sessions once it holds more than ARGV[5].
# KEYS[1] = session key, KEYS[2] = subject index; ARGV: record, ttl ms, session id, the
# session keys' prefix, the pruning threshold.
_CREATE_SESSION = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
if redis.call('SCARD', KEYS[2]) > tonumber(ARGV[5]) then
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if redis.call('EXISTS', ARGV[4] .. id) == 0 then redis.call('SREM', KEYS[2], id) end
  end
end
return 1
"""
_PRUNE_ABOVE = 64

# End every session in a subject's index, and the index. KEYS[1] = subject index;
# ARGV[1] = the session keys' prefix.
_DELETE_SUBJECT = """
local ids = redis.call('SMEMBERS', KEYS[1])
for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) end
redis.call('DEL', KEYS[1])
return #ids
"""


class RedisSessionStore(_RedisStore):
    """Server-side session records, shared by every replica; a logout anywhere ends the
    session everywhere. Each subject has an index (a set of its session ids) so that
    :meth:`delete_subject` ends all of them atomically.

    Args:
        client: A ``redis.asyncio.Redis`` client (see :func:`from_url`).
        prefix: Prepended to every key.
        operation_timeout: Overall bound on one operation, retries included, in seconds.
        retry_after: ``Retry-After`` of the 503 when Redis cannot be reached.
        clock: Turns ``expires_at`` into a TTL.
    """

    def __init__(self, client: Redis, *, prefix: str = DEFAULT_PREFIX,
                 operation_timeout: float = 2.0, retry_after: int = 5,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(client, prefix=prefix, operation_timeout=operation_timeout,
                         retry_after=retry_after, clock=clock)
        self._create = client.register_script(_CREATE_SESSION)
        self._delete_subject = client.register_script(_DELETE_SUBJECT)

    def _session_key(self, session_id: str) -> bytes:
        # Session ids are server-made and short; they are never hashed, so that the Lua
        # scripts can rebuild the key from the id.
        return _bytes(f"{self.prefix}sess:{session_id}")

    async def create(self, record: SessionRecord) -> None:
        """Store ``record`` until it expires, and index it under its subject."""
        ttl = record.expires_at - self._clock()
        if ttl <= 0:
            return
        value = json.dumps({
            "subject": record.subject, "created_at": record.created_at,
            "expires_at": record.expires_at, "data": record.data,
        }, separators=(",", ":"))
        keys = [self._session_key(record.session_id), self._key("subj", record.subject)]
        await self._run("create", lambda: self._create(
            keys=keys, args=[value, _ms(ttl), _bytes(record.session_id),
                             _bytes(f"{self.prefix}sess:"), _PRUNE_ABOVE]))

    async def get(self, session_id: str) -> SessionRecord | None:
        """The live session, or ``None`` when it ended or never existed."""
        key = self._session_key(session_id)
        raw = await self._run("get", lambda: self.client.get(key))
        if raw is None:
            return None
        try:
            d = json.loads(raw)
            record = SessionRecord(
                session_id=session_id, subject=str(d["subject"]),
                created_at=float(d["created_at"]), expires_at=float(d["expires_at"]),
                data=(None if d.get("data") is None
                      else {str(k): str(v) for k, v in d["data"].items()}),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # not a record of ours: no session
        return record if record.expires_at > self._clock() else None

    async def delete(self, session_id: str) -> None:
        """End one session (its id stays in the subject's index until that expires)."""
        key = self._session_key(session_id)
        await self._run("delete", lambda: self.client.delete(key))

    async def delete_subject(self, subject: str) -> None:
        """End every session of ``subject`` (one atomic script)."""
        key = self._key("subj", subject)
        await self._run("delete_subject", lambda: self._delete_subject(
            keys=[key], args=[_bytes(f"{self.prefix}sess:")]))


class RedisNonceStore(_RedisStore):
    """Single-use values (payment receipts, nonces) shared by every replica:
    ``SET key 1 NX PX ttl`` makes exactly one caller the first, across all of them.

    Args:
        client: A ``redis.asyncio.Redis`` client (see :func:`from_url`).
        prefix: Prepended to every key.
        operation_timeout: Overall bound on one operation, retries included, in seconds.
        retry_after: ``Retry-After`` of the 503 when Redis cannot be reached.
    """

    async def consume(self, nonce: str, ttl: float) -> bool:
        """Mark ``nonce`` used; ``True`` only for the first caller within ``ttl`` seconds."""
        key = self._key("nonce", nonce)
        done = await self._run("consume", lambda: self.client.set(
            key, b"1", nx=True, px=_ms(ttl)))
        return bool(done)

    async def release(self, nonce: str) -> None:
        """Forget ``nonce`` (a payment reserved for a request that was not served)."""
        key = self._key("nonce", nonce)
        await self._run("release", lambda: self.client.delete(key))


@dataclass(frozen=True, slots=True)
class RedisStores:
    """The four Redis stores over one connection pool (made by :func:`from_url`)."""

    client: Redis
    attempts: RedisAttemptStore
    revocations: RedisRevocationStore
    sessions: RedisSessionStore
    nonces: RedisNonceStore

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def from_url(url: str, *, prefix: str = DEFAULT_PREFIX, timeout: float = 0.5,
             retry_after: int = 5, max_connections: int = 100) -> RedisStores:
    """Every Redis store, sharing one client made from ``url``.

    Args:
        url: ``redis://[[user]:password@]host:port/db``, ``rediss://`` for TLS, or
            ``unix://path``.
        prefix: Prepended to every key (one prefix per application sharing a Redis).
        timeout: Socket connect and read timeout, in seconds. One failed command is retried
            once on a fresh connection (a restarted Redis is reconnected to at once); an
            operation never takes longer than four times ``timeout`` before 503.
        retry_after: ``Retry-After`` of the 503 when Redis cannot be reached.
        max_connections: Size of the connection pool; past it, calls wait for a free
            connection (within ``timeout``).
    """
    if timeout <= 0:
        raise ConfigurationError("timeout: must be positive")
    # A blocking pool: past max_connections, a call waits (within its deadline) for a
    # connection instead of failing at once.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1),
        health_check_interval=30,
    )
    client: Redis = Redis.from_pool(pool)
    common: dict[str, Any] = {"prefix": prefix, "operation_timeout": timeout * 4,
                              "retry_after": retry_after}
    return RedisStores(
        client=client,
        attempts=RedisAttemptStore(client, **common),
        revocations=RedisRevocationStore(client, **common),
        sessions=RedisSessionStore(client, **common),
        nonces=RedisNonceStore(client, **common),
    )
