"""Server-provided DPoP nonces (RFC 9449 §8, §9), without shared state.

A nonce is the number of a time slot and an HMAC-SHA256 of that number under a secret the
replicas share: every replica issues the same nonce in the same slot and accepts any
other's. A nonce of the current slot or the one before is accepted, so a client that got
one just before a rotation is not refused after it (§8.2 leaves rotation to the server).
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable
from hashlib import sha256

from jwt.utils import base64url_encode

from ..errors import ConfigurationError

__all__ = ["DPoPNonces"]


class DPoPNonces:
    """Issue and check DPoP nonces.

    Args:
        secret: At least 32 bytes, the same on every replica. ``None`` makes a random one,
            good for one process only (a nonce issued by another replica is then refused,
            and the client is simply given a new one).
        lifetime: Seconds per slot; a nonce is accepted for between one and two of them.
        clock: Current time, in seconds.

    Raises:
        ConfigurationError: the secret is shorter than 32 bytes, or the lifetime is not
            between 1 and 86400 seconds.
    """

    def __init__(self, secret: bytes | str | None = None, *, lifetime: float = 300.0,
                 clock: Callable[[], float] | None = None) -> None:
        key = os.urandom(32) if secret is None else (
            secret.encode("utf-8") if isinstance(secret, str) else bytes(secret))
        if len(key) < 32:
            raise ConfigurationError("nonce secret: must be at least 32 bytes")
        if not 1 <= lifetime <= 86_400:
            raise ConfigurationError("nonce lifetime: must be between 1 and 86400 seconds")
        self._key = key
        self.lifetime = float(lifetime)
        self._clock = clock or time.time

    def _slot(self) -> int:
        return int(self._clock() // self.lifetime)

    def _for(self, slot: int) -> str:
        mac = hmac.new(self._key, b"dpop-nonce:%d" % slot, sha256).digest()[:18]
        return f"{slot:x}.{base64url_encode(mac).decode('ascii')}"

    def issue(self) -> str:
        """The nonce of the current slot (RFC 9449 §8.1 NQCHAR only: hex, ``.``, base64url)."""
        return self._for(self._slot())

    def check(self, nonce: object) -> bool:
        """Whether ``nonce`` is the current slot's or the previous one's."""
        if not isinstance(nonce, str) or len(nonce) > 64:
            return False
        head, _, _ = nonce.partition(".")
        try:
            slot = int(head, 16)
        except ValueError:
            return False
        current = self._slot()
        if slot not in (current, current - 1):
            return False
        return hmac.compare_digest(nonce.encode("ascii", "replace"),
                                   self._for(slot).encode("ascii"))
