"""HTTP Basic authentication (RFC 7617).

``Authorization: Basic base64(user-id ":" password)`` in UTF-8 (RFC 7617 §2.1, we always
announce ``charset="UTF-8"``). The user-id cannot contain ``:``; neither part may contain
control characters. Anything that does not parse is ``credentials_malformed``; a wrong
password and an unknown user are the same ``credentials_invalid``, at the same cost.

Password hashes are slow on purpose (argon2id: tens of milliseconds), so two things keep
them off the per-request path: :class:`StaticPasswords` verifies in a worker thread under its
own capacity limiter (the event loop keeps serving other requests meanwhile), and the
authenticator remembers credentials it verified for a short time (``cache_ttl``), keyed by
an HMAC of user-id and password under a random per-process key: neither the password nor
an unkeyed hash of it is kept in memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from anyio import CapacityLimiter, to_thread
from starlette.requests import HTTPConnection

from ..challenges import Challenge, checked_setting
from ..errors import ConfigurationError, Refusal
from ..identity import Identity
from ..passwords import PasswordHasher, default_hasher
from ..reasons import Reason
from ..stores.base import RevocationStore
from ._util import authorization
from .base import CacheStats

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
    """A table of users with hashed passwords; hashes verify in a worker thread.

    Args:
        users: user-id → :class:`User` (or a plain hash string).
        hasher: The password hasher (argon2id when installed, else PBKDF2).
        max_concurrency: Hashes verified at once, each in its own worker thread (default:
            the number of CPUs, at least 2). Its own limit, so that a burst of logins
            neither takes every thread of the shared pool (sync endpoints use it too) nor
            holds argon2's memory many times over.
    """

    def __init__(self, users: Mapping[str, User | str], *,
                 hasher: PasswordHasher | None = None,
                 max_concurrency: int | None = None) -> None:
        self.hasher = hasher or default_hasher()
        self._users = {
            name: u if isinstance(u, User) else User(u) for name, u in users.items()
        }
        self._dummy = self.hasher.hash("authguard-dummy-password")
        threads = max_concurrency if max_concurrency is not None else max(2, os.cpu_count() or 2)
        if threads < 1:
            raise ConfigurationError("max_concurrency: at least 1")
        self._limiter = CapacityLimiter(threads)
        self._listeners: list[Callable[[str], None]] = []

    def set_user(self, username: str, user: User | str) -> None:
        """Add a user or change its password hash / roles; cached verifications of
        ``username`` are dropped at once (see :meth:`on_change`)."""
        self._users[username] = user if isinstance(user, User) else User(user)
        self._changed(username)

    def remove_user(self, username: str) -> None:
        """Remove a user; cached verifications of ``username`` are dropped at once."""
        self._users.pop(username, None)
        self._changed(username)

    def on_change(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(username)`` whenever a user's password or roles change.

        :class:`BasicAuthenticator` registers itself here, so that a changed password
        never verifies from its cache.
        """
        self._listeners.append(callback)

    def _changed(self, username: str) -> None:
        for callback in self._listeners:
            callback(username)

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
        ok = await to_thread.run_sync(self.hasher.verify, encoded, password,
                                      limiter=self._limiter)
        if not ok or user is None:
            return None
        return Identity(subject=username, scheme="Basic", roles=frozenset(user.roles))


