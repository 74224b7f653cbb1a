"""HTTP Basic authentication (RFC 7617).

``Authorization: Basic base64(user-id ":" password)`` in UTF-8 (RFC 7617 §2.1, we always
announce ``charset="UTF-8"``). The user-id cannot contain ``:``; neither part may contain
control characters. Anything that does not parse is ``credentials_malformed``; a wrong
password and an unknown user are the same ``credentials_invalid``, at the same cost.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from anyio import to_thread
from starlette.requests import HTTPConnection

from ..challenges import Challenge, quote
from ..errors import ConfigurationError, Refusal
from ..identity import Identity
from ..passwords import PasswordHasher, default_hasher
from ..reasons import Reason
from ._util import authorization

__all__ = ["BasicAuthenticator", "PasswordVerifier", "StaticPasswords", "User"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@runtime_checkable
class PasswordVerifier(Protocol):
    """Checks a user-id and password; returns the identity, or ``None`` when wrong.

    Implementations must do the same work for an unknown user as for a known one (e.g.
    verify against a dummy hash), so that timing does not reveal which users exist.
    """

    async def verify(self, username: str, password: str) -> Identity | None:
        """The identity for these credentials, or ``None``."""
        ...


@dataclass(frozen=True, slots=True)
class User:
    """A user of :class:`StaticPasswords`: a password hash and roles."""

    password_hash: str
    roles: Sequence[str] = ()


class StaticPasswords:
    """A fixed table of users with hashed passwords; hashes verify in a worker thread.

    Args:
        users: user-id → :class:`User` (or a plain hash string).
        hasher: The password hasher (argon2id when installed, else PBKDF2).
    """

    def __init__(self, users: Mapping[str, User | str], *,
                 hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or default_hasher()
        self._users = {
            name: u if isinstance(u, User) else User(u) for name, u in users.items()
        }
        self._dummy = self.hasher.hash("authguard-dummy-password")

    @classmethod
    def from_plaintext(cls, users: Mapping[str, tuple[str, Sequence[str]]], *,
                       hasher: PasswordHasher | None = None) -> StaticPasswords:
        """Hash plain passwords once at start-up: ``{"alice": ("secret", ["user"])}``."""
        h = hasher or default_hasher()
        return cls({n: User(h.hash(p), tuple(r)) for n, (p, r) in users.items()}, hasher=h)

    async def verify(self, username: str, password: str) -> Identity | None:
        """Verify off the event loop; unknown users verify against a dummy hash."""
        user = self._users.get(username)
        encoded = user.password_hash if user is not None else self._dummy
        ok = await to_thread.run_sync(self.hasher.verify, encoded, password)
        if not ok or user is None:
            return None
        return Identity(subject=username, scheme="Basic", roles=frozenset(user.roles))


@dataclass(frozen=True, kw_only=True, eq=False)
class BasicAuthenticator:
    """HTTP Basic (RFC 7617).

    Attributes:
        verifier: Checks user-id and password (e.g. :class:`StaticPasswords`).
        realm: The protection space named in the challenge.
        max_length: Longest ``Authorization`` value read; longer is malformed, undecoded.
    """

    verifier: PasswordVerifier
    realm: str = "authguard"
    max_length: int = 4096
    _challenge: Challenge = field(init=False, repr=False)

    def __post_init__(self) -> None:
        quote(self.realm)  # refuses CR/LF/control characters at start-up
        if self.max_length < 16:
            raise ConfigurationError("max_length: too small for any Basic credentials")
        object.__setattr__(self, "_challenge", Challenge(
            "Basic", {"realm": self.realm, "charset": "UTF-8"}))

    @property
    def scheme(self) -> str:
        """``Basic``."""
        return "Basic"

    def has_credentials(self, conn: HTTPConnection) -> bool:
        """Whether an ``Authorization: Basic`` header is present."""
        return any(v[:6].lower() == b"basic " or v.lower() == b"basic"
                   for v in authorization(conn))

    def account(self, conn: HTTPConnection) -> str | None:
        """The user-id claimed, if the header parses."""
        try:
            return self._parse(conn)[0]
        except Refusal:
            return None

    def challenge(self, reason: Reason | None = None,
                  params: dict[str, str] | None = None) -> Challenge:
        """``Basic realm="…", charset="UTF-8"`` (RFC 7617 §2, §2.1)."""
        return self._challenge

    def _parse(self, conn: HTTPConnection) -> tuple[str, str]:
        values = authorization(conn)
        if len(values) != 1:
            raise Refusal(Reason.CREDENTIALS_MALFORMED,
                          "Send exactly one Authorization header.", scheme="Basic")
        raw = values[0]
        if len(raw) > self.max_length:
            raise Refusal(Reason.CREDENTIALS_MALFORMED, "The Authorization header is too long.",
                          scheme="Basic")
        _, _, encoded = raw.partition(b" ")
        encoded = encoded.strip(b" ")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise Refusal(
                Reason.CREDENTIALS_MALFORMED,
                "Basic credentials must be base64 of UTF-8 'user-id:password'.",
                scheme="Basic",
            ) from None
        if not encoded:
            raise Refusal(Reason.CREDENTIALS_MALFORMED, "Basic credentials are empty.",
                          scheme="Basic")
        username, colon, password = decoded.partition(":")
        if not colon:
            raise Refusal(Reason.CREDENTIALS_MALFORMED,
                          "Basic credentials need a ':' between user-id and password.",
                          scheme="Basic")
        if _CONTROL.search(decoded):
            raise Refusal(Reason.CREDENTIALS_MALFORMED,
                          "Basic credentials must not contain control characters.",
                          scheme="Basic")
        return username, password

    async def authenticate(self, conn: HTTPConnection) -> Identity | None:
        """Parse and verify; ``None`` without Basic credentials."""
        if not self.has_credentials(conn):
            return None
        username, password = self._parse(conn)
        identity = await self.verifier.verify(username, password)
        if identity is None:
            raise Refusal(Reason.CREDENTIALS_INVALID, scheme="Basic", account=username)
        return identity
