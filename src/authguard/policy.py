"""Route policies: what a route needs, and how it is attached to the route.

A :class:`Policy` wraps a requirement (see :mod:`authguard.requirements` and
:mod:`authguard.composition`, re-exported here) with per-route options; :func:`protect`
attaches it to an endpoint, a ``Route``, a ``Mount``, a ``Host`` or a ``Router``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from starlette.exceptions import HTTPException
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

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
    "DECIDED",
    "StepUp",
    "attach_policy",
    "decided_under",
    "enforcing",
    "policy_of",
    "protect",
]

log = logging.getLogger("authguard")


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

    A protected endpoint function (or ``Route``) fails closed: when no
    ``AuthGuardMiddleware`` (nor a dependency of :func:`authguard.fastapi.require`) took
    the decision for the request under a policy that includes this one, it answers 403
    and logs an ERROR naming the fix, instead of running.
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
        # a public policy has nothing to enforce: no wrapper (a later protect() adds one)
        guarded = _enforced(target) if policy.requirement is not None else target
        setattr(guarded, _ATTR, policy)
        return guarded

    return attach


def attach_policy(target: T, policy: Policy) -> T:
    """Attach ``policy`` to ``target`` without the fail-closed check (for callables that
    take the decision themselves, like :func:`authguard.fastapi.require`'s)."""
    setattr(target, _ATTR, policy)
    return target


def policy_of(target: object) -> Policy | None:
    """The policy attached to ``target`` by :func:`protect`, if any."""
    found = getattr(target, _ATTR, None)
    return found if isinstance(found, Policy) else None


# -- fail closed: a protected endpoint runs only after a decision that covers it ---------

DECIDED: ContextVar[Policy | None] = ContextVar("authguard_decided", default=None)
"""The policy this request was decided under (set around the app by the middleware)."""
_GUARDED = "__authguard_guarded__"


@contextmanager
def enforcing(policy: Policy) -> Iterator[None]:
    """Within this block, the request was decided under ``policy`` (set by the middleware
    around the app, and by the dependencies that decide without it)."""
    token = DECIDED.set(policy)
    try:
        yield
    finally:
        DECIDED.reset(token)


def decided_under(policy: Policy) -> None:
    """Record that this request was decided under ``policy`` (for the rest of the task)."""
    DECIDED.set(policy)


def _covers(decided: Policy, wanted: Policy) -> bool:
    if decided is wanted:  # the usual case: the route's only declaration
        return True
    if wanted.requirement is None:
        return True
    if decided.requirement is None:
        return False
    done = list(decided.requirement.walk())
    needed = (wanted.requirement.requirements if isinstance(wanted.requirement, AllOf)
              else (wanted.requirement,))
    return all(any(r == n for r in done) for n in needed)


def _check_enforced(target: Any) -> None:
    policy = policy_of(target)
    if policy is None or policy.requirement is None:
        return
    decided = DECIDED.get()
    if decided is not None and _covers(decided, policy):
        return
    name = getattr(target, "__qualname__", None) or getattr(target, "path", None) or "route"
    log.error("authguard: %s is protected by %r, but no AuthGuardMiddleware took the "
              "decision for this request: add AuthGuardMiddleware to the app (or to the "
              "Mount holding the route). Refused with 403.", name, policy.describe())
    raise HTTPException(403, "This resource's access policy is not enforced by the server.")


def _enforced(target: T) -> T:
    """``target`` checked before it runs: a function endpoint (or dependency) is wrapped,
    a ``Route``'s ASGI app is wrapped; anything else is returned as it is."""
    if getattr(target, _GUARDED, False):
        return target
    if isinstance(target, Route | WebSocketRoute):
        inner = target.app

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            _check_enforced(target)
            await inner(scope, receive, send)

        target.app = app
        setattr(target, _GUARDED, True)
        return target
    if not inspect.isfunction(target) or inspect.isgeneratorfunction(target) or (
            inspect.isasyncgenfunction(target)):
        return target
    func: Callable[..., Any] = target
    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            if DECIDED.get() is not getattr(guarded_async, _ATTR, None):  # else: decided here
                _check_enforced(guarded_async)
            return await func(*args, **kwargs)

        wrapper: Any = guarded_async
    else:
        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if DECIDED.get() is not getattr(guarded, _ATTR, None):  # else: decided here
                _check_enforced(guarded)
            return func(*args, **kwargs)

        wrapper = guarded
    setattr(wrapper, _GUARDED, True)
    return cast(T, wrapper)
