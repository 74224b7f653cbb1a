"""Route requirements: small composable values combined with ``&``, ``|`` and ``~``.

Each failing requirement maps to one row of the Reason table. Within ``&`` requirements are
checked in the order of DESIGN §1 — identity, step-up, scopes/roles/permissions, payment —
so the first failure is the most helpful one. When every branch of ``|`` fails, the most
helpful failure wins: 401 before 403 before 402.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from starlette.requests import HTTPConnection

from .errors import Refusal
from .identity import Identity
from .reasons import Reason

__all__ = [
    "AllOf",
    "AnyOf",
    "Anyone",
    "Authenticated",
    "Context",
    "DenyAll",
    "HasRoles",
    "HasScopes",
    "Not",
    "Permission",
    "Policy",
    "Public",
    "Requirement",
    "StepUp",
    "policy_of",
    "protect",
]

_HELPFUL = {401: 0, 403: 1, 402: 2}


@dataclass(slots=True)
class Context:
    """What a requirement sees: the connection, the identity (if any) and the time."""

    conn: HTTPConnection
    identity: Identity | None
    now: float
    state: dict[str, Any] = field(default_factory=dict)


class Requirement:
    """Base of all requirements. Subclasses implement :meth:`check`."""

    order: ClassVar[int] = 2
    """Position in DESIGN §1's order: 0 identity, 1 step-up, 2 permissions, 3 payment."""

    async def check(self, ctx: Context) -> Refusal | None:
        """Return ``None`` when satisfied, else the refusal that explains why not."""
        raise NotImplementedError

    def schemes(self) -> frozenset[str] | None:
        """Schemes this requirement restricts authentication to (``None``: any)."""
        return None

    def describe(self) -> str:
        """A short human description (used by ``authguard routes`` and OpenAPI)."""
        return type(self).__name__

    def statuses(self) -> frozenset[int]:
        """The statuses this requirement may refuse with (documented in OpenAPI).

        The default follows :attr:`order`: identity and step-up refuse with 401,
        permissions with 401 (anonymous) or 403, payment with 402.
        """
        if self.order <= 1:
            return frozenset({401})
        if self.order == 2:
            return frozenset({401, 403})
        return frozenset({402})

    def walk(self) -> Iterable[Requirement]:
        """This requirement and every requirement nested in it."""
        yield self

    def __and__(self, other: Requirement) -> Requirement:
        return AllOf(self, other)

    def __or__(self, other: Requirement) -> Requirement:
        return AnyOf(self, other)

    def __invert__(self) -> Requirement:
        return Not(self)


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
        age_ok = self.max_age is None or (
            identity.auth_time is not None and ctx.now - identity.auth_time <= self.max_age
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


def _rank(refusal: Refusal) -> int:
    return _HELPFUL.get(refusal.status, 3)


class AllOf(Requirement):
    """Every requirement must pass; checked lazily in DESIGN §1's order."""

    def __init__(self, *requirements: Requirement) -> None:
        flat: list[Requirement] = []
        for r in requirements:
            flat.extend(r.requirements if isinstance(r, AllOf) else [r])
        self.requirements: tuple[Requirement, ...] = tuple(sorted(flat, key=lambda r: r.order))

    async def check(self, ctx: Context) -> Refusal | None:
        for r in self.requirements:
            refusal = await r.check(ctx)
            if refusal is not None:
                return refusal
        return None

    def schemes(self) -> frozenset[str] | None:
        found = [s for r in self.requirements if (s := r.schemes()) is not None]
        if not found:
            return None
        return frozenset.intersection(*found)

    def describe(self) -> str:
        return " & ".join(f"({r.describe()})" if isinstance(r, AnyOf) else r.describe()
                          for r in self.requirements)

    def walk(self) -> Iterable[Requirement]:
        yield self
        for r in self.requirements:
            yield from r.walk()

    def statuses(self) -> frozenset[int]:
        return frozenset().union(*(r.statuses() for r in self.requirements))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AllOf) and other.requirements == self.requirements

    def __hash__(self) -> int:
        return hash(("all", self.requirements))


class AnyOf(Requirement):
    """At least one requirement must pass; when none does, the most helpful refusal wins."""

    def __init__(self, *requirements: Requirement) -> None:
        flat: list[Requirement] = []
        for r in requirements:
            flat.extend(r.requirements if isinstance(r, AnyOf) else [r])
        self.requirements: tuple[Requirement, ...] = tuple(flat)

    async def check(self, ctx: Context) -> Refusal | None:
        best: Refusal | None = None
        for r in self.requirements:
            refusal = await r.check(ctx)
            if refusal is None:
                return None
            if best is None or _rank(refusal) < _rank(best):
                best = refusal
        return best

    def schemes(self) -> frozenset[str] | None:
        found = [r.schemes() for r in self.requirements]
        if any(s is None for s in found):
            return None
        return frozenset().union(*(s for s in found if s is not None))

    def describe(self) -> str:
        return " | ".join(f"({r.describe()})" if isinstance(r, AllOf) else r.describe()
                          for r in self.requirements)

    def walk(self) -> Iterable[Requirement]:
        yield self
        for r in self.requirements:
            yield from r.walk()

    def statuses(self) -> frozenset[int]:
        found = [r.statuses() for r in self.requirements]
        if any(not f for f in found):
            return frozenset()  # one branch always passes
        return frozenset().union(*found)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AnyOf) and other.requirements == self.requirements

    def __hash__(self) -> int:
        return hash(("any", self.requirements))


