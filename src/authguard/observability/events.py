"""One structured event per refusal (and, opt-in, per allowed request).

An :class:`AuthEvent` has stable, documented fields (``docs/observability.md``). Every
value that came from the request is made safe by :func:`~.safety.safe_text`; the route is
its path template. Tokens, passwords, cookies and keys are never read into an event, nor
any hash of them: for a JWT only its issuer, ``kid``, audience and client id are read
(without verifying it, as the token did not pass), and the clock skew its ``exp``/``nbf``
/``iat`` show.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import jwt
from starlette.types import Scope

from ..identity import Identity
from ..net import NetworkPolicy, client_address
from ..reasons import Reason
from .safety import optional_text, route_template

__all__ = ["AuthEvent", "Finding", "TokenFacts", "token_facts", "via_proxy"]

Kind = Literal["refused", "allowed"]
# Longest Authorization value decoded for an event (a refusal may be for a longer one).
_MAX_TOKEN = 8192
# Reasons whose token is read for the event (issuer, kid, aud, client id, skew).
_TOKEN_SCHEMES = (b"bearer ", b"dpop ")


@dataclass(frozen=True, slots=True)
class TokenFacts:
    """What an event may say about a JWT: never the token, never a hash of it.

    Attributes:
        issuer: ``iss``.
        kid: The header's ``kid``.
        audience: ``aud`` (several joined by spaces).
        client_id: ``azp`` or ``client_id``: the OAuth client the token was minted for.
        skew_seconds: For a token not yet valid, how far ``nbf``/``iat`` lie in the
            server's future; for an expired one, how long ago ``exp`` passed. ``None``
            otherwise.
    """

    issuer: str | None = None
    kid: str | None = None
    audience: str | None = None
    client_id: str | None = None
    skew_seconds: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthEvent:
    """One decision, as logged and handed to the ``on_event`` hook.

    Attributes:
        event: ``"refused"`` or ``"allowed"``.
        time: When the decision was taken (the guard's clock, seconds since the epoch).
        reason: The refusal's reason (``None`` when allowed).
        status: The refusal's status (``None`` when allowed).
        scheme: The scheme of the credentials that decided (``None`` if none).
        route: The route's path template, or ``"<unmatched>"``; never the raw path.
        method: The request method (``WEBSOCKET`` for a websocket).
        client: The client address as the trusted-proxy rules see it.
        via: The address of the peer that forwarded the request, when it came with
            ``Forwarded``/``X-Forwarded-For`` (a proxy); ``None`` for a direct request.
        request_id: The request id the refusal carries.
        decision_ms: Time taken by the decision, in milliseconds (``None`` when the app
            raised the refusal).
        issuer, kid, audience, client_id, skew_seconds: See :class:`TokenFacts`.
    """

    event: Kind
    time: float
    reason: str | None = None
    status: int | None = None
    scheme: str | None = None
    route: str | None = None
    method: str | None = None
    client: str | None = None
    via: str | None = None
    request_id: str | None = None
    decision_ms: float | None = None
    issuer: str | None = None
    kid: str | None = None
    audience: str | None = None
    client_id: str | None = None
    skew_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The event's fields (what goes into the log record's ``authguard`` member)."""
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A systemic cause the detector found, raised once while it lasts.

    Attributes:
        finding: Its name (``clock_skew``, ``authorization_stripped``,
            ``wrong_audience``, ``unknown_kid``, ``auth_unavailable``,
            ``credential_stuffing``).
        key: What it is concentrated on (``client 10.0.0.7``, ``issuer https://…``).
        time: When it crossed its threshold.
        count: Refusals that make it up, within the window.
        window_seconds: The detector's window.
        message: What was seen, with the measured numbers.
        fix: What fixes it (the troubleshooting page's words).
        measured: The numbers, by name (e.g. ``skew_seconds``).
    """

    finding: str
    key: str
    time: float
    count: int
    window_seconds: float
    message: str
    fix: str
    measured: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The finding's fields, with ``event: "finding"``."""
        out: dict[str, Any] = {"event": "finding"}
        out.update(asdict(self))
        out["measured"] = dict(self.measured)
        return out


def via_proxy(scope: Scope) -> str | None:
    """The direct peer's address when the request carries forwarding headers."""
    for name, _ in scope.get("headers", ()):
        if name in (b"x-forwarded-for", b"forwarded"):
            peer = scope.get("client")
            return optional_text(peer[0] if peer else None, 64)
    return None


def token_facts(scope: Scope, reason: Reason | None, now: float) -> TokenFacts:
    """What the request's Bearer/DPoP JWT says, read without verifying it (it may be
    forged: its values are escaped and bounded like any request data)."""
    token: bytes | None = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization" and len(value) <= _MAX_TOKEN:
            head = value[:6].lower()
            if head.startswith(_TOKEN_SCHEMES):
                token = value.split(b" ", 1)[1].strip()
            break
    if not token or token.count(b".") != 2:
        return TokenFacts()
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except (jwt.InvalidTokenError, ValueError, TypeError):
        return TokenFacts()
    aud = claims.get("aud")
    if isinstance(aud, list):
        aud = " ".join(str(a) for a in aud[:8])
    return TokenFacts(
        issuer=_claim(claims.get("iss")),
        kid=_claim(header.get("kid")),
        audience=_claim(aud),
        client_id=_claim(claims.get("azp") or claims.get("client_id")),
        skew_seconds=_skew(claims, reason, now),
    )


def _claim(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return optional_text(value, 128)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _skew(claims: Mapping[str, Any], reason: Reason | None, now: float) -> float | None:
    if reason is Reason.TOKEN_NOT_YET_VALID:
        ahead = [t for t in (_number(claims.get("nbf")), _number(claims.get("iat")))
                 if t is not None]
        return round(max(ahead) - now, 3) if ahead else None
    if reason is Reason.TOKEN_EXPIRED:
        exp = _number(claims.get("exp"))
        return round(now - exp, 3) if exp is not None else None
    return None


def build_event(kind: Kind, scope: Scope, *, now: float, network: NetworkPolicy | None,
                reason: Reason | None = None, status: int | None = None,
                scheme: str | None = None, request_id: str | None = None,
                decision_ms: float | None = None, app: Any = None,
                identity: Identity | None = None) -> AuthEvent:
    """The event of one decision on ``scope``."""
    facts = token_facts(scope, reason, now) if reason is not None else TokenFacts()
    if identity is not None:
        scheme = identity.scheme
        claims = identity.claims
        facts = TokenFacts(issuer=_claim(claims.get("iss")), audience=facts.audience,
                           client_id=_claim(claims.get("azp") or claims.get("client_id")))
    return AuthEvent(
        event=kind, time=now, reason=reason.value if reason is not None else None,
        status=status, scheme=optional_text(scheme, 32), route=route_template(scope, app),
        method=optional_text(scope.get("method", "WEBSOCKET"), 16),
        client=optional_text(client_address(scope, network), 64), via=via_proxy(scope),
        request_id=optional_text(request_id, 128),
        decision_ms=None if decision_ms is None else round(decision_ms, 3),
        issuer=facts.issuer, kid=facts.kid, audience=facts.audience,
        client_id=facts.client_id, skew_seconds=facts.skew_seconds,
    )


def median(values: list[float]) -> float:
    """The median of ``values`` (rounded to the millisecond)."""
    return round(statistics.median(values), 3)
