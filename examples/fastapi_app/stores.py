"""The example app's stores: in memory (one process) by default, or shared through Redis
when ``AUTHGUARD_REDIS_URL`` is set, so that several replicas of the app behave as one."""

from __future__ import annotations

from dataclasses import dataclass

from settings import Settings

from authguard.stores import (
    AttemptStore,
    MemoryAttemptStore,
    MemoryNonceStore,
    MemoryRevocationStore,
    MemorySessionStore,
    NonceStore,
    RevocationStore,
    SessionStore,
)

REDIS_PREFIX = "authguard-demo:"
REDIS_TIMEOUT = 0.5  # seconds; an unreachable Redis is a 503 within ~2 s, never a hang


@dataclass(frozen=True)
class Stores:
    """Failed attempts, revocations, server-side sessions and single-use receipts."""

    attempts: AttemptStore
    revocations: RevocationStore
    sessions: SessionStore
    nonces: NonceStore
    backend: str


def make_stores(settings: Settings) -> Stores:
    """Redis stores when ``settings.redis_url`` is set, else in-memory ones."""
    if settings.redis_url:
        from authguard.stores.redis import from_url

        redis = from_url(settings.redis_url, prefix=REDIS_PREFIX, timeout=REDIS_TIMEOUT)
        return Stores(redis.attempts, redis.revocations, redis.sessions, redis.nonces,
                      backend="redis")
    return Stores(MemoryAttemptStore(), MemoryRevocationStore(), MemorySessionStore(),
                  MemoryNonceStore(), backend="memory")
