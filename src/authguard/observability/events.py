"""One structured event per refusal (and, opt-in, per allowed request).

An :class:`AuthEvent` has stable, documented fields (``docs/observability.md``). Every
value that came from the request is made safe by :func:`~.safety.safe_text`; the route is
its path template. Tokens, passwords, cookies and keys are never put into an event, nor
any hash of them (see :mod:`~.tokens` for what is read from a JWT).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from starlette.types import Scope

from ..challenges import offered_scheme_word
from ..identity import Identity
from ..net import NetworkPolicy, client_address
from ..reasons import Reason
from .safety import optional_text, scope_route
from .tokens import TokenFacts, claim_text, token_facts

__all__ = ["AuthEvent", "Finding", "build_event", "offered_scheme", "via_proxy"]

Kind = Literal["refused", "allowed"]


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
        issuer, kid, audience, client_id, skew_seconds, audience_accepted, kid_known:
            What the request's JWT says (see :class:`~.tokens.TokenFacts`); ``None``
            without one.
        offered_scheme: For ``credentials_missing``, the scheme word of the
            ``Authorization`` field the request carried (a scheme the route does not
            accept, e.g. ``Negotiate``), as the problem body names it; ``None`` when it
            carried none. Never the credentials.
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
    audience_accepted: bool | None = None
    kid_known: bool | None = None
    offered_scheme: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The event's fields (what goes into the log record's ``authguard`` member)."""
        return {name: getattr(self, name) for name in _EVENT_FIELDS}


_EVENT_FIELDS = tuple(f.name for f in fields(AuthEvent))


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


def offered_scheme(scope: Scope) -> str | None:
    """The scheme word of the request's ``Authorization`` field, if it may be named
    (:func:`~authguard.challenges.offered_scheme_word`)."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return offered_scheme_word(value)
    return None


def via_proxy(scope: Scope) -> str | None:
    """The direct peer's address when the request carries forwarding headers."""
    for name, _ in scope.get("headers", ()):
        if name in (b"x-forwarded-for", b"forwarded"):
            peer = scope.get("client")
            return optional_text(peer[0] if peer else None, 64)
    return None


def build_event(kind: Kind, scope: Scope, *, now: float, network: NetworkPolicy | None,
                reason: Reason | None = None, status: int | None = None,
                scheme: str | None = None, request_id: str | None = None,
                decision_ms: float | None = None, app: Any = None,
                identity: Identity | None = None,
                authenticators: Iterable[Any] = ()) -> AuthEvent:
    """The event of one decision on ``scope``."""
    facts = (token_facts(scope, reason, now, authenticators) if reason is not None
             else TokenFacts())
    if identity is not None:  # verified claims: nothing to read from the token
        scheme = identity.scheme
        claims = identity.claims
        facts = TokenFacts(issuer=claim_text(claims.get("iss")),
                           client_id=claim_text(claims.get("azp") or claims.get("client_id")))
    return AuthEvent(
        event=kind, time=now, reason=reason.value if reason is not None else None,
        status=status, scheme=optional_text(scheme, 32), route=scope_route(scope, app),
        method=optional_text(scope.get("method", "WEBSOCKET"), 16),
        client=optional_text(client_address(scope, network), 64), via=via_proxy(scope),
        request_id=optional_text(request_id, 128),
        decision_ms=None if decision_ms is None else round(decision_ms, 3),
        issuer=facts.issuer, kid=facts.kid, audience=facts.audience,
        client_id=facts.client_id, skew_seconds=facts.skew_seconds,
        audience_accepted=facts.audience_accepted, kid_known=facts.kid_known,
        offered_scheme=(offered_scheme(scope) if reason is Reason.CREDENTIALS_MISSING
                        else None),
    )


def median(values: list[float]) -> float:
    """The median of ``values`` (rounded to the millisecond)."""
    return round(statistics.median(values), 3)
