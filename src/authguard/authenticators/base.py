"""The authenticator contract.

An authenticator looks at one request and answers exactly one of:

* ``None`` — "no credentials of mine here" (another authenticator may try);
* an :class:`~authguard.Identity` — the credentials are good;
* it raises :class:`~authguard.Refusal` — credentials of its scheme were offered but are
  malformed, invalid, expired, revoked…;
* it raises :class:`~authguard.AuthUnavailable` — it could not decide (a backend is down).

It also knows its own challenge, so that every 401 carries one (RFC 9110 §11.6.1).

Beyond these methods an authenticator may declare capabilities, as class (or instance)
attributes; :class:`Capabilities` names each one and its default, and the middleware reads
them once, when it works out a route's plan (never per request):

* ``reads_form_body`` / ``max_form_bytes`` — it takes credentials from an
  ``application/x-www-form-urlencoded`` body (RFC 6750 §2.2), read up to that many bytes;
* ``credential_headers`` — request fields other than ``Authorization`` and ``Cookie``
  that carry its credentials (e.g. ``("X-API-Key",)``): refusals name them in ``Vary``.
  (``header``, a single name, is read too.)
* ``identity_claims`` — the members of :class:`~authguard.Identity` its identities can
  carry (``"roles"``, ``"scopes"``, ``"acr"``, ``"auth_time"``); ``None``, the default,
  means any. OpenAPI lists a scheme on a route only if its identities can meet the
  route's requirement (a password list carries roles, never scopes).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NamedTuple, Protocol, runtime_checkable

from starlette.requests import HTTPConnection

from ..challenges import Challenge
from ..identity import Identity
from ..reasons import Reason

__all__ = ["CLAIMS", "Authenticator", "CacheStats", "Capabilities", "ReportsCache",
           "capabilities", "claims_of"]

CLAIMS = frozenset({"roles", "scopes", "acr", "auth_time"})
"""The members of :class:`~authguard.Identity` a requirement can ask for."""


def claims_of(identities: Any) -> frozenset[str]:
    """The :data:`CLAIMS` that at least one of ``identities`` carries."""
    found: set[str] = set()
    for i in identities:
        found.update(name for name in CLAIMS if getattr(i, name, None))
    return frozenset(found)


@runtime_checkable
class Authenticator(Protocol):
    """What the middleware needs from an authenticator."""

    @property
    def scheme(self) -> str:
        """The auth-scheme name, unique among a guard's authenticators (``Basic``…)."""
        ...

    def has_credentials(self, conn: HTTPConnection) -> bool:
        """Cheaply tell whether the request carries credentials of this scheme (no I/O)."""
        ...

    def account(self, conn: HTTPConnection) -> str | None:
        """The account the credentials claim, if cheaply known (for the brute-force guard)."""
        ...

    def challenge(
        self, reason: Reason | None = None, params: dict[str, str] | None = None
    ) -> Challenge:
        """This scheme's challenge; ``reason`` and ``params`` refine it (Bearer ``error``)."""
        ...

    async def authenticate(self, conn: HTTPConnection) -> Identity | None:
        """Decide on the request's credentials (see the module docstring). It may be
        called without :meth:`has_credentials` first: with none of its credentials in the
        request it returns ``None``."""
        ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The optional capabilities of an authenticator, with their defaults."""

    reads_form_body: bool = False
    """It reads credentials from a form body (RFC 6750 §2.2)."""
    max_form_bytes: int = 0
    """The most of a form body it reads."""
    credential_headers: tuple[str, ...] = ()
    """Request fields, besides ``Authorization`` and ``Cookie``, carrying its credentials."""
    identity_claims: frozenset[str] | None = None
    """Members of :class:`~authguard.Identity` its identities can carry (``None``: any)."""


def capabilities(authenticator: Authenticator) -> Capabilities:
    """What ``authenticator`` declares of :class:`Capabilities` (the defaults for the rest).

    Declared on the class or the instance; an authenticator written before a capability
    existed simply has its default.
    """
    declared: dict[str, Any] = {}
    for f in fields(Capabilities):
        value = getattr(authenticator, f.name, None)
        if value is not None:
            declared[f.name] = value
    headers = list(declared.get("credential_headers", ()))
    single = getattr(authenticator, "header", None)  # APIKeyAuthenticator's X-API-Key
    if isinstance(single, str) and single and single not in headers:
        headers.append(single)
    declared["credential_headers"] = tuple(h for h in headers if isinstance(h, str) and h)
    return Capabilities(
        reads_form_body=bool(declared.get("reads_form_body", False)),
        max_form_bytes=int(declared.get("max_form_bytes", 0)),
        credential_headers=declared["credential_headers"],
        identity_claims=(frozenset(declared["identity_claims"])
                         if "identity_claims" in declared else None),
    )


class CacheStats(NamedTuple):
    """What a verified-credential cache has done since start-up."""

    size: int
    """Entries held now."""
    hits: int
    """Lookups answered from the cache."""
    misses: int
    """Lookups that verified the credentials anew."""


@runtime_checkable
class ReportsCache(Protocol):
    """An authenticator with a verified-credential cache (Basic, Bearer) reports it; the
    metrics read it (``authguard.cache.*``)."""

    def cache_stats(self) -> CacheStats:
        """The cache's size and its hits and misses so far."""
        ...
