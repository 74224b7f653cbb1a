"""The store protocols, one suite run over the in-memory and the Redis implementations
(a real redis-server), and what only Redis has: TTLs and prefix on every key, errors and
timeouts as StoreUnavailable, recovery without a restart."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.requests import HTTPConnection

from authguard import AuthUnavailable, BruteForceGuard, ConfigurationError
from authguard.stores import (
    AttemptStore,
    MemoryAttemptStore,
    MemoryNonceStore,
    MemoryRevocationStore,
    MemorySessionStore,
    NonceStore,
    RevocationStore,
    SessionRecord,
    SessionStore,
    StoreUnavailable,
)
from authguard.stores.redis import RedisStores, from_url
from redis_server import RedisServer, redis_server, shared_redis

__all__ = ["redis_server", "shared_redis"]  # fixtures

pytestmark = pytest.mark.redis


@dataclass
class Stores:
    attempts: AttemptStore
    revocations: RevocationStore
    sessions: SessionStore
    nonces: NonceStore


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    if request.param == "memory":
        yield Stores(MemoryAttemptStore(), MemoryRevocationStore(), MemorySessionStore(),
                     MemoryNonceStore())
        return
    server: RedisServer = request.getfixturevalue("shared_redis")
    rs = from_url(server.url, prefix=f"t-{uuid.uuid4().hex}:")
    try:
        yield Stores(rs.attempts, rs.revocations, rs.sessions, rs.nonces)
    finally:
        await rs.aclose()


# -- the protocols, over both ----------------------------------------------------------


async def test_they_implement_the_protocols(stores: Stores) -> None:
    assert isinstance(stores.attempts, AttemptStore)
    assert isinstance(stores.revocations, RevocationStore)
    assert isinstance(stores.sessions, SessionStore)
    assert isinstance(stores.nonces, NonceStore)


async def test_attempts_slide_out_of_the_window(stores: Stores) -> None:
    a = stores.attempts

    async def one(key: str, now: float) -> tuple[int, float | None, float | None]:
        (w,) = await a.failures([key], now, 60)
        return w.count, w.oldest, w.newest

    assert await one("a:alice", 1_000.0) == (0, None, None)
    for t in (1_000.0, 1_010.0, 1_020.0):
        await a.add_failures({"a:alice": 10}, t, 60)
    await a.add_failures({"a:bob": 10}, 1_020.0, 60)
    assert await one("a:alice", 1_030.0) == (3, 1_000.0, 1_020.0)
    assert await one("a:alice", 1_060.0) == (2, 1_010.0, 1_020.0)  # 1000 is out
    assert await one("a:alice", 1_075.0) == (1, 1_020.0, 1_020.0)
    assert await one("a:bob", 1_075.0) == (1, 1_020.0, 1_020.0)
    assert await one("a:alice", 1_080.0) == (0, None, None)
    # simultaneous failures are all counted
    await asyncio.gather(*(a.add_failures({"c:10.0.0.1": 100}, 2_000.0, 60)
                           for _ in range(25)))
    assert await one("c:10.0.0.1", 2_000.0) == (25, 2_000.0, 2_000.0)


async def test_several_keys_in_one_call_and_clear(stores: Stores) -> None:
    a = stores.attempts
    await a.add_failures({"c:basic:1": 100, "p:1|bob": 5, "a:bob": 10}, 1_000.0, 60)
    await a.add_failures({"c:basic:2": 100, "p:2|bob": 5, "a:bob": 10}, 1_001.0, 60)
    got = await a.failures(["a:bob", "p:1|bob", "p:2|bob", "nothing"], 1_002.0, 60)
    assert [(w.count, w.oldest, w.newest) for w in got] == [
        (2, 1_000.0, 1_001.0), (1, 1_000.0, 1_000.0), (1, 1_001.0, 1_001.0), (0, None, None)]
    await a.clear("p:1|bob")
    await a.clear("never-there")
    got = await a.failures(["a:bob", "p:1|bob"], 1_002.0, 60)
    assert [w.count for w in got] == [2, 0]


async def test_revoked_tokens_and_subjects(stores: Stores) -> None:
    r = stores.revocations
    now = time.time()
    await r.revoke_token("jti-1", expires_at=now + 60)
    assert await r.is_revoked("jti-1")
    assert not await r.is_revoked("jti-2")
    await r.revoke_token("jti-old", expires_at=now - 1)  # expired anyway
    assert not await r.is_revoked("jti-old")

    assert await r.subject_not_before("alice") is None
    await r.revoke_subject("alice", not_before=now, ttl=60)
    await r.revoke_subject("alice", not_before=now - 100, ttl=60)  # older: ignored
    assert await r.subject_not_before("alice") == now
    await r.revoke_subject("alice", not_before=now + 5, ttl=60)  # later: kept
    assert await r.subject_not_before("alice") == now + 5
    assert await r.subject_not_before("bob") is None


async def test_revocations_expire(stores: Stores) -> None:
    r = stores.revocations
    await r.revoke_token("short", expires_at=time.time() + 0.05)
    await r.revoke_subject("carol", not_before=time.time(), ttl=0.05)
    await asyncio.sleep(0.2)
    assert not await r.is_revoked("short")
    assert await r.subject_not_before("carol") is None


async def test_sessions_round_trip_and_end(stores: Stores) -> None:
    s = stores.sessions
    now = time.time()
    rec = SessionRecord("s1", "alice", created_at=now, expires_at=now + 600,
                        data={"roles": "user admin", "acr": "mfa"})
    await s.create(rec)
    await s.create(SessionRecord("s2", "alice", created_at=now, expires_at=now + 60))
    await s.create(SessionRecord("s3", "bob", created_at=now, expires_at=now + 60))
    assert await s.get("s1") == rec
    assert await s.get("nope") is None
    await s.delete("s1")
    assert await s.get("s1") is None
    await s.delete("s1")  # twice: no error
    await s.create(SessionRecord("s4", "alice", created_at=now, expires_at=now + 60))
    await s.delete_subject("alice")
    assert await s.get("s2") is None and await s.get("s4") is None
    got = await s.get("s3")
    assert got is not None and got.subject == "bob" and got.data is None
    await s.delete_subject("nobody")
    # a session made after the subject's sessions ended lives on
    await s.create(SessionRecord("s5", "alice", created_at=now, expires_at=now + 60))
    assert await s.get("s5") is not None


async def test_sessions_expire(stores: Stores) -> None:
    s = stores.sessions
    now = time.time()
    await s.create(SessionRecord("old", "alice", created_at=now - 10, expires_at=now - 1))
    assert await s.get("old") is None
    await s.create(SessionRecord("short", "alice", created_at=now, expires_at=now + 0.05))
    await asyncio.sleep(0.2)
    assert await s.get("short") is None


async def test_a_nonce_is_consumed_once_under_concurrency(stores: Stores) -> None:
    n = stores.nonces
    results = await asyncio.gather(*(n.consume("receipt-1", ttl=60) for _ in range(200)))
    assert results.count(True) == 1
    assert not await n.consume("receipt-1", ttl=60)
    assert await n.consume("receipt-2", ttl=60)


async def test_a_nonce_can_be_used_again_after_its_ttl(stores: Stores) -> None:
    n = stores.nonces
    assert await n.consume("n", ttl=0.05)
    await asyncio.sleep(0.2)
    assert await n.consume("n", ttl=60)


ODD = ["\ud800 lone surrogate", "ünïcødé ✓", "a*b?[c]\r\n:colon", "x" * 5000, ""]


@pytest.mark.parametrize("odd", ODD, ids=["surrogate", "unicode", "glob-crlf", "long", "empty"])
async def test_any_string_is_a_key(stores: Stores, odd: str) -> None:
    """Account names, token ids and nonces come from clients: any string works, apart."""
    now = time.time()
    await stores.attempts.add_failures({odd: 5}, now, 60)
    assert [w.count for w in await stores.attempts.failures([odd, odd + "x"], now, 60)
            ] == [1, 0]
    await stores.revocations.revoke_token(odd, now + 60)
    assert await stores.revocations.is_revoked(odd)
    assert not await stores.revocations.is_revoked(odd + "x")
    await stores.revocations.revoke_subject(odd, now, 60)
    assert await stores.revocations.subject_not_before(odd) == now
    await stores.sessions.create(SessionRecord("sid-odd", odd, now, now + 60, data={odd: odd}))
    got = await stores.sessions.get("sid-odd")
    assert got is not None and got.subject == odd and got.data == {odd: odd}
    await stores.sessions.delete_subject(odd)
    assert await stores.sessions.get("sid-odd") is None
    assert await stores.nonces.consume(odd, 60)
    assert not await stores.nonces.consume(odd, 60)
    assert await stores.nonces.consume(odd + "x", 60)


# -- Redis only ----------------------------------------------------------------------------


@pytest.fixture
async def rstores(shared_redis: RedisServer) -> AsyncIterator[RedisStores]:
    rs = from_url(shared_redis.url, prefix=f"t-{uuid.uuid4().hex}:")
    try:
        yield rs
    finally:
        await rs.aclose()


async def _exercise(rs: RedisStores, now: float) -> None:
    # a long key part is hashed
    await rs.attempts.add_failures({"a:" + "x" * 500: 10, "c:127.0.0.1": 10}, now, 300)
    await rs.revocations.revoke_token("jti", expires_at=now + 3600)
    await rs.revocations.revoke_subject("alice", not_before=now, ttl=3600)
    await rs.sessions.create(SessionRecord("sid", "alice", created_at=now,
                                           expires_at=now + 3600))
    await rs.nonces.consume("nonce", ttl=3600)


async def test_every_key_has_the_prefix_and_a_ttl(rstores: RedisStores) -> None:
    await _exercise(rstores, time.time())
    keys = [k async for k in rstores.client.scan_iter(match=rstores.attempts.prefix + "*")]
    assert len(keys) == 7  # 2 counters, jti, nbf, session, subject index, nonce
    for key in keys:
        assert len(key) < 120
        ttl = await rstores.client.pttl(key)
        assert 0 < ttl <= 3_600_000, key
    # nothing outside the prefix
    assert len([k async for k in rstores.client.scan_iter(match="*")]) >= len(keys)
    other = [k async for k in rstores.client.scan_iter(match="*")
             if not k.startswith(rstores.attempts.prefix.encode())]
    assert all(k.startswith(b"t-") for k in other)  # only other tests' prefixes


async def test_the_subject_index_lives_as_long_as_its_longest_session(
        rstores: RedisStores) -> None:
    now = time.time()
    s = rstores.sessions
    await s.create(SessionRecord("long", "dave", created_at=now, expires_at=now + 3600))
    await s.create(SessionRecord("brief", "dave", created_at=now, expires_at=now + 60))
    index = s._key("subj", "dave")
    assert await rstores.client.pttl(index) > 3_000_000
    assert await rstores.client.smembers(index) == {b"long", b"brief"}


async def test_the_subject_index_forgets_ended_sessions(rstores: RedisStores) -> None:
    now = time.time()
    s = rstores.sessions
    await s.create(SessionRecord("live", "erin", now, now + 3600))
    for i in range(300):
        await s.create(SessionRecord(f"old-{i}", "erin", now, now + 3600))
        await s.delete(f"old-{i}")
    index = await rstores.client.smembers(s._key("subj", "erin"))
    assert b"live" in index and len(index) <= 65  # bounded, the live one kept
    await s.delete_subject("erin")
    assert await s.get("live") is None


async def test_a_nonce_is_consumed_once_across_two_clients(shared_redis: RedisServer) -> None:
    """Two connection pools, as two replicas have: still exactly one winner."""
    prefix = f"t-{uuid.uuid4().hex}:"
    a = from_url(shared_redis.url, prefix=prefix)
    b = from_url(shared_redis.url, prefix=prefix)
    try:
        results = await asyncio.gather(*(
            (a if i % 2 else b).nonces.consume("receipt", ttl=60) for i in range(100)))
        assert results.count(True) == 1
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_foreign_value_under_a_session_key_is_no_session(rstores: RedisStores) -> None:
    await rstores.client.set(rstores.sessions._session_key("junk"), b"\xff not json", px=60_000)
    assert await rstores.sessions.get("junk") is None


def test_from_url_refuses_a_non_positive_timeout() -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        from_url("redis://127.0.0.1:1/0", timeout=0)


def _every_operation(rs: RedisStores) -> list[Any]:
    now = time.time()
    return [
        lambda: rs.attempts.add_failures({"k": 5}, now, 60),
        lambda: rs.attempts.failures(["k"], now, 60),
        lambda: rs.revocations.revoke_token("j", now + 60),
        lambda: rs.revocations.is_revoked("j"),
        lambda: rs.revocations.revoke_subject("s", now, 60),
        lambda: rs.revocations.subject_not_before("s"),
        lambda: rs.sessions.create(SessionRecord("i", "s", now, now + 60)),
        lambda: rs.sessions.get("i"),
        lambda: rs.sessions.delete("i"),
        lambda: rs.sessions.delete_subject("s"),
        lambda: rs.nonces.consume("n", 60),
    ]


async def test_redis_down_is_store_unavailable_and_comes_back(
        redis_server: RedisServer) -> None:
    rs = from_url(redis_server.url, prefix="p:", timeout=0.5, retry_after=7)
    try:
        ops = _every_operation(rs)
        for op in ops:  # connections made and scripts loaded
            await op()
        redis_server.stop()
        for op in ops:
            with pytest.raises(StoreUnavailable) as info:
                await op()
            assert isinstance(info.value, AuthUnavailable)
            assert info.value.retry_after == 7
            assert redis_server.url not in str(info.value)
        # started again (empty, scripts unknown): the same client works, no restart
        redis_server.start()
        for op in ops:
            await op()
        assert not await rs.nonces.consume("n", 60)
    finally:
        await rs.aclose()


async def test_a_frozen_redis_is_a_bounded_store_unavailable(
        redis_server: RedisServer) -> None:
    """SIGSTOP: the socket stays open and nothing answers; the timeout ends the wait."""
    rs = from_url(redis_server.url, prefix="p:", timeout=0.2)
    try:
        ops = _every_operation(rs)
        for op in ops:
            await op()
        redis_server.pause()
        for op in (ops[1], ops[3], ops[10]):
            with pytest.raises(StoreUnavailable):
                await op()
        redis_server.resume()
        for op in ops:
            await op()
    finally:
        await rs.aclose()


def _conn(address: str) -> HTTPConnection:
    return HTTPConnection({"type": "http", "method": "GET", "path": "/", "headers": [],
                           "client": (address, 40000)})


async def test_the_brute_force_guard_fails_closed_or_open(redis_server: RedisServer) -> None:
    rs = from_url(redis_server.url, prefix="p:", timeout=0.5)
    closed = BruteForceGuard(per_pair=2, store=rs.attempts)
    open_ = BruteForceGuard(per_pair=2, store=rs.attempts, fail_open=True)
    guesser, other = _conn("10.0.0.1"), _conn("10.0.0.3")

    async def wait(bf: BruteForceGuard, conn: HTTPConnection, account: str,
                   now: float) -> int | None:
        return (await bf.allowed(conn, scheme="Basic", account=account, now=now)).retry_after

    try:
        now = time.time()
        attempt = await closed.allowed(guesser, scheme="Basic", account="alice", now=now)
        await closed.failed(attempt, now)
        await closed.failed(attempt, now, "Alice")  # account names fold case
        assert await wait(closed, guesser, "alice", now) == 300
        assert await wait(open_, guesser, "ALICE", now + 100) == 200
        assert await wait(closed, other, "alice", now) is None  # another client: not its
        redis_server.stop()
        with pytest.raises(StoreUnavailable):
            await wait(closed, other, "alice", now)
        with pytest.raises(StoreUnavailable):
            await closed.failed(attempt, now)
        assert await wait(open_, guesser, "alice", now) is None  # the risk
        await open_.failed(attempt, now)  # swallowed
        redis_server.start()
        assert await wait(closed, guesser, "alice", now) is None  # Redis was empty
    finally:
        await rs.aclose()
