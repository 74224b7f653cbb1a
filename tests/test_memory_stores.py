"""The in-memory stores: expiry, subject-wide session deletion, single use, and the attempt
store's bound (keys below their limit are forgotten first)."""

from __future__ import annotations

import asyncio

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
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_revocations_expire_and_keep_the_latest_not_before() -> None:
    clock = Clock()
    store = MemoryRevocationStore(clock=clock)
    assert isinstance(store, RevocationStore)
    await store.revoke_token("t1", expires_at=1_010.0)
    assert await store.is_revoked("t1")
    assert not await store.is_revoked("t2")
    await store.revoke_subject("alice", not_before=1_005.0, ttl=60)
    await store.revoke_subject("alice", not_before=1_001.0, ttl=60)  # older: ignored
    assert await store.subject_not_before("alice") == 1_005.0
    clock.now = 1_011.0
    assert not await store.is_revoked("t1")
    clock.now = 1_061.0
    assert await store.subject_not_before("alice") is None


async def test_sessions_end_one_by_one_and_per_subject() -> None:
    clock = Clock()
    store = MemorySessionStore(clock=clock)
    assert isinstance(store, SessionStore)
    for sid, who in (("s1", "alice"), ("s2", "alice"), ("s3", "bob")):
        await store.create(SessionRecord(sid, who, created_at=1_000.0, expires_at=1_100.0))
    got = await store.get("s1")
    assert got is not None and got.subject == "alice"
    await store.delete("s1")
    assert await store.get("s1") is None
    await store.delete_subject("alice")
    assert await store.get("s2") is None
    assert await store.get("s3") is not None
    clock.now = 1_100.0
    assert await store.get("s3") is None


async def test_a_nonce_is_consumed_once_even_concurrently() -> None:
    clock = Clock()
    store = MemoryNonceStore(clock=clock)
    assert isinstance(store, NonceStore)
    results = await asyncio.gather(*(store.consume("n", ttl=30) for _ in range(50)))
    assert results.count(True) == 1
    clock.now += 31
    assert await store.consume("n", ttl=30)


async def test_the_attempt_store_forgets_unlocked_keys_first_oldest_first() -> None:
    store = MemoryAttemptStore(max_keys=3)
    assert isinstance(store, AttemptStore)
    await store.add_failures({"locked": 2}, 1_000.0, 60)
    await store.add_failures({"locked": 2}, 1_001.0, 60)  # at its limit
    await store.add_failures({"old": 5}, 1_002.0, 60)
    await store.add_failures({"new": 5}, 1_003.0, 60)
    await store.add_failures({"old": 5}, 1_004.0, 60)  # now "new" is the least recent
    await store.add_failures({"newest": 5}, 1_005.0, 60)
    counts = await store.failures(["locked", "old", "new", "newest"], 1_006.0, 60)
    assert [w.count for w in counts] == [2, 2, 0, 1]
    assert len(store) == 3


async def test_at_the_bound_with_every_key_locked_the_least_recent_lock_goes() -> None:
    store = MemoryAttemptStore(max_keys=2)
    await store.add_failures({"a": 1}, 1_000.0, 60)
    await store.add_failures({"b": 1}, 1_001.0, 60)
    await store.add_failures({"c": 1}, 1_002.0, 60)
    assert [w.count for w in await store.failures(["a", "b", "c"], 1_003.0, 60)] == [0, 1, 1]
    assert len(store) == 2


async def test_a_key_that_slides_below_its_limit_is_unlocked_again() -> None:
    store = MemoryAttemptStore(max_keys=2)
    await store.add_failures({"x": 2}, 1_000.0, 60)
    await store.add_failures({"x": 2}, 1_030.0, 60)  # locked
    await store.add_failures({"y": 2}, 1_031.0, 60)
    (x,) = await store.failures(["x"], 1_061.0, 60)  # the first failure left the window
    assert (x.count, x.oldest, x.newest) == (1, 1_030.0, 1_030.0)
    await store.add_failures({"z": 2}, 1_062.0, 60)  # x is unlocked and least recent
    assert [w.count for w in await store.failures(["x", "y", "z"], 1_062.0, 60)] == [0, 1, 1]
