"""The requirements a route may declare, each mapped to its row of the Reason table."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.requests import HTTPConnection

from .composition import Context, Requirement
from .errors import Refusal
from .identity import Identity
from .reasons import Reason

__all__ = [
    "Anyone",
    "Authenticated",
    "DenyAll",
    "HasRoles",
    "HasScopes",
    "Permission",
    "PermissionFn",
    "StepUp",
]


def _missing(ctx: Context) -> Refusal:
    return Refusal(Reason.CREDENTIALS_MISSING)



@dataclass(frozen=True, slots=True)
class Anyone(Requirement):
    """Anyone may pass, but offered credentials are still checked (bad ones → 401)."""

    order: ClassVar[int] = 0

    async def check(self, ctx: Context) -> Refusal | None:
        return None

    def describe(self) -> str:
        return "anyone (credentials checked if sent)"

    def statuses(self) -> frozenset[int]:
        return frozenset()


@dataclass(frozen=True, slots=True)
class Authenticated(Requirement):
    """Any identity, optionally only by the named schemes (``Authenticated("Bearer")``)."""

    accepted: tuple[str, ...] = ()
    order: ClassVar[int] = 0

    def __init__(self, *schemes: str) -> None:
        object.__setattr__(self, "accepted", tuple(schemes))

    async def check(self, ctx: Context) -> Refusal | None:
        if ctx.identity is None:
            return _missing(ctx)
        if self.accepted and ctx.identity.scheme not in self.accepted:
            return Refusal(
                Reason.CREDENTIALS_MISSING,
                "This resource accepts only the schemes listed in WWW-Authenticate.",
            )
        return None

    def schemes(self) -> frozenset[str] | None:
        return frozenset(self.accepted) if self.accepted else None

    def describe(self) -> str:
        return "authenticated" + (f" ({', '.join(self.accepted)})" if self.accepted else "")


@dataclass(frozen=True, slots=True)
class HasRoles(Requirement):
    """The identity has all (or, with ``any=True``, one) of the roles."""

    roles: tuple[str, ...]
    any: bool = False

    def __init__(self, *roles: str, any: bool = False) -> None:
        object.__setattr__(self, "roles", tuple(roles))
        object.__setattr__(self, "any", any)

    async def check(self, ctx: Context) -> Refusal | None:
        if ctx.identity is None:
            return _missing(ctx)
        have = ctx.identity.roles
        ok = any(r in have for r in self.roles) if self.any else all(r in have for r in self.roles)
        if ok:
            return None
        return Refusal(Reason.FORBIDDEN, "This needs a role that you do not have.",
                       extensions={"required_roles": list(self.roles)})

    def describe(self) -> str:
        return ("any role of " if self.any else "roles ") + ", ".join(self.roles)


@dataclass(frozen=True, slots=True)
class HasScopes(Requirement):
    """The credentials carry all (or, with ``any=True``, one) of the OAuth scopes."""

    scopes: tuple[str, ...]
    any: bool = False

    def __init__(self, *scopes: str, any: bool = False) -> None:
        object.__setattr__(self, "scopes", tuple(scopes))
        object.__setattr__(self, "any", any)

    async def check(self, ctx: Context) -> Refusal | None:
        if ctx.identity is None:
            return _missing(ctx)
        have = ctx.identity.scopes
        ok = (any(s in have for s in self.scopes) if self.any
              else all(s in have for s in self.scopes))
        if ok:
            return None
        # RFC 6750 §3: scope="…" names the scopes needed to access the resource.
        return Refusal(
            Reason.INSUFFICIENT_SCOPE,
            scheme=ctx.identity.scheme,
            challenge_params={"scope": " ".join(self.scopes)},
            extensions={"required_scopes": list(self.scopes)},
        )

    def describe(self) -> str:
        return ("any scope of " if self.any else "scopes ") + " ".join(self.scopes)


_AUTH_TIME_SKEW = 60.0


@dataclass(frozen=True, slots=True)
class StepUp(Requirement):
    """RFC 9470 step-up: ``acr`` is one of ``acr_values`` and ``auth_time`` is recent."""

    acr_values: tuple[str, ...] = ()
    max_age: int | None = None
    order: ClassVar[int] = 1

    def __init__(self, *acr_values: str, max_age: int | None = None) -> None:
        object.__setattr__(self, "acr_values", tuple(acr_values))
        object.__setattr__(self, "max_age", max_age)

    async def check(self, ctx: Context) -> Refusal | None:
        identity = ctx.identity
        if identity is None:
            return _missing(ctx)
        acr_ok = not self.acr_values or identity.acr in self.acr_values
        # A sign-in "in the future" (beyond a minute of clock skew) is not a recent one.
        age_ok = self.max_age is None or (
            identity.auth_time is not None
            and -_AUTH_TIME_SKEW <= ctx.now - identity.auth_time <= self.max_age
        )
        if acr_ok and age_ok:
            return None
        params: dict[str, str] = {}
        ext: dict[str, Any] = {}
        if self.acr_values:
            params["acr_values"] = " ".join(self.acr_values)
            ext["acr_values"] = " ".join(self.acr_values)
        if self.max_age is not None:
            params["max_age"] = str(self.max_age)
            ext["max_age"] = self.max_age
        detail = ("This needs a stronger sign-in." if not acr_ok
                  else "This needs a more recent sign-in.")
        return Refusal(Reason.STEP_UP_REQUIRED, detail, scheme=identity.scheme,
                       challenge_params=params, extensions=ext)

    def describe(self) -> str:
        parts = []
        if self.acr_values:
            parts.append("acr " + "|".join(self.acr_values))
        if self.max_age is not None:
            parts.append(f"auth within {self.max_age}s")
        return "step-up (" + ", ".join(parts) + ")"


PermissionFn = Callable[[HTTPConnection, Identity], bool | Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Permission(Requirement):
    """A callable of ``(request, identity)`` — sync or async — that returns ``True`` to allow.

    Example: ``Permission(lambda req, who: req.path_params["user"] == who.subject)``.
    """

    fn: PermissionFn
    name: str | None = None

    async def check(self, ctx: Context) -> Refusal | None:
        if ctx.identity is None:
            return _missing(ctx)
        result = self.fn(ctx.conn, ctx.identity)
        if inspect.isawaitable(result):
            result = await result
        return None if result else Refusal(Reason.FORBIDDEN)

    def describe(self) -> str:
        return "permission " + str(self.name or getattr(self.fn, "__name__", "check"))


@dataclass(frozen=True, slots=True)
class DenyAll(Requirement):
    """Nobody passes: 401 for anonymous requests (so they get a challenge), else 403."""

    async def check(self, ctx: Context) -> Refusal | None:
        if ctx.identity is None:
            return _missing(ctx)
        return Refusal(Reason.FORBIDDEN, "This route is closed.")

    def describe(self) -> str:
        return "deny"
