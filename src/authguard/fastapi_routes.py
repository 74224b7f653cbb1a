"""The one place authguard reads FastAPI internals: lazily included routers, and the
``Security`` scopes of a dependency.

FastAPI (≥ 0.140) includes routers lazily: ``app.include_router`` adds one router object
whose effective routes (prefix and include-level dependencies merged) are built on
demand. There is no public API to read them, so these three functions read its
``effective_route_contexts()`` and ``_match(scope)``, and nothing else in authguard does.
Apps on older FastAPI (the ``fastapi`` extra allows 0.115) have plain routes and never
reach this code; a FastAPI that changes these internals fails the FastAPI tests here,
not quietly in production (:func:`is_included_router` then answers ``False`` and the
routes are read as plain ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.routing import Match
from starlette.types import Scope

__all__ = ["included_contexts", "is_included_router", "match_included", "oauth_scopes"]


def is_included_router(route: Any) -> bool:
    """Whether ``route`` is a lazily included FastAPI router."""
    return hasattr(route, "effective_route_contexts") and hasattr(route, "_match")


def included_contexts(route: Any) -> Iterable[tuple[Any, Any]]:
    """(route context, its Starlette route or ``None``) for each effective route."""
    for ctx in route.effective_route_contexts():
        yield ctx, ctx.starlette_route


def match_included(route: Any, scope: Scope) -> tuple[Match, dict[str, Any], Any, Any]:
    """(match, child scope, the inner router or route, its context) for ``scope``."""
    match, child, inner, ctx = route._match(scope)
    return match, child, inner, ctx


def oauth_scopes(dependant: Any) -> list[str]:
    """The ``Security(..., scopes=[...])`` scopes that apply to a dependency: its parents'
    and its own (newer FastAPI keeps them apart; FastAPI 0.115 keeps them together in
    ``security_scopes``)."""
    if hasattr(dependant, "parent_oauth_scopes"):
        return [*(dependant.parent_oauth_scopes or []), *(dependant.own_oauth_scopes or [])]
    return list(getattr(dependant, "security_scopes", None) or [])
