"""Route policies: what a route needs, and how it is attached to the route.

A :class:`Policy` wraps a requirement (see :mod:`authguard.requirements` and
:mod:`authguard.composition`, re-exported here) with per-route options; :func:`protect`
attaches it to an endpoint, a ``Route``, a ``Mount``, a ``Host`` or a ``Router``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .composition import AllOf, AnyOf, Context, Not, Requirement
from .requirements import (
    Anyone,
    Authenticated,
    DenyAll,
    HasRoles,
    HasScopes,
    Permission,
    StepUp,
)

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
        # Only the target's own policy (a subclass may replace its parent's quietly).
        earlier = getattr(target, "__dict__", {}).get(_ATTR)
        if isinstance(earlier, Policy) and earlier != policy:
            name = getattr(target, "__qualname__", None) or type(target).__name__
            warnings.warn(
                f"protect(): {name} already had the policy {earlier.describe()!r}, now "
                f"replaced by {policy.describe()!r}. A policy belongs to the object, so one "
                "endpoint function shared by several routes has one policy: protect the "
                "Route objects instead, or give each route its own function.",
                UserWarning, stacklevel=2)
        setattr(target, _ATTR, policy)
        return target

    return attach


def policy_of(target: object) -> Policy | None:
    """The policy attached to ``target`` by :func:`protect`, if any."""
    found = getattr(target, _ATTR, None)
    return found if isinstance(found, Policy) else None
