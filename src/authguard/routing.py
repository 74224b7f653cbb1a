"""Finding the policy of the route a request is for, before the app runs.

The middleware needs a route's policy before the router dispatches, so it matches the
request against the app's routes itself (the same ``Route.matches`` the router uses) and
caches the answer per method and path in a bounded table.

Where a policy comes from, innermost first:

* the route itself (``protect(...)(Route(...))``), its endpoint (``@protect(...)``) and,
  on FastAPI, every dependency made by :func:`authguard.fastapi.require` (route,
  router and ``include_router(..., dependencies=...)`` dependencies all end up in the
  route's ``dependant``), with the scopes of ``Security(..., scopes=[...])``;
* the enclosing ``Mount``, ``Host`` or ``Router`` (``protect(...)(Mount(...))``);
* then, in the middleware, the guard's path rules and its default.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from starlette.endpoints import HTTPEndpoint
from starlette.routing import BaseRoute, Host, Match, Mount
from starlette.types import Scope

from .fastapi_routes import (
    included_contexts,
    is_included_router,
    match_included,
    oauth_scopes,
)
from .policy import AllOf, HasScopes, Policy, Requirement, policy_of

if TYPE_CHECKING:
    pass

__all__ = [
    "RouteMatch",
    "combine",
    "find_routes",
    "get_route_path",
    "inherited_policy",
    "lookup",
    "match_route",
    "method_allowed",
    "route_policy",
]

log = logging.getLogger("authguard")


def combine(policies: Sequence[Policy]) -> Policy | None:
    """One policy for several declarations on the same route: all of them must pass.

    A route declared public by one declaration and protected by another is protected: a
    dependency that requires something refuses anyway, so the stricter reading wins.
    """
    if not policies:
        return None
    if len(policies) == 1:
        return policies[0]
    reqs = [p.requirement for p in policies if p.requirement is not None]
    if not reqs:
        return policies[0]
    return Policy(
        reqs[0] if len(reqs) == 1 else AllOf(*reqs),
        conceal=any(p.conceal for p in policies),
        login_url=next((p.login_url for p in policies if p.login_url), None),
    )


def _endpoint_policy(*routes: Any) -> Policy | None:
    """Policies declared on the route(s), their endpoints and their dependencies."""
    found: list[Policy] = []
    for route in routes:
        if route is None:
            continue
        targets = (route, getattr(route, "original_route", None), getattr(route, "endpoint", None))
        for target in targets:
            p = policy_of(target) if target is not None else None
            if p is not None and p not in found:
                found.append(p)
        dependant = getattr(route, "dependant", None)
        if dependant is not None:
            # the dependant's own call is the endpoint, already looked at
            found.extend(p for p in _dependant_policies(dependant) if p not in found)
    return combine(found)


# FastAPI's lazily included routers, read through the one adapter that knows its
# internals (authguard.fastapi_routes).

def _is_included_router(route: Any) -> bool:
    return is_included_router(route)


def _included_leaves(route: Any) -> Iterable[tuple[Any, Policy | None]]:
    """(effective route, its explicit policy) for each route of an included router."""
    for ctx, starlette_route in included_contexts(route):
        yield starlette_route or ctx, _endpoint_policy(ctx, starlette_route)


def _match_included(route: Any, scope: Scope) -> tuple[Match, Policy | None, dict[str, Any]]:
    match, child, inner, ctx = match_included(route, scope)
    if match is Match.NONE:
        return match, None, {}
    params = dict(child.get("path_params", {}))
    if _is_included_router(inner):
        matched, policy, inner_params = match_route([inner], {**scope, **child})
        return (match if matched else Match.NONE), policy, {**params, **inner_params}
    leaf = ctx.starlette_route if ctx is not None and ctx.starlette_route is not None else None
    if isinstance(leaf, Mount | Host):
        matched, policy, inner_params = match_route([leaf], scope)
        return (match if matched else Match.NONE), policy, inner_params
    return match, _endpoint_policy(ctx, leaf), params


def _dependant_policies(dependant: Any) -> list[Policy]:
    """Policies carried by dependency callables, plus their ``Security`` scopes."""
    stack = [dependant]
    found: list[Policy] = []
    while stack:
        d = stack.pop()
        call = getattr(d, "call", None)
        p = policy_of(call) if call is not None else None
        if p is not None:
            scopes: list[str] = []
            if getattr(d, "security_scopes_param_name", None):
                for s in oauth_scopes(d):
                    if s not in scopes:
                        scopes.append(s)
            if scopes:
                extra: Requirement = HasScopes(*scopes)
                req = extra if p.requirement is None else AllOf(p.requirement, extra)
                p = Policy(req, conceal=p.conceal, login_url=p.login_url)
            if p not in found:
                found.append(p)
        stack.extend(reversed(getattr(d, "dependencies", ())))
    return found


def _container_policy(route: BaseRoute) -> Policy | None:
    return policy_of(route) or policy_of(getattr(route, "app", None))


def get_route_path(scope: Scope) -> str:
    """The path within the app that ``scope`` reached (its ``root_path`` taken off), as
    Starlette's router reads it."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    return path[len(root_path):] if path[len(root_path)] == "/" else path


