"""Store protocols. Every method may raise :class:`StoreUnavailable` (→ 503 ``auth_unavailable``).

Each protocol has an in-memory implementation in :mod:`authguard.stores.memory` (the
embedded default, one process) and a Redis one in :mod:`authguard.stores.redis` (many
replicas). Times are seconds since the epoch; every record has a TTL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..errors import AuthUnavailable

__all__ = [
    "NO_FAILURES",
    "AttemptStore",
    "FailureWindow",
    "NonceStore",
    "RevocationStore",
    "SessionRecord",
    "SessionStore",
    "StoreUnavailable",
]


class StoreUnavailable(AuthUnavailable):
    """The store could not be reached in time; the decision fails closed (503)."""


@dataclass(frozen=True, slots=True)
class FailureWindow:
    """The failures of one key within the window: how many, the oldest and the newest."""

    count: int
    oldest: float | None
    newest: float | None


NO_FAILURES = FailureWindow(0, None, None)


@runtime_checkable
class AttemptStore(Protocol):
    """Failed-attempt counters over a sliding window, several keys per call (one round trip).

    Each key is recorded with its *limit*, the count at which the brute-force guard acts on
    it. A store that must forget keys to stay bounded forgets keys below their limit first,
    the least recently failed first, so that flooding it with new keys cannot reset a limit
    that has been reached.
    """

    async def add_failures(self, keys: Mapping[str, int], now: float, window: float) -> None:
        """Record one failure at ``now`` for each key (mapped to its limit)."""
        ...

    async def failures(self, keys: Sequence[str], now: float, window: float
                       ) -> list[FailureWindow]:
        """Each key's failures within ``window`` seconds before ``now``, in order."""
        ...

    async def clear(self, key: str) -> None:
        """Forget ``key``'s failures (a client that then got in)."""
        ...


@runtime_checkable
class RevocationStore(Protocol):
    """Revoked token ids, and per-subject "not before" times."""

    async def revoke_token(self, jti: str, expires_at: float) -> None:
        """Revoke the token ``jti`` until ``expires_at`` (after which it is expired anyway)."""
        ...

    async def is_revoked(self, jti: str) -> bool:
        """Whether ``jti`` is revoked."""
        ...

    async def revoke_subject(self, subject: str, not_before: float, ttl: float) -> None:
        """Void every credential of ``subject`` issued before ``not_before``."""
        ...

    async def subject_not_before(self, subject: str) -> float | None:
        """The subject's "not before" time, if any."""
        ...


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A server-side session."""

    session_id: str
    subject: str
    created_at: float
    expires_at: float
    data: dict[str, str] | None = None


@runtime_checkable
class SessionStore(Protocol):
    """Server-side session records (so that logout ends a session everywhere)."""

    async def create(self, record: SessionRecord) -> None:
        """Store a new session until ``record.expires_at``."""
        ...

    async def get(self, session_id: str) -> SessionRecord | None:
        """The live session, or ``None`` when it ended or never existed."""
        ...

    async def delete(self, session_id: str) -> None:
        """End one session."""
        ...

    async def delete_subject(self, subject: str) -> None:
        """End every session of ``subject``."""
        ...


@runtime_checkable
class NonceStore(Protocol):
    """Single-use values (payment receipts, nonces): consumed atomically, once."""

    async def consume(self, nonce: str, ttl: float) -> bool:
        """Mark ``nonce`` used; ``True`` only for the first caller, even under concurrency."""
        ...

    # Optional: ``async def release(self, nonce: str) -> None`` forgets a used value (a
    # payment held for a request that was then not served). Stores without it keep it used.
