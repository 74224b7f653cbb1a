"""The authenticated identity, shaped so that Starlette's ``request.user``/``request.auth``
and ``starlette.authentication.requires`` keep working."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.authentication import AuthCredentials, BaseUser

__all__ = ["AuthContext", "Identity"]


@dataclass(frozen=True, slots=True, eq=True)
class Identity(BaseUser):
    """Who made the request, and how strongly that was established.

    Attributes:
        subject: Stable identifier of the principal (user name, ``sub`` claim, key owner).
        scheme: The authentication scheme that established it (``Basic``, ``Bearer``,
            ``ApiKey``, ``Cookie``).
        scopes: OAuth scopes granted to the credentials.
        roles: Application roles of the principal.
        claims: Verified claims (JWT payload or other attributes); never raw credentials.
        auth_time: When the user last authenticated actively (seconds since the epoch).
        acr: Authentication context class reference (e.g. ``mfa``).
        issued_at: When these credentials were issued (for subject-wide revocation).
        credential_id: Identifier of the credentials (``jti``, session id, key id).
    """

    subject: str
    scheme: str
    scopes: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    auth_time: float | None = None
    acr: str | None = None
    issued_at: float | None = None
    credential_id: str | None = None

    @property
    def is_authenticated(self) -> bool:
        """Always ``True`` (Starlette's ``BaseUser`` interface)."""
        return True

    @property
    def display_name(self) -> str:
        """The subject (Starlette's ``BaseUser`` interface)."""
        return self.subject

    @property
    def identity(self) -> str:
        """The subject (Starlette's ``BaseUser`` interface)."""
        return self.subject


class AuthContext(AuthCredentials):
    """What authguard puts in ``scope["auth"]``: Starlette's ``AuthCredentials`` (so
    ``requires("reports:read")`` works) plus the :class:`Identity`, if any.

    ``scopes`` (the identity's scopes, sorted, then ``"authenticated"``) is worked out on
    first use: most requests never read it.
    """

    def __init__(self, identity: Identity | None) -> None:
        self.identity = identity
        self._scopes: list[str] | None = None

    @property
    def scopes(self) -> list[str]:
        """Starlette's scope list."""
        if self._scopes is None:
            identity = self.identity
            scopes = sorted(identity.scopes) if identity is not None else []
            if identity is not None:
                scopes.append("authenticated")
            self._scopes = scopes
        return self._scopes

    @scopes.setter
    def scopes(self, value: list[str]) -> None:
        self._scopes = list(value)