class RouteMatch(NamedTuple):
    """What a request matched: the innermost explicit policy, the path parameters, and
    whether a route serves it (a leaf route matched its path and method; ``False`` when the
    router will answer 404 or 405)."""

    policy: Policy | None
    params: dict[str, Any]
    serves: bool


def route_policy(routes: Sequence[BaseRoute], scope: Scope) -> tuple[bool, Policy | None]:
    """Match ``scope`` against ``routes``; return (matched, innermost explicit policy)."""
    matched, policy, _ = match_route(routes, scope)
    return matched, policy


def match_route(routes: Sequence[BaseRoute], scope: Scope
                ) -> tuple[bool, Policy | None, dict[str, Any]]:
    """Match ``scope`` against ``routes``: (matched, innermost explicit policy, path params).

    The path params let permission callables see the resource in the path before the
    router runs. A partial match (the path matches, the method does not) counts only when
    no route matches fully, as in Starlette's router.
    """
    found = lookup(routes, scope)
    return (False, None, {}) if found is None else (True, found.policy, found.params)


def lookup(routes: Sequence[BaseRoute], scope: Scope) -> RouteMatch | None:
    """Match ``scope`` against ``routes`` as the router will (``None``: nothing matched)."""
    partial: RouteMatch | None = None
    for route in routes:
        if _is_included_router(route):
            m, found, found_params = _match_included(route, scope)
            if m is Match.FULL:
                return RouteMatch(found, found_params, True)
            if m is Match.PARTIAL and partial is None:
                partial = RouteMatch(found, found_params, False)
            continue
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        params: dict[str, Any] = dict(child.get("path_params", {}))
        if isinstance(route, Mount | Host):
            inherited = _container_policy(route)
            inner = find_routes(route.app)  # a router, even an empty one, may grow
            if inner is not None:
                below = lookup(inner, {**scope, **child})
                if below is not None:
                    return RouteMatch(below.policy or inherited, {**params, **below.params},
                                      below.serves)
                return RouteMatch(inherited, params, False)
            return RouteMatch(inherited, params, True)  # a mounted app: serves any method
        if match is Match.FULL:
            return RouteMatch(_endpoint_policy(route), params, _endpoint_serves(route, scope))
        if partial is None:
            partial = RouteMatch(_endpoint_policy(route), params, False)
    return partial


def inherited_policy(outer: Any, inner: Any) -> Policy | None:
    """The policy of the ``Mount``/``Host`` routes of ``outer`` that enclose ``inner`` (an
    app or middleware somewhere below them), innermost first; ``None`` when there is none
    or ``inner`` is not below a mount of ``outer``."""
    routes = find_routes(outer) if outer is not None else None
    if not routes:
        return None
    return _enclosing(routes, inner, None, 0)


