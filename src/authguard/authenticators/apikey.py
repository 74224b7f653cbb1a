"""API keys: a header (default ``X-API-Key``), or opt-in a query parameter or a cookie.

Keys are looked up by their SHA-256 hash, never kept in plain text. The challenge is a
documented ``ApiKey`` scheme naming where the key goes, since every 401 must carry one:
``ApiKey realm="…", in="header", name="X-API-Key"``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qsl

from starlette.requests import HTTPConnection

from ..challenges import Challenge, checked_setting
from ..errors import ConfigurationError, Refusal
from ..identity import Identity
from ..reasons import Reason
from .base import claims_of

__all__ = ["APIKeyAuthenticator", "APIKeyStore", "StaticAPIKeys", "hash_api_key"]


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest under which ``key`` is stored and looked up.

    API keys are long random strings, so a fast hash is enough; never store the key itself.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@runtime_checkable
class APIKeyStore(Protocol):
    """Looks up the identity for a key hash."""

    async def lookup(self, key_hash: str) -> Identity | None:
        """The identity owning the key with this hash, or ``None``."""
        ...


class StaticAPIKeys:
    """A fixed table: key hash → identity. Build it with :func:`hash_api_key`."""

    def __init__(self, keys: Mapping[str, Identity]) -> None:
        self._keys = dict(keys)

    async def lookup(self, key_hash: str) -> Identity | None:
        """Dictionary lookup by hash."""
        return self._keys.get(key_hash)

    def identities(self) -> list[Identity]:
        """Every identity of the table (what the keys can grant, e.g. for OpenAPI)."""
        return list(self._keys.values())


@dataclass(frozen=True, kw_only=True, eq=False)
class APIKeyAuthenticator:
    """API-key authentication.

    Attributes:
        store: Where key hashes are looked up.
        header: Header carrying the key (``None`` disables headers).
        query_param: Opt-in query parameter carrying the key (leaks into logs; avoid).
        cookie: Opt-in cookie carrying the key.
        realm: Named in the challenge.
        max_length: Longest key read; longer is malformed.
    """

    store: APIKeyStore
    header: str | None = "X-API-Key"
    query_param: str | None = None
    cookie: str | None = None
    realm: str = "authguard"
    max_length: int = 512
    _header_key: bytes = field(init=False, repr=False)
    _challenge: Challenge = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.header or self.query_param or self.cookie):
            raise ConfigurationError("header/query_param/cookie: at least one must be set")
        checked_setting(self.realm, "realm")
        where, name = (("header", self.header) if self.header else
                       ("query", self.query_param) if self.query_param else
                       ("cookie", self.cookie))
        assert name is not None  # noqa: S101
        object.__setattr__(self, "_header_key", (self.header or "").lower().encode("latin-1"))
        object.__setattr__(self, "_challenge",
                           Challenge("ApiKey", {"realm": self.realm, "in": where, "name": name}))

    @property
    def scheme(self) -> str:
        """``ApiKey``."""
        return "ApiKey"

    @property
    def identity_claims(self) -> frozenset[str] | None:
        """What its identities can carry: from :class:`StaticAPIKeys`, what at least one
        of its identities has (``None``, any, from a store of your own)."""
        if isinstance(self.store, StaticAPIKeys):
            return claims_of(self.store.identities())
        return None

    def _found(self, conn: HTTPConnection) -> list[str]:
        found: list[str] = []
        if self.header:
            key = self._header_key
            for k, v in conn.scope["headers"]:
                if k == key:
                    found.append(v.decode("latin-1"))
        if self.query_param:
            qs = conn.scope.get("query_string", b"").decode("latin-1")
            found += [v for k, v in parse_qsl(qs, keep_blank_values=True)
                      if k == self.query_param]
        if self.cookie:
            value = conn.cookies.get(self.cookie)
            if value is not None:
                found.append(value)
        return found

    def has_credentials(self, conn: HTTPConnection) -> bool:
        """Whether a key is present where this authenticator looks."""
        if self.header and not self.query_param and not self.cookie:
            key = self._header_key
            for k, _ in conn.scope["headers"]:
                if k == key:
                    return True
            return False
        return bool(self._found(conn))

    def account(self, conn: HTTPConnection) -> str | None:
        """API keys claim no account name."""
        return None

    def challenge(self, reason: Reason | None = None,
                  params: dict[str, str] | None = None) -> Challenge:
        """``ApiKey realm="…", in="header", name="X-API-Key"``."""
        return self._challenge

    async def authenticate(self, conn: HTTPConnection) -> Identity | None:
        """Look the key up by hash; ``None`` when no key is present."""
        if self.header and not self.query_param and not self.cookie:
            # the usual configuration: one header, read without building a list
            wanted = self._header_key
            raw: bytes | None = None
            for name, value in conn.scope["headers"]:
                if name == wanted:
                    if raw is not None:
                        raise Refusal(Reason.INVALID_REQUEST,
                                      "Send the API key once, by one method.", scheme="ApiKey")
                    raw = value
            if raw is None:
                return None
            key = raw.decode("latin-1").strip()
        else:
            found = self._found(conn)
            if not found:
                return None
            if len(found) > 1:
                raise Refusal(Reason.INVALID_REQUEST, "Send the API key once, by one method.",
                              scheme="ApiKey")
            key = found[0].strip()
        if not key or len(key) > self.max_length or not key.isprintable() or not key.isascii():
            raise Refusal(Reason.CREDENTIALS_MALFORMED, "The API key is not well-formed.",
                          scheme="ApiKey")
        digest = sha256(key.encode("utf-8")).hexdigest()
        store = self.store
        if type(store) is StaticAPIKeys:  # its lookup is a dictionary read: no await
            identity = store._keys.get(digest)
        else:
            identity = await store.lookup(digest)
        if identity is None:
            raise Refusal(Reason.CREDENTIALS_INVALID, scheme="ApiKey")
        return identity
