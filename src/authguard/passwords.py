"""Password hashing: argon2id through the ``argon2`` extra, or PBKDF2 from the standard
library. Verification is CPU-bound and runs off the event loop (see :class:`StaticPasswords`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Protocol, runtime_checkable

from .errors import ConfigurationError

__all__ = ["Argon2Hasher", "PBKDF2Hasher", "PasswordHasher", "default_hasher"]


@runtime_checkable
class PasswordHasher(Protocol):
    """Hashes and verifies passwords; both calls are synchronous and CPU-bound."""

    def hash(self, password: str) -> str:
        """Return an encoded hash of ``password`` (with its own salt and parameters)."""
        ...

    def verify(self, encoded: str, password: str) -> bool:
        """Whether ``password`` matches ``encoded``, in constant time."""
        ...


class PBKDF2Hasher:
    """PBKDF2-HMAC-SHA256 from :mod:`hashlib` (``pbkdf2_sha256$iterations$salt$hash``)."""

    def __init__(self, iterations: int = 600_000) -> None:
        if iterations < 1000:
            raise ConfigurationError("iterations: at least 1000")
        self.iterations = iterations

    def hash(self, password: str) -> str:
        """Hash with a fresh 16-byte salt."""
        salt = os.urandom(16)
        dk = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, self.iterations)
        b64 = base64.b64encode
        return f"pbkdf2_sha256${self.iterations}${b64(salt).decode()}${b64(dk).decode()}"

    def verify(self, encoded: str, password: str) -> bool:
        """Recompute and compare with :func:`hmac.compare_digest`."""
        try:
            algo, iterations, salt, want = encoded.split("$")
            if algo != "pbkdf2_sha256":
                return False
            dk = hashlib.pbkdf2_hmac(
                "sha256", password.encode(), base64.b64decode(salt), int(iterations)
            )
            return hmac.compare_digest(dk, base64.b64decode(want))
        except (ValueError, TypeError):
            return False


class Argon2Hasher:
    """argon2id through ``argon2-cffi`` (``pip install authguard[argon2]``)."""

    def __init__(
        self, *, time_cost: int = 3, memory_cost: int = 65536, parallelism: int = 4
    ) -> None:
        try:
            from argon2 import PasswordHasher as _Argon2
        except ImportError as exc:  # pragma: no cover - exercised without the extra
            raise ConfigurationError("Argon2Hasher: install authguard[argon2]") from exc
        self._ph = _Argon2(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)

    def hash(self, password: str) -> str:
        """Hash with argon2id."""
        return str(self._ph.hash(password))

    def verify(self, encoded: str, password: str) -> bool:
        """Verify; any argon2 error (mismatch, malformed hash) is ``False``."""
        from argon2.exceptions import Argon2Error, InvalidHashError

        try:
            return bool(self._ph.verify(encoded, password))
        except (Argon2Error, InvalidHashError):
            return False


def default_hasher() -> PasswordHasher:
    """argon2id when the extra is installed, else PBKDF2."""
    try:
        return Argon2Hasher()
    except ConfigurationError:  # pragma: no cover
        return PBKDF2Hasher()
