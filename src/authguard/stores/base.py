"""Store protocols. Every method may raise :class:`StoreUnavailable` (→ 503)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..errors import AuthUnavailable

__all__ = ["AttemptStore", "StoreUnavailable"]


class StoreUnavailable(AuthUnavailable):
    """The store could not be reached in time; the decision fails closed (503)."""


@runtime_checkable
class AttemptStore(Protocol):
    """Failed-attempt counters over a sliding window."""

    async def add_failure(self, key: str, now: float, window: float) -> None:
        """Record one failure for ``key`` at ``now``."""
        ...

    async def failures(self, key: str, now: float, window: float) -> tuple[int, float | None]:
        """Failures of ``key`` within ``window`` seconds before ``now``, and the oldest one."""
        ...
