"""The authenticator contract.

An authenticator looks at one request and answers exactly one of:

* ``None`` — "no credentials of mine here" (another authenticator may try);
* an :class:`~authguard.Identity` — the credentials are good;
* it raises :class:`~authguard.Refusal` — credentials of its scheme were offered but are
  malformed, invalid, expired, revoked…;
* it raises :class:`~authguard.AuthUnavailable` — it could not decide (a backend is down).

It also knows its own challenge, so that every 401 carries one (RFC 9110 §11.6.1).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from starlette.requests import HTTPConnection

from ..challenges import Challenge
from ..identity import Identity
from ..reasons import Reason

__all__ = ["Authenticator"]


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
        """Decide on the request's credentials (see the module docstring)."""
        ...
