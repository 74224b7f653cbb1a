"""Finding the policy of the route a request is for, before the app runs.

The middleware needs a route's policy before the router dispatches, so it matches the
request against the app's routes itself (the same ``Route.matches`` the router uses) and
caches the answer per method and path in a bounded table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope

from .policy import Policy, policy_of

__all__ = ["find_routes", "route_policy"]


def _endpoint_policy(route: BaseRoute) -> Policy | None:
    own = policy_of(route)
    if own is not None:
        return own
    endpoint = getattr(route, "endpoint", None)
    if endpoint is not None:
        found = policy_of(endpoint)
        if found is not None:
            return found
    # FastAPI: dependencies created by authguard.fastapi.require() carry a policy.
    dependant = getattr(route, "dependant", None)
    if dependant is not None:
        return _dependant_policy(dependant)
    return None


def _dependant_policy(dependant: Any) -> Policy | None:
    stack = [dependant]
    found: list[Policy] = []
    while stack:
        d = stack.pop()
        call = getattr(d, "call", None)
        if call is not None:
            p = policy_of(call)
            if p is not None:
                found.append(p)
        stack.extend(getattr(d, "dependencies", ()))
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    from .policy import AllOf  # local: only for routes with several declarations

    reqs = [p.requirement for p in found if p.requirement is not None]
    if not reqs:
        return found[0]
    return Policy(
        AllOf(*reqs),
        conceal=any(p.conceal for p in found),
        login_url=next((p.login_url for p in found if p.login_url), None),
    )


def route_policy(routes: Sequence[BaseRoute], scope: Scope) -> tuple[bool, Policy | None]:
    """Match ``scope`` against ``routes``; return (matched, innermost explicit policy)."""
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            inherited = _endpoint_policy(route) or policy_of(route.app)
            inner = getattr(route, "routes", None)
            if inner:
                matched, policy = route_policy(inner, {**scope, **child})
                if matched:
                    return True, policy or inherited
            return True, inherited
        return True, _endpoint_policy(route)
    return False, None


def find_routes(app: Any) -> Sequence[BaseRoute] | None:
    """The routes of a Starlette/FastAPI app or router, following wrapped apps."""
    seen = 0
    while app is not None and seen < 32:
        routes = getattr(app, "routes", None)
        if isinstance(routes, list):
            return routes
        router = getattr(app, "router", None)
        if router is not None and isinstance(getattr(router, "routes", None), list):
            return list(router.routes)
        app = getattr(app, "app", None)
        seen += 1
    return None


def iter_routes(routes: Iterable[BaseRoute], prefix: str = "",
                inherited: Policy | None = None) -> Iterable[tuple[str, BaseRoute, Policy | None]]:
    """Every leaf route with its full path and effective explicit policy (for audits)."""
    for route in routes:
        if isinstance(route, Mount):
            p = _endpoint_policy(route) or policy_of(route.app) or inherited
            inner = getattr(route, "routes", None) or []
            yield from iter_routes(inner, prefix + route.path, p)
            continue
        path = getattr(route, "path", "")
        yield prefix + path, route, _endpoint_policy(route) or inherited