def _enclosing(routes: Sequence[BaseRoute], inner: Any, around: Policy | None,
               depth: int) -> Policy | None:
    for route in routes:
        if not isinstance(route, Mount | Host) or depth > 16:
            continue
        policy = _container_policy(route) or around
        if _wraps(route.app, inner):
            return policy
        found = _enclosing(getattr(route, "routes", None) or [], inner, policy, depth + 1)
        if found is not None:
            return found
    return None


def _wraps(app: Any, inner: Any) -> bool:
    """Whether ``inner`` is ``app`` or one of the apps it wraps (middleware, the stack of
    a Starlette app)."""
    for _ in range(32):
        if app is None:
            return False
        if app is inner:
            return True
        app = getattr(app, "app", None) or getattr(app, "middleware_stack", None)
    return False


def method_allowed(routes: Sequence[BaseRoute], scope: Scope) -> bool:
    """``False`` when the path matches routes only for other methods (the router will
    answer 405): a payment must not be asked for, or taken, for such a request."""
    partial = False
    for route in routes:
        if _is_included_router(route):
            match = _match_included(route, scope)[0]
        else:
            match, child = route.matches(scope)
            inner = getattr(route, "routes", None) if isinstance(route, Mount | Host) else None
            if match is not Match.NONE and inner:
                if method_allowed(inner, {**scope, **child}):
                    return True
                partial = True
                continue
        if match is Match.FULL:
            if _endpoint_serves(route, scope):
                return True
            partial = True
            continue
        if match is Match.PARTIAL:
            partial = True
    return not partial


RequestKey = tuple[str, str, bytes, str, str]


def request_key(scope: Scope) -> RequestKey:
    """What picks a route: type, method, the ``Host`` field as sent (Host routes give one
    path several routes), root path and path — kept apart (``"/a" + "/a/r"`` is not
    ``"" + "/a/a/r"``). The key of the tables that remember per-route answers."""
    host = b""
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
            break
    return (scope["type"], scope.get("method", "GET"), host, scope.get("root_path", ""),
            scope["path"])


ROUTE_ENTRY = "authguard.route"
"""Scope key: the middleware's answer for this request's route (a
:class:`~authguard.plans.RouteEntry`), so that what it found is not looked up again."""


def serves_method(app: Any, scope: Scope) -> bool:
    """:func:`method_allowed` for the routes of ``app`` (``True`` when it has none to
    read). Where the middleware already found a route serving the request, that answer."""
    entry = scope.get(ROUTE_ENTRY)
    if entry is not None and entry.serves:
        return True
    routes = find_routes(app)
    return routes is None or method_allowed(routes, scope)


def _endpoint_serves(route: Any, scope: Scope) -> bool:
    """A class-based endpoint (``HTTPEndpoint``) on a route without ``methods`` matches
    every method, and answers 405 for those it has no handler for."""
    endpoint = getattr(route, "endpoint", None)
    if not (isinstance(endpoint, type) and issubclass(endpoint, HTTPEndpoint)):
        return True
    method = str(scope.get("method", "GET"))
    if method == "HEAD" and not hasattr(endpoint, "head"):
        method = "GET"
    return hasattr(endpoint, method.lower())


def find_routes(app: Any) -> Sequence[BaseRoute] | None:
    """The routes of a Starlette/FastAPI app or router, following wrapped apps."""
    seen = 0
    while app is not None and seen < 32:
        routes = getattr(app, "routes", None)
        if isinstance(routes, list):
            return routes
        router = getattr(app, "router", None)
        router_routes = getattr(router, "routes", None)
        if isinstance(router_routes, list):
            return router_routes
        app = getattr(app, "app", None)
        seen += 1
    return None


_MOVED = frozenset({"ENFORCER", "RouteInfo", "effective_policy", "has_enforcer",
                    "iter_routes", "warn_unprotected"})


def __getattr__(name: str) -> Any:
    """Names that moved to :mod:`authguard.route_tree` (the route tree as the audit and
    OpenAPI read it) are still found here."""
    if name in _MOVED:
        from . import route_tree

        return getattr(route_tree, name)
    raise AttributeError(f"module 'authguard.routing' has no attribute {name!r}")
