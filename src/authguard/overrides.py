"""FastAPI's ``app.dependency_overrides`` on authguard's dependencies, honoured by the
middleware.

The middleware decides before FastAPI resolves a single dependency, so an override alone
would never be reached: the request would be refused first. When the app has overrides,
the middleware asks :func:`overridden` whether one of them decides this request:

* an override of a dependency made by :func:`authguard.fastapi.require` that the matched
  route uses replaces that check: the route runs with the identity the override returns;
* an override of :func:`~authguard.fastapi.current_identity` or
  :func:`~authguard.fastapi.optional_identity` replaces authentication: the request is
  taken as made by the identity the override returns, and the route's requirements still
  apply to it (roles, scopes, step-up), as Django REST framework's ``force_authenticate``.

Overrides are called with no arguments (``lambda: Identity(...)``, sync or async): the
middleware runs before FastAPI could resolve an override's own parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import HTTPConnection
from starlette.routing import Match
from starlette.types import Scope

from .errors import ConfigurationError, Refusal
from .identity import Identity
from .openapi import NEEDS_IDENTITY
from .policy import Context, Policy, policy_of
from .routing import find_routes

__all__ = ["has_overrides", "overridden"]

IDENTITY_DEPENDENCY = "__authguard_identity_dependency__"
"""Set on ``current_identity`` and ``optional_identity``: overriding them forces an identity."""


def has_overrides(scope: Scope) -> bool:
    """Whether the app serving ``scope`` has dependency overrides (one attribute read)."""
    return bool(getattr(scope.get("app"), "dependency_overrides", None))


def _route_calls(scope: Scope) -> list[Callable[..., Any]]:
    """The dependency callables of the route ``scope`` matches (FastAPI routes only)."""
    for route in find_routes(scope.get("app")) or ():
        match, _ = route.matches(scope)
        if match is not Match.FULL:
            continue
        calls: list[Callable[..., Any]] = []
        stack = [getattr(route, "dependant", None)]
        while stack:
            dependant = stack.pop()
            if dependant is None:
                continue
            call = getattr(dependant, "call", None)
            if call is not None:
                calls.append(call)
            stack.extend(getattr(dependant, "dependencies", ()))
        return calls
    return []


async def _call(override: Callable[..., Any], name: str) -> Identity | None:
    """The identity an override returns; a clear error when it cannot be used here."""
    try:
        required = [p for p in inspect.signature(override).parameters.values()
                    if p.default is p.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    except (TypeError, ValueError):
        required = []
    if required or inspect.isgeneratorfunction(override) or inspect.isasyncgenfunction(
            override):
        raise ConfigurationError(
            f"dependency_overrides[{name}]: authguard calls this override before FastAPI "
            "runs, with no arguments: give a plain function such as "
            "lambda: Identity(subject='alice', scheme='Bearer')")
    result = override()
    if inspect.isawaitable(result):
        result = await result
    if result is not None and not isinstance(result, Identity):
        raise ConfigurationError(
            f"dependency_overrides[{name}]: the override returned {type(result).__name__}, "
            "not an authguard.Identity (or None)")
    return result


async def overridden(conn: HTTPConnection, policy: Policy, clock: Callable[[], float]
                     ) -> tuple[Identity | None, Refusal | None] | None:
    """The decision an override makes for this request, or ``None`` when none applies.

    Returns ``(identity, None)`` or ``(None, refusal)`` like the middleware's own decision.
    """
    overrides: Mapping[Any, Callable[..., Any]] = conn.scope["app"].dependency_overrides
    calls = _route_calls(conn.scope)
    for call in calls:
        if call in overrides and policy_of(call) is not None:
            return await _call(overrides[call], getattr(call, "__name__", "require(...)")), None
    forcing = [d for d in overrides if getattr(d, IDENTITY_DEPENDENCY, False)]
    if not forcing:
        return None
    # the one the route uses; else optional_identity's (current_identity's may refuse)
    used = [d for d in forcing if d in calls]
    dependency = used[0] if used else min(
        forcing, key=lambda d: bool(getattr(d, NEEDS_IDENTITY, False)))
    identity = await _call(overrides[dependency], dependency.__name__)
    requirement = policy.requirement
    refusal = None if requirement is None else await requirement.check(
        Context(conn=conn, identity=identity, now=clock()))
    return (None, refusal) if refusal is not None else (identity, None)
