"""Plans: what the decision needs for a route, worked out once rather than per request.

A :class:`Plan` is derived from a route's :class:`~authguard.Policy` and the guard: the
authenticators the route accepts, its requirement as plain checks when it is made only of
the built-in identity, role and scope requirements, the form-body limit, the ``Vary``
field of its refusals. The :class:`RouteTable` maps a request key (type, method, Host,
root path, path) to the route's plan; it is the one per-request table of the middleware,
bounded, and it never remembers a request that matched no route (a route added later is
found) and is emptied when the app's route list changes length (a route inserted before
a remembered one is found too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from starlette.types import Scope

from .authenticators.base import Authenticator, capabilities
from .challenges import Challenge
from .composition import AllOf, Requirement
from .identity import Identity
from .observability.safety import route_template
from .policy import Policy
from .requirements import Anyone, Authenticated, HasRoles, HasScopes
from .routing import find_routes, get_route_path, inherited_policy, lookup, request_key

if TYPE_CHECKING:
    from .guard import AuthGuard

__all__ = ["Check", "CheckKind", "Plan", "RouteEntry", "RouteTable", "make_plan"]

_TABLE_MAX = 4096


class CheckKind(IntEnum):
    """What a plain check reads from the identity."""

    IDENTITY = 0  # an identity (of one of ``names``, when given)
    ROLES = 1
    SCOPES = 2


class Check(NamedTuple):
    """One built-in requirement, as data: ``kind`` over ``names``, all of them or ``any``."""

    kind: CheckKind
    names: tuple[str, ...]
    any: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """What a policy needs on every request, derived once.

    Attributes:
        policy: The route's policy.
        accepted: The authenticators the route accepts, in configured order.
        checks: The requirement as plain checks; ``None`` when a part of it has a check of
            its own (a permission, step-up, payment, a requirement of the app's).
        form_limit: The most of a form body read for tokens (RFC 6750 §2.2), 0 for none.
        vary: The ``Vary`` field of this route's 401/402 refusals: the request fields the
            answer depends on (RFC 9110 §12.5.5).
        missing: The challenges of a 401 without credentials: one per accepted scheme,
            with the route's ``scope`` where a scheme can name it (a Bearer authenticator
            of an OAuth protected resource: RFC 9728 §5.1, RFC 6750 §3).
        public: No authenticator runs for the route (its policy has no requirement).
    """

    policy: Policy
    accepted: tuple[Authenticator, ...]
    checks: tuple[Check, ...] | None
    form_limit: int
    vary: bytes
    missing: tuple[Challenge, ...]
    public: bool


def make_plan(policy: Policy, guard: AuthGuard) -> Plan:
    """The plan of ``policy`` under ``guard``."""
    accepted = tuple(guard.accepted(policy))
    traits = [capabilities(a) for a in accepted]
    fields = ["Authorization", "Cookie"]
    for t in traits:
        fields.extend(h for h in t.credential_headers
                      if h.lower() not in (f.lower() for f in fields))
    requirement = policy.requirement
    scopes = " ".join(policy.scopes())
    asked = {"scope": scopes} if scopes else None
    return Plan(
        policy=policy,
        accepted=accepted,
        checks=None if requirement is None else _plain_checks(requirement),
        form_limit=max((t.max_form_bytes for t in traits if t.reads_form_body), default=0),
        vary=", ".join(fields).encode("latin-1"),
        missing=tuple(a.challenge(None, asked) for a in accepted),
        public=requirement is None,
    )


def _plain_checks(requirement: Requirement) -> tuple[Check, ...] | None:
    """``requirement`` as plain checks, when every part is exactly one of the built-in
    requirements whose ``check`` only reads the identity (a subclass may override it)."""
    parts = requirement.requirements if type(requirement) is AllOf else (requirement,)
    checks: list[Check] = []
    for r in parts:
        if type(r) is Anyone:
            continue
        if type(r) is Authenticated:
            checks.append(Check(CheckKind.IDENTITY, tuple(r.accepted), False))
        elif type(r) is HasRoles:
            checks.append(Check(CheckKind.ROLES, tuple(r.roles), bool(r.any)))
        elif type(r) is HasScopes:
            checks.append(Check(CheckKind.SCOPES, tuple(r.scopes), bool(r.any)))
        else:
            return None
    return tuple(checks)


def passes(checks: tuple[Check, ...], identity: Identity | None) -> bool:
    """Whether the plain checks pass (``False`` sends the request through the
    requirement's own ``check``, which says why not)."""
    for kind, names, any_ in checks:
        if identity is None:
            return False
        if kind is CheckKind.IDENTITY:
            if names and identity.scheme not in names:
                return False
            continue
        have = identity.roles if kind is CheckKind.ROLES else identity.scopes
        if any_:
            if not any(n in have for n in names):
                return False
        elif not all(n in have for n in names):
            return False
    return True


class RouteEntry(NamedTuple):
    """A request key's answer: the route's plan, its path parameters, whether a route
    serves the request's method (the router answers 404/405 otherwise), and the route's
    path template (``/items/{item_id}``: what events and metrics name, never the path)."""

    plan: Plan
    params: Mapping[str, Any]
    serves: bool
    template: str


class RouteTable:
    """Request key → :class:`RouteEntry`, for the routes of the app the middleware wraps.

    ``owner`` is the middleware itself: when it sits inside a ``Mount`` (or a mounted
    sub-app), the policy of the mounts around it is found in the outer app once.
    """

    def __init__(self, app: Any, guard: AuthGuard, owner: Any) -> None:
        self.app = app
        self.guard = guard
        self.owner = owner
        self._entries: dict[tuple[str, str, bytes, str, str], RouteEntry] = {}
        self._plans: dict[Policy, Plan] = {}
        self._routes: list[Any] | None = None
        self._size = -1
        self._inherited: Policy | None = None
        self._outer: Any = None

    def plan(self, policy: Policy) -> Plan:
        """The plan of ``policy`` (made once per policy, as long as the route table stands)."""
        try:
            hit = self._plans.get(policy)
        except TypeError:  # a requirement of the app's that cannot be hashed
            return make_plan(policy, self.guard)
        if hit is None:
            if len(self._plans) >= _TABLE_MAX:
                self._plans.clear()
            hit = self._plans[policy] = make_plan(policy, self.guard)
        return hit

    def lookup(self, scope: Scope) -> RouteEntry:
        """The entry for ``scope``: one dictionary read, unless the route is new."""
        routes = self._routes
        if routes is not None and len(routes) != self._size:
            self.clear()
        key = request_key(scope)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._resolve(scope)
            if entry.serves:  # never remember a miss: the route may be added later
                if len(self._entries) >= _TABLE_MAX:
                    self._entries.clear()
                self._entries[key] = entry
        return entry

    def clear(self) -> None:
        """Forget every entry and plan (the route table changed)."""
        self._entries.clear()
        self._plans.clear()
        self._routes = None

    def _resolve(self, scope: Scope) -> RouteEntry:
        if self._routes is None:
            found = find_routes(self.app)
            self._routes = found if isinstance(found, list) else None
            self._size = len(found) if found is not None else -1
        # The outermost router (Starlette sets ``scope["router"]`` once, in the first
        # router a request meets; a mounted sub-app replaces ``scope["app"]``).
        outer = scope.get("router") or scope.get("app")
        if outer is not self._outer:
            self._outer = outer
            self._inherited = inherited_policy(outer, self.owner)
        # an app whose routes cannot be read: those of the app around it
        routes = self._routes if self._routes is not None else find_routes(scope.get("app"))
        found_route = lookup(routes, scope) if routes is not None else None
        explicit = params = None
        serves = routes is None  # an app whose routes cannot be read: remembered
        if found_route is not None:
            explicit, params, serves = found_route
        policy = (explicit or self._inherited or self.guard.rule_for(get_route_path(scope))
                  or self.guard.default)
        return RouteEntry(self.plan(policy), params or {}, serves,
                          route_template(scope, self.app))
