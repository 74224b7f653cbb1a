"""The brute-force guard: too many failed attempts per account or client → 429.

Failures are counted per account and per client address in a sliding window. The answer is
the same whether or not the account exists, and while locked even a correct password is
refused (the check runs before the credentials are verified).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from .errors import AuthUnavailable, ConfigurationError
from .stores.base import AttemptStore
from .stores.memory import MemoryAttemptStore

__all__ = ["BruteForceGuard"]

log = logging.getLogger("authguard")


@dataclass(kw_only=True)
class BruteForceGuard:
    """Limits failed authentication attempts.

    Attributes:
        per_account: Failures allowed per account within ``window`` before 429.
        per_client: Failures allowed per client address within ``window`` before 429.
        window: Sliding window, in seconds.
        store: Where counters live (in-memory by default; Redis for many replicas).
        fail_open: If the store is down, let requests through unguarded instead of 503.
            This trades brute-force protection for availability: an attacker who can make
            the store unavailable gets unlimited guesses. Off by default.
    """

    per_account: int = 10
    per_client: int = 200
    window: float = 300.0
    store: AttemptStore = field(default_factory=MemoryAttemptStore)
    fail_open: bool = False

    def __post_init__(self) -> None:
        if self.per_account < 1 or self.per_client < 1:
            raise ConfigurationError("per_account/per_client: must be at least 1")
        if self.window <= 0:
            raise ConfigurationError("window: must be positive")

    def _keys(self, client: str | None, account: str | None) -> list[tuple[str, int]]:
        keys = []
        if account:
            keys.append(("a:" + account.casefold(), self.per_account))
        if client:
            keys.append(("c:" + client, self.per_client))
        return keys

    async def retry_after(self, client: str | None, account: str | None, now: float) -> int | None:
        """Seconds until the client may try again, or ``None`` when not locked."""
        try:
            wait = 0.0
            for key, limit in self._keys(client, account):
                count, oldest = await self.store.failures(key, now, self.window)
                if count >= limit and oldest is not None:
                    wait = max(wait, oldest + self.window - now)
            return max(1, math.ceil(wait)) if wait > 0 else None
        except AuthUnavailable:
            if self.fail_open:
                log.warning("authguard: attempt store unavailable; brute-force guard open")
                return None
            raise

    async def failed(self, client: str | None, account: str | None, now: float) -> None:
        """Record a failed attempt for the client and the claimed account."""
        try:
            for key, _ in self._keys(client, account):
                await self.store.add_failure(key, now, self.window)
        except AuthUnavailable:
            if not self.fail_open:
                raise
