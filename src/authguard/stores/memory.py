"""In-memory stores: the embedded default for a single process."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence

from ..errors import ConfigurationError
from .base import NO_FAILURES, FailureWindow, SessionRecord, StoreUnavailable

__all__ = [
    "MemoryAttemptStore",
    "MemoryNonceStore",
    "MemoryRevocationStore",
    "MemorySessionStore",
]


class _Expiring:
    """A bounded dict of values with expiry times; expired entries vanish on access."""

    def __init__(self, max_keys: int, clock: Callable[[], float]) -> None:
        self._data: dict[str, tuple[float, object]] = {}
        self._max = max_keys
        self._clock = clock

    def get(self, key: str) -> object | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            del self._data[key]
            return None
        return item[1]

    def set(self, key: str, value: object, expires_at: float) -> None:
        if key not in self._data and len(self._data) >= self._max:
            self._sweep()
            if len(self._data) >= self._max:
                # Drop the entry closest to expiry rather than refuse to remember.
                oldest = min(self._data, key=lambda k: self._data[k][0])
                del self._data[oldest]
        self._data[key] = (expires_at, value)

    def pop(self, key: str) -> object | None:
        item = self._data.pop(key, None)
        return None if item is None else item[1]

    def __len__(self) -> int:
        return len(self._data)

    @property
    def max_keys(self) -> int:
        return self._max

    def sweep(self) -> None:
        """Drop the expired entries."""
        self._sweep()

    def _sweep(self) -> None:
        now = self._clock()
        for key in [k for k, (exp, _) in self._data.items() if exp <= now]:
            del self._data[key]


class _Counter:
    """One key's failure times (oldest first) and the limit it was recorded with."""

    __slots__ = ("limit", "times")

    def __init__(self, limit: int, max_len: int) -> None:
        self.limit = limit
        self.times: deque[float] = deque(maxlen=max_len)


class MemoryAttemptStore:
    """Sliding-window failure counters for one process, bounded in keys and per key.

    Keys below their limit and keys at it are kept apart, each ordered by their latest
    failure. At ``max_keys`` keys, a new key makes room by forgetting a key below its
    limit, the least recently failed first (a key whose failures have all left the window
    goes first of all). A key at its limit (a locked client, a throttled account) is
    forgotten only when every one of the ``max_keys`` keys is at its limit: an attacker
    must keep that many keys locked at once, within one window, to reset a lock.

    Args:
        max_keys: Keys kept at most (about 1 KB each: 100 MB for the default).
        max_per_key: Newest failures kept per key (a count never reads higher).
    """

    def __init__(self, *, max_keys: int = 100_000, max_per_key: int = 10_000) -> None:
        if max_keys < 1 or max_per_key < 1:
            raise ConfigurationError("max_keys/max_per_key: must be at least 1")
        self._open: OrderedDict[str, _Counter] = OrderedDict()
        self._locked: OrderedDict[str, _Counter] = OrderedDict()
        self._max_keys = max_keys
        self._max_per_key = max_per_key

    def __len__(self) -> int:
        return len(self._open) + len(self._locked)

    def _trim(self, key: str, now: float, window: float) -> _Counter | None:
        """``key``'s counter without the failures that left the window (``None``: none)."""
        counter = self._open.get(key)
        locked = counter is None
        if locked:
            counter = self._locked.get(key)
            if counter is None:
                return None
        assert counter is not None  # noqa: S101 - for mypy
        times = counter.times
        while times and times[0] <= now - window:
            times.popleft()
        if not times:
            del (self._locked if locked else self._open)[key]
            return None
        if locked and len(times) < counter.limit:
            del self._locked[key]
            self._open[key] = counter
            first = next(iter(self._open.values()))
            if first.times[-1] >= times[-1]:  # older than the least recent: first out
                self._open.move_to_end(key, last=False)
        return counter

    def _make_room(self) -> None:
        while len(self) >= self._max_keys:
            (self._open or self._locked).popitem(last=False)

    async def add_failures(self, keys: Mapping[str, int], now: float, window: float) -> None:
        """Record one failure at ``now`` for each key (mapped to its limit)."""
        for key, limit in keys.items():
            counter = self._trim(key, now, window)
            if counter is None:
                self._make_room()
                counter = _Counter(limit, self._max_per_key)
            else:
                (self._locked if key in self._locked else self._open).pop(key)
            counter.limit = limit
            counter.times.append(now)
            # re-inserted: the most recently failed key is last in its dict
            (self._locked if len(counter.times) >= limit else self._open)[key] = counter

    async def failures(self, keys: Sequence[str], now: float, window: float
                       ) -> list[FailureWindow]:
        """Each key's count, oldest and newest failure within the window."""
        out = []
        for key in keys:
            counter = self._trim(key, now, window)
            if counter is None:
                out.append(NO_FAILURES)
            else:
                times = counter.times
                out.append(FailureWindow(len(times), times[0], times[-1]))
        return out

    async def clear(self, key: str) -> None:
        """Forget ``key``'s failures."""
        self._open.pop(key, None)
        self._locked.pop(key, None)


