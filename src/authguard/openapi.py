"""OpenAPI 3.1: security schemes, per-operation security requirements and refusals.

:func:`add_security` completes a FastAPI-generated OpenAPI document:

* ``components.securitySchemes``: one entry per configured authenticator, keyed by its
  scheme name — ``http``/``basic`` (RFC 7617), ``http``/``bearer`` with ``bearerFormat:
  JWT`` (RFC 6750), ``apiKey`` in a header, query parameter or cookie (one entry per
  location), and the session cookie as an ``apiKey`` in a cookie (OpenAPI 3.1 §4.8.27).
* each operation's ``security``: one alternative per scheme the route accepts, the
  policy's scopes on Bearer; an empty alternative ``{}`` when credentials are optional.
* each operation's 401/402/403 answers (404 when 403 is concealed) with the
  ``application/problem+json`` body, ``components.schemas.Problem`` (RFC 9457).
"""

from __future__ import annotations

from typing import Any

from .authenticators.apikey import APIKeyAuthenticator, StaticAPIKeys
from .authenticators.base import Authenticator, capabilities
from .authenticators.basic import BasicAuthenticator, StaticPasswords
from .authenticators.bearer import BearerAuthenticator
from .authenticators.dpop import DPoPAuthenticator
from .authenticators.dpop_nonce import DPoPNonces
from .authenticators.keys import JWTKey, StaticKeys
from .authenticators.session import UNSAFE_METHODS, SessionAuthenticator
from .composition import AllOf, AnyOf, Requirement
from .guard import AuthGuard
from .openapi_responses import possible_reasons, problem_component, refusal_response
from .policy import Policy
from .requirements import HasRoles, HasScopes, StepUp
from .route_tree import effective_policy, iter_routes
from .routing import find_routes

__all__ = ["add_password_flow", "add_security", "security_schemes"]



def _schemes_of(a: Authenticator) -> list[tuple[str, dict[str, Any]]]:
    """The OpenAPI security schemes for one authenticator: (name, scheme object)."""
    scheme = a.scheme
    realm = getattr(a, "realm", None)
    note = f" (realm `{realm}`)" if realm else ""
    kind = scheme.lower()
    if kind == "basic":
        return [(scheme, {"type": "http", "scheme": "basic",
                          "description": "HTTP Basic (RFC 7617)" + note})]
    if kind == "bearer":
        return [(scheme, {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                          "description": "Bearer token (RFC 6750), a JWT" + note})]
    if kind == "dpop":  # RFC 9449 §7.1: the "DPoP" scheme of the IANA registry
        algs = " ".join(getattr(a, "algorithms", ()))
        return [(scheme, {"type": "http", "scheme": "DPoP", "bearerFormat": "JWT",
                          "description": "DPoP-bound access token (RFC 9449), sent as "
                          "`Authorization: DPoP <token>` with a `DPoP` proof header signed "
                          "by the token's key" + (f" (proof algorithms: {algs})" if algs
                                                  else "") + note})]
    if kind == "apikey":
        out: list[tuple[str, dict[str, Any]]] = []
        for where, attr, suffix in (("header", "header", ""), ("query", "query_param", "Query"),
                                    ("cookie", "cookie", "Cookie")):
            name = getattr(a, attr, None)
            if name:
                out.append((scheme + suffix, {"type": "apiKey", "in": where, "name": name,
                                              "description": "API key" + note}))
        return out
    if kind == "cookie":
        name = next((getattr(a, n) for n in ("cookie_name", "cookie", "name")
                     if isinstance(getattr(a, n, None), str)), "session")
        return [(scheme, {"type": "apiKey", "in": "cookie", "name": name,
                          "description": "Session cookie, set by the login endpoint" + note})]
    return [(scheme, {"type": "http", "scheme": kind})]


