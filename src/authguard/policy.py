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

from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint, WebSocketEndpoint
from starlette.exceptions import HTTPException
from starlette.routing import Host, Mount, Route, Router, WebSocketRoute
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

    A protected target fails closed: when no ``AuthGuardMiddleware`` (nor a dependency of
    :func:`authguard.fastapi.require`) took the decision for the request under a policy
    that includes this one, it answers 403 and logs an ERROR naming the fix, instead of
    running. That holds for endpoint functions and ``Route`` objects, class-based
    endpoints (their ``dispatch``), and containers — ``Mount``, ``Host``, ``Router``, a
    Starlette app — which also let a request through when an ``AuthGuardMiddleware`` sits
    inside them, or when the route below has a policy of its own that was decided (or is
    public).
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


def _decided(policy: Policy | None) -> bool:
    """Whether ``policy`` needs nothing, or this request was decided under one covering it."""
    if policy is None or policy.requirement is None:
        return True
    decided = DECIDED.get()
    return decided is not None and _covers(decided, policy)


def _check_enforced(target: Any) -> None:
    policy = policy_of(target)
    if not _decided(policy):
        _refuse(target, cast(Policy, policy))


def _refuse(target: Any, policy: Policy) -> None:
    name = getattr(target, "__qualname__", None) or getattr(target, "path", None) or (
        type(target).__name__)
    log.error("authguard: %s is protected by %r, but no AuthGuardMiddleware took the "
              "decision for this request: add AuthGuardMiddleware to the app (or to the "
              "Mount holding the route). Refused with 403.", name, policy.describe())
    raise HTTPException(403, "This resource's access policy is not enforced by the server.")


def _check_container(owner: Any, inner: Any, scope: Scope) -> None:
    """The check of a protected ``Mount``, ``Host``, ``Router`` or app, before the request
    goes on below it. Innermost first, as in the middleware: a route below with a policy of
    its own is decided by that policy (a public one needs nothing), a route without one by
    the container's."""
    policy = policy_of(owner)
    if _decided(policy):
        return
    from .route_tree import has_enforcer
    from .routing import find_routes, lookup

    if has_enforcer(inner):  # an AuthGuardMiddleware below decides (mount policy included)
        return
    routes = find_routes(owner)  # a Router's stack does not lead to its routes
    below = lookup(routes, scope) if routes else None
    if below is not None and below.policy is not None and _decided(below.policy):
        return
    _refuse(owner, cast(Policy, policy))


class _Checked:
    """The app of a protected container (``Mount``, ``Host``, ``Router``, a Starlette app's
    router), checked before a request goes below it. Anything else is the wrapped app's:
    its routes, its state, its methods."""

    __slots__ = ("app", "owner")

    def __init__(self, app: Any, owner: Any) -> None:
        object.__setattr__(self, "app", app)
        object.__setattr__(self, "owner", owner)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            _check_container(self.owner, self.app, scope)
        await self.app(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.app, name, value)


def _enforced(target: T) -> T:
    """``target`` checked before it runs: a function endpoint (or dependency) is wrapped;
    a ``Route``'s ASGI app, the app of a ``Mount`` or ``Host``, a ``Router``'s stack, a
    Starlette app's router, a class-based endpoint's ``dispatch`` are wrapped in place;
    anything else is returned as it is."""
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
    if isinstance(target, Mount | Host):
        target.app = _Checked(target.app, target)
        setattr(target, _GUARDED, True)
        return target
    if isinstance(target, Router):
        target.middleware_stack = _Checked(target.middleware_stack, target)
        setattr(target, _GUARDED, True)
        return target
    if isinstance(target, Starlette):
        target.router = _Checked(target.router, target)  # type: ignore[assignment]
        setattr(target, _GUARDED, True)
        return target
    if isinstance(target, type) and issubclass(target, HTTPEndpoint | WebSocketEndpoint):
        _check_dispatch(target)
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
    _resolved_signature(wrapper, func)
    setattr(wrapper, _GUARDED, True)
    return cast(T, wrapper)


def _resolved_signature(wrapper: Any, func: Callable[..., Any]) -> None:
    """Give ``wrapper`` the signature of ``func`` with its annotations resolved in
    ``func``'s module. A framework that reads string annotations (``from __future__ import
    annotations``) in the namespace of the function it is given, as FastAPI 0.115
    does, would otherwise look them up in this module, miss them, and take a dependency
    (``who: CurrentIdentity``) or the ``Request`` for a query parameter. Names it cannot
    resolve yet are left to the framework, as without the wrapper."""
    try:
        wrapper.__signature__ = inspect.signature(func, eval_str=True)
    except Exception:
        return


def _check_dispatch(cls: type[HTTPEndpoint] | type[WebSocketEndpoint]) -> None:
    """A class-based endpoint checked before any of its handlers runs (its subclasses'
    handlers too, with their own policy or the inherited one)."""
    original = cls.dispatch

    @functools.wraps(original)
    async def dispatch(self: Any) -> None:
        _check_enforced(type(self))
        await original(self)

    cls.dispatch = dispatch  # type: ignore[method-assign]
    setattr(cls, _GUARDED, True)
