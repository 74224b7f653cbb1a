"""Requirements and how they compose: ``&`` (all), ``|`` (any) and ``~`` (not).

Each failing requirement maps to one row of the Reason table. Within ``&`` requirements are
checked lazily in the order of DESIGN §1 — identity, step-up, scopes/roles/permissions,
payment — so the first failure is the most helpful one. ``|`` stops at the first
requirement that passes; when every branch fails, the most helpful failure wins: 401 before
403 before 402. Combinations compare equal by value (instances, never classes, compose).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from starlette.requests import HTTPConnection

from .errors import Refusal
from .identity import Identity
from .reasons import Reason

__all__ = ["AllOf", "AnyOf", "Context", "Not", "Requirement"]

_HELPFUL = {401: 0, 403: 1, 402: 2}
# Among alternatives (``|``), the refusal a client can act on: signing in, then paying;
# a 403 (nothing the client can do) only when nothing else is left.
_HELPFUL_ANY = {401: 0, 402: 1, 403: 2}
RESPONSE_HOOK = "authguard.response_hook"
"""Scope key: what a requirement that passed leaves for the middleware to run once the
decision is taken (payment settlement: ``before_app()``, ``on_start(message)``)."""


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



def _rank(refusal: Refusal, table: dict[int, int] = _HELPFUL) -> int:
    return table.get(refusal.status, 3)


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
        offer: Refusal | None = None
        for r in self.requirements:
            refusal = await r.check(ctx)
            if refusal is None:
                return None
            if refusal.status == 402 and offer is None:
                offer = refusal
            if best is None or _rank(refusal, _HELPFUL_ANY) < _rank(best, _HELPFUL_ANY):
                best = refusal
        if best is not None and offer is not None and best.status == 401:
            # "Sign in, or pay": the 401 carries the payment's challenges and offers too
            # (a new refusal: the ones requirements return may be shared).
            return Refusal(best.reason, best.detail, scheme=best.scheme,
                           challenge_params=best.challenge_params,
                           challenges=[*best.challenges, *offer.challenges],
                           headers={**offer.headers, **best.headers},
                           extensions={**offer.extensions, **best.extensions},
                           delete_cookies=best.delete_cookies, account=best.account)
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
        scope = ctx.conn.scope
        hook = scope.get(RESPONSE_HOOK)
        passed = await self.requirement.check(ctx) is None
        # Whatever the inner check prepared to act on (a payment to settle) is not taken:
        # its passing is what makes this one fail, and a failure is never acted upon.
        if hook is None:
            scope.pop(RESPONSE_HOOK, None)
        else:
            scope[RESPONSE_HOOK] = hook
        return Refusal(Reason.FORBIDDEN) if passed else None

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