class MemoryRevocationStore:
    """Revoked token ids and per-subject "not before" times, in one process.

    Entries expire on their own (a revoked token only needs remembering until its ``exp``).
    """

    def __init__(self, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.time) -> None:
        self._tokens = _Expiring(max_keys, clock)
        self._subjects = _Expiring(max_keys, clock)
        self._clock = clock

    async def revoke_token(self, jti: str, expires_at: float) -> None:
        """Revoke ``jti`` until ``expires_at``."""
        self._tokens.set(jti, True, expires_at)

    async def is_revoked(self, jti: str) -> bool:
        """Whether ``jti`` is revoked."""
        return self._tokens.get(jti) is not None

    async def revoke_subject(self, subject: str, not_before: float, ttl: float) -> None:
        """Void ``subject``'s credentials issued before ``not_before`` (for ``ttl`` seconds)."""
        current = self._subjects.get(subject)
        if isinstance(current, float) and current > not_before:
            not_before = current
        self._subjects.set(subject, float(not_before), self._clock() + ttl)

    async def subject_not_before(self, subject: str) -> float | None:
        """The subject's "not before" time, if any."""
        value = self._subjects.get(subject)
        return value if isinstance(value, float) else None


class MemorySessionStore:
    """Server-side session records, in one process."""

    def __init__(self, *, max_sessions: int = 100_000,
                 clock: Callable[[], float] = time.time) -> None:
        self._sessions = _Expiring(max_sessions, clock)
        self._by_subject: dict[str, set[str]] = {}

    async def create(self, record: SessionRecord) -> None:
        """Store ``record`` until it expires."""
        self._sessions.set(record.session_id, record, record.expires_at)
        ids = self._by_subject.setdefault(record.subject, set())
        ids.add(record.session_id)
        if len(ids) > 64:  # forget ids of sessions that have ended on their own
            ids.intersection_update(i for i in list(ids) if self._sessions.get(i) is not None)

    async def get(self, session_id: str) -> SessionRecord | None:
        """The live session, or ``None``."""
        value = self._sessions.get(session_id)
        return value if isinstance(value, SessionRecord) else None

    async def delete(self, session_id: str) -> None:
        """End one session."""
        value = self._sessions.pop(session_id)
        if isinstance(value, SessionRecord):
            self._by_subject.get(value.subject, set()).discard(session_id)

    async def delete_subject(self, subject: str) -> None:
        """End every session of ``subject``."""
        for session_id in self._by_subject.pop(subject, set()):
            self._sessions.pop(session_id)


class MemoryNonceStore:
    """Single-use values, in one process. ``consume`` is atomic: the event loop runs it
    without a suspension point between the check and the write."""

    def __init__(self, *, max_keys: int = 1_000_000,
                 clock: Callable[[], float] = time.time) -> None:
        self._used = _Expiring(max_keys, clock)
        self._clock = clock

    async def consume(self, nonce: str, ttl: float) -> bool:
        """Mark ``nonce`` used; ``True`` only the first time within ``ttl`` seconds.

        Raises:
            StoreUnavailable: ``max_keys`` values are in use and none has expired: a used
                value is never forgotten early (it could be replayed), so the request
                fails closed (503) instead.
        """
        if self._used.get(nonce) is not None:
            return False
        if len(self._used) >= self._used.max_keys:
            self._used.sweep()
            if len(self._used) >= self._used.max_keys:
                raise StoreUnavailable("the in-memory nonce store is full", retry_after=30)
        self._used.set(nonce, True, self._clock() + ttl)
        return True

    async def release(self, nonce: str) -> None:
        """Forget ``nonce`` (a payment reserved for a request that was not served)."""
        self._used.pop(nonce)
