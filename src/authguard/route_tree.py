"""The route tree as the route audit and the OpenAPI integration read it: every leaf
route with its full path, its explicit policy (inherited ones included), whether an
``AuthGuardMiddleware`` sits on a mount around it, and the policy the middleware applies.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute, Host, Mount

from .policy import Policy, policy_of
from .routing import (
    _container_policy,
    _dependant_policies,
    _endpoint_policy,
    _included_leaves,
    _is_included_router,
    combine,
    find_routes,
)

if TYPE_CHECKING:
    from .guard import AuthGuard

__all__ = [
    "ENFORCER",
    "RouteInfo",
    "effective_policy",
    "has_enforcer",
    "iter_routes",
    "warn_unprotected",
]

log = logging.getLogger("authguard")


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """One leaf route, as the audit and the OpenAPI integration see it.

    ``under_enforcer`` is ``True`` when an ``AuthGuardMiddleware`` sits on a ``Mount`` (or
    mounted sub-app) around the route.
    """

    path: str
    route: BaseRoute
    explicit: Policy | None
    host: str | None = None
    under_enforcer: bool = False

    @property
    def methods(self) -> list[str]:
        """HTTP methods (``WS`` for a websocket route, ``*`` for a mounted app)."""
        methods = getattr(self.route, "methods", None)
        if methods:
            return sorted(methods)
        name = type(self.route).__name__
        return ["WS"] if "WebSocket" in name else ["*"]

    @property
    def decided_by_dependencies(self) -> bool:
        """Whether every policy of the route comes from dependencies that take the decision
        themselves (FastAPI ``require()``), none from :func:`~authguard.protect`."""
        dependant = getattr(self.route, "dependant", None)
        if self.explicit is None or dependant is None:
            return False
        if any(policy_of(t) is not None
               for t in (self.route, getattr(self.route, "endpoint", None))):
            return False
        found: list[Policy] = []
        for d in dependant.dependencies:
            found.extend(p for p in _dependant_policies(d) if p not in found)
        return bool(found) and self.explicit == combine(found)


def has_enforcer(app: Any) -> bool:
    """Whether an ``AuthGuardMiddleware`` is among ``app`` and the apps it wraps (or in a
    Starlette app's declared middleware)."""
    declared = getattr(app, "user_middleware", None) or []
    if any(getattr(getattr(m, "cls", None), ENFORCER, False) for m in declared):
        return True
    for _ in range(32):
        if app is None or (isinstance(getattr(app, "routes", None), list) and not hasattr(
                app, "user_middleware")):
            return False
        if getattr(type(app), ENFORCER, False):
            return True
        app = getattr(app, "app", None) or getattr(app, "middleware_stack", None)
    return False


ENFORCER = "enforces_policies"
"""Class attribute marking the middleware that enforces route policies."""


def iter_routes(routes: Iterable[BaseRoute], prefix: str = "", inherited: Policy | None = None,
                host: str | None = None, enforced: bool = False) -> Iterable[RouteInfo]:
    """Every leaf route with its full path and explicit policy (inherited ones included)."""
    for route in routes:
        if _is_included_router(route):
            for leaf, own in _included_leaves(route):
                if isinstance(leaf, Mount | Host):
                    yield from iter_routes([leaf], prefix, inherited, host, enforced)
                else:
                    yield RouteInfo(prefix + getattr(leaf, "path", ""), leaf, own or inherited,
                                    host, enforced)
            continue
        if isinstance(route, Mount | Host):
            p = _container_policy(route) or inherited
            below = enforced or has_enforcer(route.app)
            inner = getattr(route, "routes", None)
            if isinstance(route, Host):
                yield from iter_routes(inner or [], prefix, p, route.host, below)
            elif inner:
                yield from iter_routes(inner, prefix + route.path, p, host, below)
            else:  # a mounted app without routes (static files, another ASGI app)
                yield RouteInfo(prefix + route.path, route, p, host, below)
            continue
        path = getattr(route, "path", "")
        yield RouteInfo(prefix + path, route, _endpoint_policy(route) or inherited, host,
                        enforced)


def effective_policy(info: RouteInfo, guard: AuthGuard) -> tuple[Policy, str]:
    """The policy the middleware applies to ``info`` and where it comes from.

    The source is ``"route"`` (declared on the route, its endpoint, dependencies or an
    enclosing mount), ``"rule"`` (a path rule of the guard) or ``"default"``.
    """
    if info.explicit is not None:
        return info.explicit, "route"
    rule = guard.rule_for(info.path)
    if rule is not None:
        return rule, "rule"
    return guard.default, "default"


def warn_unprotected(app: Any, guard: AuthGuard) -> list[RouteInfo]:
    """Log a WARNING naming every route without an explicit policy (deny-by-default mode).

    Such routes are refused (401, or 403 when authenticated); the warning says which, so a
    forgotten declaration is found at start-up rather than by users.
    """
    routes = find_routes(app)
    if routes is None:
        return []
    missing = [i for i in iter_routes(routes) if effective_policy(i, guard)[1] == "default"]
    if missing:
        names = ", ".join(f"{'|'.join(i.methods)} {i.path}" for i in missing)
        log.warning(
            "authguard: deny_by_default refuses %d route(s) without an explicit policy: %s",
            len(missing), names,
        )
    return missing