class _VerifiedCache:
    """Recently verified credentials: HMAC(process key, credentials) → identity.

    The HMAC is over the credentials as sent (the base64 of ``user-id:password``), so a
    repeated header is recognised before any decoding. Bounded (least recently used
    entries go first), every entry expires ``ttl`` seconds after its verification, and
    entries are indexed by user-id so that a password change drops them at once. Only
    successes are remembered: a wrong password is verified anew every time (and counted
    by the brute-force guard).
    """

    def __init__(self, ttl: float, size: int, clock: Callable[[], float]) -> None:
        # HMAC-SHA256 (RFC 2104) with a random key: its padded inner and outer blocks are
        # hashed once here, so each digest costs two short hashes (hmac.digest re-derives
        # them on every call).
        self._key = secrets.token_bytes(32)
        key = self._key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        self._ttl = ttl
        self._size = size
        self._clock = clock
        # digest → (verified at, expires at, identity, user-id)
        self._entries: OrderedDict[bytes, tuple[float, float, Identity, str]] = OrderedDict()
        self._by_user: dict[str, set[bytes]] = {}
        self.hits = self.misses = 0

    def digest(self, credentials: bytes) -> bytes:
        """HMAC-SHA256 of ``credentials`` under the process key."""
        inner = self._inner.copy()
        inner.update(credentials)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def get(self, digest: bytes) -> tuple[float, Identity] | None:
        entry = self._entries.get(digest)
        if entry is None:
            self.misses += 1
            return None
        if entry[1] <= self._clock():
            self.drop(digest)
            self.misses += 1
            return None
        self._entries.move_to_end(digest)
        self.hits += 1
        return entry[0], entry[2]

    def put(self, digest: bytes, username: str, identity: Identity) -> None:
        now = self._clock()
        if digest not in self._entries and len(self._entries) >= self._size:
            self.drop(next(iter(self._entries)))
        self._entries[digest] = (now, now + self._ttl, identity, username)
        self._by_user.setdefault(username, set()).add(digest)

    def forget(self, username: str) -> None:
        for digest in self._by_user.pop(username, ()):
            self._entries.pop(digest, None)

    def drop(self, digest: bytes) -> None:
        entry = self._entries.pop(digest, None)
        if entry is not None:
            digests = self._by_user.get(entry[3])
            if digests is not None:
                digests.discard(digest)
                if not digests:
                    del self._by_user[entry[3]]

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True, kw_only=True, eq=False)
class BasicAuthenticator:
    """HTTP Basic (RFC 7617).

    Attributes:
        verifier: Checks user-id and password (e.g. :class:`StaticPasswords`). A verifier
            with an ``on_change(callback)`` method (like :class:`StaticPasswords`) tells the
            cache when a password changes.
        realm: The protection space named in the challenge.
        max_length: Longest ``Authorization`` value read; longer is malformed, undecoded.
        cache_ttl: Seconds for which credentials that verified are remembered, so that a
            client sending them on every request does not pay a password hash each time.
            ``0`` turns the cache off.
        cache_size: Most credentials remembered at once (least recently used go first).
        revocations: When set, a remembered verification is served only if its subject
            was not revoked (``revoke_subject``) since; revoking drops it at once, in
            every process that shares the store.
        clock: Current time in seconds since the epoch (for tests).
    """

    verifier: PasswordVerifier
    realm: str = "authguard"
    max_length: int = 4096
    cache_ttl: float = 30.0
    cache_size: int = 1024
    revocations: RevocationStore | None = None
    clock: Callable[[], float] = time.time
    _challenge: Challenge = field(init=False, repr=False)
    _cache: _VerifiedCache | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        checked_setting(self.realm, "realm")  # refuses CR/LF/control characters at start-up
        if self.max_length < 16:
            raise ConfigurationError("max_length: too small for any Basic credentials")
        if self.cache_ttl < 0 or self.cache_size < 0:
            raise ConfigurationError("cache_ttl/cache_size: must not be negative")
        if self.cache_ttl > 3600:
            raise ConfigurationError(
                "cache_ttl: at most 3600 seconds (a short TTL bounds how long a changed "
                "password elsewhere keeps working)")
        object.__setattr__(self, "_challenge", Challenge(
            "Basic", {"realm": self.realm, "charset": "UTF-8"}))
        cache = None
        if self.cache_ttl > 0 and self.cache_size > 0:
            cache = _VerifiedCache(self.cache_ttl, self.cache_size, self.clock)
            subscribe = getattr(self.verifier, "on_change", None)
            if callable(subscribe):
                subscribe(cache.forget)
        object.__setattr__(self, "_cache", cache)

    def cache_stats(self) -> CacheStats:
        """The verified-credential cache: its size, and its hits and misses so far (all 0
        without a cache)."""
        cache = self._cache
        if cache is None:
            return CacheStats(0, 0, 0)
        return CacheStats(len(cache), cache.hits, cache.misses)

    def forget(self, username: str) -> None:
        """Drop remembered verifications of ``username``: call it after changing or
        removing its password in a verifier of your own (:class:`StaticPasswords` does
        it by itself)."""
        if self._cache is not None:
            self._cache.forget(username)

    @property
    def scheme(self) -> str:
        """``Basic``."""
        return "Basic"

    @property
    def identity_claims(self) -> frozenset[str] | None:
        """What its identities can carry: roles only from :class:`StaticPasswords`
        (``None``, any, from a verifier of your own)."""
        return frozenset({"roles"}) if isinstance(self.verifier, StaticPasswords) else None

    def has_credentials(self, conn: HTTPConnection) -> bool:
        """Whether an ``Authorization: Basic`` header is present."""
        for name, value in conn.scope["headers"]:
            if name == b"authorization" and _is_basic(value):
                return True
        return False

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
        """Parse and verify; ``None`` without Basic credentials.

        Credentials verified within ``cache_ttl`` are recognised by the HMAC of the
        header's credentials before any decoding: the same bytes parsed and verified then.
        """
        values = [v for k, v in conn.scope["headers"] if k == b"authorization"]
        for value in values:
            if _is_basic(value):
                break
        else:
            return None
        cache = self._cache
        digest: bytes | None = None
        if cache is not None and len(values) == 1 and len(values[0]) <= self.max_length:
            digest = cache.digest(values[0].partition(b" ")[2].strip(b" "))
            hit = cache.get(digest)
            if hit is not None and (self.revocations is None
                                    or await self._still_valid(digest, *hit)):
                return hit[1]
        username, password = self._parse(conn)
        identity = await self.verifier.verify(username, password)
        if identity is None:
            raise Refusal(Reason.CREDENTIALS_INVALID, scheme="Basic", account=username)
        if cache is not None and digest is not None:
            cache.put(digest, username, identity)
        return identity

    async def _still_valid(self, digest: bytes, verified_at: float, identity: Identity) -> bool:
        """A remembered verification stands unless its subject was revoked since."""
        assert self.revocations is not None  # noqa: S101 - only called with a store
        not_before = await self.revocations.subject_not_before(identity.subject)
        if not_before is not None and not_before >= verified_at:
            assert self._cache is not None  # noqa: S101 - only called on a cache hit
            self._cache.drop(digest)
            return False
        return True


def _is_basic(value: bytes) -> bool:
    return value[:6].lower() == b"basic " or value.lower() == b"basic"
