"""Store protocols and the in-memory default. ``authguard.stores.redis`` implements the same
protocols for apps that run on many replicas."""

from .base import (
    AttemptStore,
    FailureWindow,
    NonceStore,
    RevocationStore,
    SessionRecord,
    SessionStore,
    StoreUnavailable,
)
from .memory import (
    MemoryAttemptStore,
    MemoryNonceStore,
    MemoryRevocationStore,
    MemorySessionStore,
)

__all__ = [
    "AttemptStore",
    "FailureWindow",
    "MemoryAttemptStore",
    "MemoryNonceStore",
    "MemoryRevocationStore",
    "MemorySessionStore",
    "NonceStore",
    "RevocationStore",
    "SessionRecord",
    "SessionStore",
    "StoreUnavailable",
]