class Not(Requirement):
    """Passes when the inner requirement fails; otherwise 403 ``forbidden``."""

    def __init__(self, requirement: Requirement) -> None:
        self.requirement = requirement

    async def check(self, ctx: Context) -> Refusal | None:
        if await self.requirement.check(ctx) is None:
            return Refusal(Reason.FORBIDDEN)
        return None

    def describe(self) -> str:
        return f"not ({self.requirement.describe()})"

    def statuses(self) -> frozenset[int]:
        return frozenset({403})

    def walk(self) -> Iterable[Requirement]:
        yield self
        yield from self.requirement.walk()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Not) and other.requirement == self.requirement

    def __hash__(self) -> int:
        return hash(("not", self.requirement))


@dataclass(frozen=True, slots=True)
class Policy:
    """What a route needs.

    Attributes:
        requirement: The requirement; ``None`` makes the route public (no authenticator runs).
        conceal: Answer a 403 as 404, to hide that the resource exists.
        login_url: Where a browser (``Accept: text/html``) is sent with 303 on a 401.
    """

    requirement: Requirement | None
    conceal: bool = False
    login_url: str | None = None

    @property
    def public(self) -> bool:
        """``True`` when no authentication runs for the route."""
        return self.requirement is None

    def schemes(self) -> frozenset[str] | None:
        """Schemes the route accepts (``None``: every configured one)."""
        return None if self.requirement is None else self.requirement.schemes()

    def describe(self) -> str:
        """A short human description of the policy."""
        if self.requirement is None:
            return "public"
        text = self.requirement.describe()
        return text + (" [403 concealed as 404]" if self.conceal else "")

    def requirements(self) -> list[Requirement]:
        """Every requirement in the policy, nested ones included."""
        return [] if self.requirement is None else list(self.requirement.walk())

    def statuses(self) -> frozenset[int]:
        """Statuses a refusal on this route may carry (a concealed 403 becomes 404)."""
        if self.requirement is None:
            return frozenset()
        found = set(self.requirement.statuses())
        if self.conceal and 403 in found:
            found.discard(403)
            found.add(404)
        return frozenset(found)

    def scopes(self) -> list[str]:
        """OAuth scopes named anywhere in the policy, in first-seen order."""
        out: list[str] = []
        for r in self.requirements():
            if isinstance(r, HasScopes):
                out.extend(s for s in r.scopes if s not in out)
        return out

    def roles(self) -> list[str]:
        """Roles named anywhere in the policy, in first-seen order."""
        out: list[str] = []
        for r in self.requirements():
            if isinstance(r, HasRoles):
                out.extend(x for x in r.roles if x not in out)
        return out

    def payments(self) -> list[str]:
        """Descriptions of the payment requirements (``order`` 3) in the policy."""
        return [r.describe() for r in self.requirements() if r.order == 3]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (used by ``authguard routes --json``)."""
        schemes = self.schemes()
        return {
            "public": self.public,
            "policy": self.describe(),
            "schemes": sorted(schemes) if schemes is not None else None,
            "scopes": self.scopes(),
            "roles": self.roles(),
            "payment": self.payments(),
            "statuses": sorted(self.statuses()),
            "conceal": self.conceal,
            "login_url": self.login_url,
        }


Public = Policy(None)
"""The policy of a public route: no authenticator runs."""

_ATTR = "__authguard_policy__"
T = TypeVar("T")


def protect(
    requirement: Requirement | Policy | None,
    *,
    conceal: bool = False,
    login_url: str | None = None,
) -> Callable[[T], T]:
    """Attach a policy to an endpoint, a ``Route``, a ``Mount`` or a ``Router``.

    Use it as a decorator on endpoints (``@protect(HasRoles("admin"))``) or call it on a
    route object (``protect(HasScopes("x"))(Mount("/api", routes=...))``). ``None`` (or
    :data:`Public`) marks the target public.
    """
    if isinstance(requirement, Policy):
        policy = requirement
    else:
        policy = Policy(requirement, conceal=conceal, login_url=login_url)

    def attach(target: T) -> T:
        setattr(target, _ATTR, policy)
        return target

    return attach


def policy_of(target: object) -> Policy | None:
    """The policy attached to ``target`` by :func:`protect`, if any."""
    found = getattr(target, _ATTR, None)
    return found if isinstance(found, Policy) else None
