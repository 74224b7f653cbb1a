"""In-memory stores: the embedded default for a single process."""

from __future__ import annotations

from collections import deque

__all__ = ["MemoryAttemptStore"]


class MemoryAttemptStore:
    """Sliding-window failure counters in a dict of deques (bounded per key and in keys)."""

    def __init__(self, *, max_keys: int = 100_000, max_per_key: int = 10_000) -> None:
        self._data: dict[str, deque[float]] = {}
        self._max_keys = max_keys
        self._max_per_key = max_per_key

    def _trim(self, key: str, now: float, window: float) -> deque[float] | None:
        q = self._data.get(key)
        if q is None:
            return None
        while q and q[0] <= now - window:
            q.popleft()
        if not q:
            del self._data[key]
            return None
        return q

    async def add_failure(self, key: str, now: float, window: float) -> None:
        """Record one failure for ``key``."""
        q = self._trim(key, now, window)
        if q is None:
            if len(self._data) >= self._max_keys:
                self._data.pop(next(iter(self._data)))
            q = self._data[key] = deque(maxlen=self._max_per_key)
        q.append(now)

    async def failures(self, key: str, now: float, window: float) -> tuple[int, float | None]:
        """Count and oldest timestamp of ``key``'s failures within the window."""
        q = self._trim(key, now, window)
        if q is None:
            return 0, None
        return len(q), q[0]
