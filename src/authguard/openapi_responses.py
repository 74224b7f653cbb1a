"""The refusals an OpenAPI operation documents: which statuses, which reasons, and an
example body per reason (RFC 9457), with the ``Problem`` schema component.

Used by :func:`authguard.openapi.add_security`.
"""

from __future__ import annotations

from typing import Any

from .composition import AllOf, AnyOf, Not
from .errors import Refusal
from .guard import AuthGuard
from .policy import Policy
from .problems import PROBLEM_CONTENT_TYPE, problem_body, problem_schema
from .reasons import DEFAULT_TYPE_BASE, Reason
from .requirements import HasScopes, StepUp

__all__ = ["possible_reasons", "problem_component", "refusal_response"]

_DESCRIPTIONS = {
    400: "A malformed request (RFC 6750 §3.1: a token sent by more than one method).",
    401: "Not authenticated, or not strongly enough: see `reason` and `WWW-Authenticate`.",
    402: "Payment required: see `reason` and `payment`.",
    403: "Authenticated, but not allowed: see `reason`.",
    404: "Not found (a refusal is concealed as 404 on this route).",
    429: "Too many failed attempts: retry after `Retry-After` seconds.",
    502: "The payment provider's answer could not be read; nothing was served: retry "
         "with the same proof, do not pay again.",
    503: "A payment or authentication backend is unavailable: retry after `Retry-After`; "
         "do not pay again.",
}


def problem_component() -> dict[str, Any]:
    """The shipped JSON Schema without its ``$schema``/``$id`` and its per-status
    conditionals (``allOf`` of ``if``/``then``, which documentation tools render as
    ``any & any``): each response's examples show its statuses and reasons instead."""
    schema = problem_schema()
    for key in ("$schema", "$id", "allOf"):
        schema.pop(key, None)
    schema["title"] = "Problem"
    return schema


_EXAMPLE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _examples(status: int, reasons: list[Reason], type_base: str,
              schemes: list[str]) -> dict[str, Any]:
    """One example body per reason, each with its own status (RFC 9457 §3)."""
    out: dict[str, Any] = {}
    for reason in reasons:
        body = problem_body(Refusal(reason), instance="/example", request_id=_EXAMPLE_ID,
                            type_base=type_base)
        if status == 401 and schemes:
            body["schemes"] = schemes
        if status in (429, 503):
            body["retry_after"] = 30
        out[reason.value] = {"summary": f"{status} {reason.value}: {reason.spec.title}",
                             "value": body}
    return out


def refusal_response(status: int, reasons: list[Reason] | None = None,
                     type_base: str = DEFAULT_TYPE_BASE,
                     schemes: list[str] | None = None) -> dict[str, Any]:
    description = _DESCRIPTIONS[status]
    if status == 404:
        return {"description": description,
                "content": {"text/plain": {"schema": {"type": "string"}}}}
    if reasons is None:
        reasons = [r for r in Reason if r.status == status]
    if reasons:
        description += " Possible reasons: " + ", ".join(r.value for r in reasons) + "."
    media: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Problem"}}
    if reasons:
        media["examples"] = _examples(status, reasons, type_base, schemes or [])
    out: dict[str, Any] = {"description": description,
                           "content": {PROBLEM_CONTENT_TYPE: media}}
    if status == 401:
        out["headers"] = {"WWW-Authenticate": {
            "description": "One challenge per accepted scheme (RFC 9110 §11.6.1)",
            "schema": {"type": "string"},
        }}
    elif status == 402:
        out["headers"] = {
            "WWW-Authenticate": {"description": "A `Payment` challenge, when the route takes "
                                                "the IETF Payment scheme",
                                 "schema": {"type": "string"}},
            "PAYMENT-REQUIRED": {"description": "x402 v2 payment requirements (base64 JSON), "
                                                "when the route takes x402",
                                 "schema": {"type": "string"}},
        }
    elif status in (429, 503):
        out["headers"] = {"Retry-After": {"description": "Seconds to wait before retrying",
                                          "schema": {"type": "integer"}}}
    return out


_ALWAYS_401 = [Reason.CREDENTIALS_MISSING, Reason.CREDENTIALS_MALFORMED,
               Reason.CREDENTIALS_INVALID]
_BEARER_401 = [Reason.TOKEN_WRONG_AUDIENCE, Reason.TOKEN_EXPIRED, Reason.TOKEN_NOT_YET_VALID,
               Reason.CREDENTIALS_REVOKED]
_DPOP_401 = [Reason("dpop_proof_missing"), Reason("invalid_dpop_proof"),
             Reason("dpop_proof_replayed"), Reason("use_dpop_nonce")]
_COOKIE_401 = [Reason.SESSION_EXPIRED, Reason.SESSION_INVALID, Reason.CREDENTIALS_REVOKED]


def possible_reasons(status: int, policy: Policy, kinds: set[str], guard: AuthGuard,
                     unsafe_cookie: bool) -> list[Reason] | None:
    """The reasons a refusal with ``status`` can really have on a route with ``policy``
    whose accepted schemes are ``kinds`` (lower case); ``None``: every reason of it."""
    needs = policy.requirements()
    if status == 401:
        out = list(_ALWAYS_401)
        if kinds & {"bearer", "dpop"}:
            out += _BEARER_401
        if "dpop" in kinds:
            out += _DPOP_401
        if "cookie" in kinds:
            out += [r for r in _COOKIE_401 if r not in out]
        if any(isinstance(r, StepUp) for r in needs):
            out.append(Reason.STEP_UP_REQUIRED)
        return [r for r in Reason if r in out]  # in the table's order
    if status == 403:
        out = []
        if any(isinstance(r, HasScopes) for r in needs):
            out.append(Reason.INSUFFICIENT_SCOPE)
        if any(r.order == 2 and not isinstance(r, HasScopes | AllOf | AnyOf | Not)
               for r in needs):
            out.append(Reason.FORBIDDEN)  # roles, permissions
        if unsafe_cookie:
            out.append(Reason.ORIGIN_REJECTED)
        if guard.network is not None and guard.network.active:
            out.append(Reason.NETWORK_BLOCKED)
        if guard.require_https:
            out.append(Reason.INSECURE_TRANSPORT)
        return out or None
    if status == 400:
        return [Reason.INVALID_REQUEST]
    if status == 503 and not policy.statuses() & {402, 502}:
        return [Reason.AUTH_UNAVAILABLE]  # no payment provider on this route
    return None