def security_schemes(guard: AuthGuard) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Security schemes per authguard scheme name (lower case) for ``guard``."""
    return {a.scheme.lower(): _schemes_of(a) for a in guard.authenticators}


def add_security(schema: dict[str, Any], app: Any, guard: AuthGuard) -> dict[str, Any]:
    """Complete ``schema`` (an OpenAPI document generated for ``app``) in place."""
    by_scheme = security_schemes(guard)
    components = schema.setdefault("components", {})
    sec = components.setdefault("securitySchemes", {})
    for entries in by_scheme.values():
        for name, obj in entries:
            sec.setdefault(name, obj)
    components.setdefault("schemas", {}).setdefault("Problem", problem_component())
    paths = schema.get("paths", {})
    for info in iter_routes(find_routes(app) or []):
        path_format = getattr(info.route, "path_format", None)
        if path_format is None or info.path != getattr(info.route, "path", None):
            continue  # not an operation of this document (e.g. inside a mounted app)
        ops = paths.get(path_format)
        if not ops:
            continue
        policy, _ = effective_policy(info, guard)
        if policy.public:
            continue
        scopes = policy.scopes()
        statuses = set(policy.statuses())
        if _needs_identity(info.route):  # e.g. ``who: CurrentIdentity``
            statuses.add(401)
        alternatives: list[dict[str, list[str]]] = [] if 401 in statuses else [{}]
        # OpenAPI 3.1 §4.8.30: each alternative must be enough on its own, so schemes
        # whose identities cannot meet the policy (no scopes, no acr) are not listed.
        accepted = [a for a in guard.accepted(policy) if _can_satisfy(a, policy)]
        for a in accepted:
            for name, _obj in by_scheme[a.scheme.lower()]:
                alternatives.append({name: scopes if a.scheme.lower() in ("bearer", "dpop")
                                     else []})
        kinds = {a.scheme.lower() for a in guard.accepted(policy)}
        # Credentials that are sent are checked even where none are required: 401.
        statuses.add(401)
        if kinds & {"bearer", "dpop"}:
            statuses.add(400)  # RFC 6750 §3.1 invalid_request
        if guard.brute_force is not None:
            statuses.add(429)
        if _may_be_unavailable(guard, guard.accepted(policy)):
            statuses.add(503)  # auth_unavailable: a backend that cannot be reached
        if guard.require_https or (guard.network is not None and guard.network.active):
            statuses.add(403)
        for method in info.methods:
            op = ops.get(method.lower())
            if not isinstance(op, dict):
                continue
            op.setdefault("security", alternatives)
            responses = op.setdefault("responses", {})
            unsafe_cookie = ("cookie" in kinds and method.upper() in UNSAFE_METHODS
                             and not policy.conceal)
            here = statuses | {403} if unsafe_cookie else statuses
            for status in sorted(here):
                reasons = possible_reasons(status, policy, kinds, guard, unsafe_cookie)
                responses.setdefault(str(status), refusal_response(
                    status, reasons, guard.type_base, [a.scheme for a in guard.accepted(policy)]))
            if policy.describe():
                op.setdefault("x-authguard-policy", policy.describe())
    return schema


def add_password_flow(schema: dict[str, Any], *, token_url: str, scopes: dict[str, str],
                      bearer: str = "Bearer", name: str = "OAuth2") -> dict[str, Any]:
    """Declare a token endpoint as an OAuth2 password flow (OpenAPI 3.1 §4.8.29), in place.

    Wherever an operation accepts the Bearer scheme ``bearer``, the flow ``name`` is added
    as an alternative with the same scopes: Swagger UI's *Authorize* then asks for a user
    name and password, posts them to ``token_url`` (RFC 6749 §4.3) and sends the token.
    """
    sec = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    sec[name] = {"type": "oauth2", "description": "A Bearer token from the token endpoint",
                 "flows": {"password": {"tokenUrl": token_url, "scopes": dict(scopes)}}}
    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            alternatives = op.get("security") if isinstance(op, dict) else None
            if not alternatives or any(name in alt for alt in alternatives):
                continue
            out: list[dict[str, list[str]]] = []
            for alt in alternatives:
                out.append(alt)
                if bearer in alt:
                    out.append({name: alt[bearer]})
            op["security"] = out
    return schema


def _can_satisfy(authenticator: Authenticator, policy: Policy) -> bool:
    """Whether identities from ``authenticator`` can meet the policy's requirement, by what
    they can carry (:attr:`Capabilities.identity_claims`: a password list carries roles,
    never scopes or an ``acr``; ``None``: anything)."""
    claims = capabilities(authenticator).identity_claims
    return claims is None or policy.requirement is None or _meets(policy.requirement, claims)


def _meets(requirement: Requirement, claims: frozenset[str]) -> bool:
    """Whether an identity carrying only ``claims`` can pass ``requirement``."""
    if isinstance(requirement, AllOf):
        return all(_meets(r, claims) for r in requirement.requirements)
    if isinstance(requirement, AnyOf):
        return any(_meets(r, claims) for r in requirement.requirements)
    if isinstance(requirement, HasScopes):
        return "scopes" in claims or not requirement.scopes
    if isinstance(requirement, HasRoles):
        return "roles" in claims or not requirement.roles
    if isinstance(requirement, StepUp):
        return ((not requirement.acr_values or "acr" in claims)
                and (requirement.max_age is None or "auth_time" in claims))
    return True  # Not, permissions, ...: not decidable from the claims alone


_BACKENDS = ("verifier", "store", "keys", "revocations", "replays", "tokens", "nonces")
_LOCAL: tuple[type, ...] = (StaticPasswords, StaticAPIKeys, StaticKeys, JWTKey, DPoPNonces)
_OWN: tuple[type, ...] = (BasicAuthenticator, BearerAuthenticator, APIKeyAuthenticator,
                          SessionAuthenticator, DPoPAuthenticator)


def _backend_may_fail(obj: object) -> bool:
    """Whether ``obj`` (an authenticator or one of its backends) may be unreachable: in
    memory, never; authguard's own authenticators, if one of their backends may; anything
    else (Redis, JWKS, introspection, a store or verifier of your own) may."""
    if obj is None or isinstance(obj, _LOCAL) or type(obj).__module__ == "authguard.stores.memory":
        return False
    if isinstance(obj, _OWN):
        return any(_backend_may_fail(getattr(obj, name, None)) for name in _BACKENDS)
    return True


def _may_be_unavailable(guard: AuthGuard, accepted: list[Authenticator]) -> bool:
    """Whether a request to a route accepting ``accepted`` may be answered 503
    ``auth_unavailable`` (an authenticator's backend, or the brute-force guard's store)."""
    bf = guard.brute_force
    if bf is not None and not bf.fail_open and _backend_may_fail(bf.store):
        return True
    return any(_backend_may_fail(a) for a in accepted)


NEEDS_IDENTITY = "__authguard_needs_identity__"


def _needs_identity(route: Any) -> bool:
    """Whether a dependency of the route (``current_identity``) refuses anonymous calls."""
    stack = [getattr(route, "dependant", None)]
    while stack:
        d = stack.pop()
        if d is None:
            continue
        if getattr(getattr(d, "call", None), NEEDS_IDENTITY, False):
            return True
        stack.extend(getattr(d, "dependencies", ()))
    return False
