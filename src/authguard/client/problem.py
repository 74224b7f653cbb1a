"""Reading a refusal on the client side: an RFC 9457 problem body plus its headers.

:class:`Problem` is built from what any HTTP client has — a status, the header field lines
and the body — so it works with authguard servers (``application/problem+json`` with a
``reason``) and with servers that send a bare ``401`` and a ``WWW-Authenticate`` field.
Nothing here raises on bad input from the server: an unreadable body or a challenge that
does not follow RFC 9110 is recorded, never thrown.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from ..challenges import Challenge, ChallengeParseError, parse_www_authenticate
from ..reasons import Reason

__all__ = ["Problem", "ReasonSource", "parse_retry_after"]

ReasonSource = Literal["body", "challenge", "status"]
"""Where :attr:`Problem.reason` came from: the server's problem body, its Bearer challenge's
``error`` parameter (RFC 6750 §3.1, RFC 9470), or the status code alone."""

_MAX_TEXT = 500  # characters of a non-JSON body kept as the detail
# A refusal's body is small; a larger one is not parsed as JSON (nor a larger x402 header).
MAX_JSON_BODY = 256 * 1024
_MAX_PAYMENT_HEADER = 64 * 1024
_MAX_DEPTH = 64  # nesting levels of a JSON body that are read; deeper: not read at all
MAX_DELAY = 366 * 24 * 3600.0
"""The longest wait (seconds) a ``Retry-After`` or ``retry_after`` is read as: a larger one is
clamped to it (a server asking to wait longer than a year means "do not retry")."""
_REASON_CODES = frozenset(r.value for r in Reason)
_DIGITS = re.compile(r"[0-9]+")  # ASCII digits only: int() also takes "²" and "٣"
_SCHEME_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._~+-]{0,31}")  # the server's offered_scheme


def _digits(value: str) -> float | None:
    """``value`` (``1*DIGIT``, RFC 9110 §5.6.1) as a number clamped to :data:`MAX_DELAY`."""
    if not _DIGITS.fullmatch(value):
        return None
    # more than ten digits is more than MAX_DELAY; int() of thousands of digits would raise
    return MAX_DELAY if len(value.lstrip("0")) > 10 else min(float(int(value)), MAX_DELAY)
_STATUS_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    402: "Payment required",
    403: "Forbidden",
    407: "Proxy authentication required",
    429: "Too many requests",
    503: "Service unavailable",
}


def _http_date(value: str) -> float | None:
    """An HTTP-date (RFC 9110 §5.6.7, in any of its three forms) as POSIX seconds.

    Every form is GMT: the asctime form carries no zone and is read as UTC, not local time.
    """
    if not value.isascii() or len(value) > 64:
        return None
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        stamp = when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    return stamp if math.isfinite(stamp) else None


def _seconds(value: Any) -> float | None:
    """A non-negative, finite number of seconds from a JSON number (clamped), or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return float(min(max(value, 0), int(MAX_DELAY)))
    if math.isnan(value):
        return None
    return min(max(value, 0.0), MAX_DELAY)


def _non_negative_int(value: Any) -> int | None:
    """An ``int`` from a JSON integer or a string of ASCII digits (clamped), or ``None``."""
    if isinstance(value, str):
        seconds = _digits(value.strip())
        return int(seconds) if seconds is not None else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return min(value, int(MAX_DELAY))
    return None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (RFC 9110 §10.2.3).

    Accepts ``delay-seconds`` (ASCII digits) and an ``HTTP-date`` (relative to ``now``,
    default the local clock). Returns ``None`` for a missing or unreadable value, else a
    number from 0 to :data:`MAX_DELAY`. Never raises.
    """
    if value is None:
        return None
    value = value.strip()
    seconds = _digits(value)
    if seconds is not None:
        return seconds
    when = _http_date(value)
    if when is None:
        return None
    return min(max(0.0, when - (time.time() if now is None else now)), MAX_DELAY)


def _pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(k).lower(), str(v)) for k, v in items]


def _bearer_reason(challenges: Sequence[Challenge]) -> Reason | None:
    bearer = next((c for c in challenges if c.scheme.lower() in ("bearer", "dpop")
                   and "error" in c.params), None)
    if bearer is None:
        return None
    error = bearer.params["error"]
    description = bearer.params.get("error_description", "").lower()
    if error == "invalid_token":
        if "expired" in description:
            return Reason.TOKEN_EXPIRED
        if "revoked" in description:
            return Reason.CREDENTIALS_REVOKED
        if "audience" in description or "issuer" in description:
            return Reason.TOKEN_WRONG_AUDIENCE
        return Reason.CREDENTIALS_INVALID
    return {
        "insufficient_scope": Reason.INSUFFICIENT_SCOPE,
        "insufficient_user_authentication": Reason.STEP_UP_REQUIRED,
        "invalid_request": Reason.INVALID_REQUEST,
        "invalid_dpop_proof": Reason.DPOP_PROOF_INVALID,  # RFC 9449 §7.1
        "use_dpop_nonce": Reason.DPOP_NONCE_REQUIRED,
    }.get(error)


def _infer(status: int, challenges: Sequence[Challenge],
           sent_credentials: bool | None) -> tuple[str | None, ReasonSource | None]:
    from_challenge = _bearer_reason(challenges)
    if from_challenge is not None and from_challenge.status == status:
        return from_challenge.value, "challenge"
    if status == 401:
        if sent_credentials is None:
            return None, None
        reason = Reason.CREDENTIALS_INVALID if sent_credentials else Reason.CREDENTIALS_MISSING
        return reason.value, "status"
    if status == 402:
        return Reason.PAYMENT_REQUIRED.value, "status"
    if status == 403:
        return Reason.FORBIDDEN.value, "status"
    return None, None


def _shallow(data: Any, limit: int = _MAX_DEPTH) -> bool:
    """Whether ``data`` nests at most ``limit`` levels (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item \
            if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def _json_object(text: str | bytes) -> dict[str, Any] | None:
    """``text`` as a JSON object, or ``None``: invalid, not an object, or nested too deep."""
    try:
        loaded = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: '[[[[…' deeper than the stack
        return None
    return loaded if isinstance(loaded, dict) and _shallow(loaded) else None


def _decode_payment_header(value: str | None) -> dict[str, Any] | None:
    """The x402 ``PAYMENT-REQUIRED`` header: base64 of a JSON object, or ``None``."""
    if not value or len(value) > _MAX_PAYMENT_HEADER:
        return None
    try:
        raw = base64.b64decode(value.strip() + "==", validate=False)
    except (binascii.Error, ValueError):
        return None
    return _json_object(raw)


@dataclass(frozen=True, slots=True)
class Problem:
    """A refusal as the client sees it.

    Build one with :meth:`from_response` (an ``httpx.Response``) or :meth:`parse` (status,
    headers and body from any client).

    Attributes:
        status: The HTTP status code.
        reason: The stable reason code (``"token_expired"`` …): from the body when the server
            is authguard, else inferred from a Bearer ``error`` or the status, else ``None``.
            It may be a code this version does not know; compare with :class:`Reason` values.
        reason_source: Where ``reason`` came from (``"body"``, ``"challenge"``, ``"status"``).
        type: The problem ``type`` URI (``"about:blank"`` when the server sent none).
        title: A short summary: the body's ``title``, else one for the status.
        detail: The body's ``detail`` (or ``error_description``/``message`` of other JSON
            error formats, or the start of a plain-text body).
        instance: The body's ``instance``.
        request_id: The body's ``request_id`` or the ``X-Request-ID`` header.
        hints: Short fixes a person can apply, from the body.
        challenges: Every challenge of every ``WWW-Authenticate`` field line that parses.
        challenge_errors: One message per field line that does not follow RFC 9110 §11.
        retry_after: Seconds to wait, from the body's ``retry_after`` or ``Retry-After``.
        schemes: The schemes the server accepts (body ``schemes``, else the challenges').
        required_scopes: Scopes the server asks for (body, else a Bearer ``scope`` param).
        required_roles: Roles the route needs, from a 403 ``forbidden`` body.
        offered_scheme: The scheme of credentials that were sent but that the route does
            not accept (a ``credentials_missing`` body's ``offered_scheme``; only a scheme
            name is read, anything else is ignored).
        acr_values: The authentication context asked for by a step-up refusal.
        max_age: Seconds since sign-in the server accepts, for a step-up refusal.
        payment: What to pay, how and where: the body's ``payment`` member.
        payment_required: The decoded x402 ``PAYMENT-REQUIRED`` header, if any.
        server_date: The response's ``Date`` header as a POSIX timestamp.
        is_problem_json: Whether the body was an RFC 9457 problem object.
        body: The decoded JSON body (a problem or another JSON error object), if any.
    """

    status: int
    reason: str | None = None
    reason_source: ReasonSource | None = None
    type: str = "about:blank"
    title: str = ""
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    hints: tuple[str, ...] = ()
    challenges: tuple[Challenge, ...] = ()
    challenge_errors: tuple[str, ...] = ()
    retry_after: float | None = None
    schemes: tuple[str, ...] = ()
    required_scopes: tuple[str, ...] = ()
    required_roles: tuple[str, ...] = ()
    offered_scheme: str | None = None
    acr_values: str | None = None
    max_age: int | None = None
    payment: Mapping[str, Any] | None = None
    payment_required: Mapping[str, Any] | None = None
    server_date: float | None = None
    is_problem_json: bool = False
    body: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def known_reason(self) -> Reason | None:
        """``reason`` as a :class:`Reason`, or ``None`` if absent or unknown to this version."""
        try:
            return Reason(self.reason) if self.reason is not None else None
        except ValueError:
            return None

    def challenge(self, scheme: str) -> Challenge | None:
        """The first challenge of ``scheme`` (matched case-insensitively), if offered."""
        scheme = scheme.lower()
        return next((c for c in self.challenges if c.scheme.lower() == scheme), None)

    @property
    def bearer_error(self) -> str | None:
        """The ``error`` parameter of the Bearer challenge (RFC 6750 §3.1), if any."""
        bearer = self.challenge("Bearer")
        return bearer.params.get("error") if bearer is not None else None

    @classmethod
    def parse(
        cls,
        status: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        body: bytes | str | None = None,
        *,
        sent_credentials: bool | None = None,
        now: float | None = None,
        reason_phrase: str | None = None,
    ) -> Problem:
        """Build a problem from a status, header field lines and a body.

        Args:
            status: The HTTP status code.
            headers: Header ``(name, value)`` pairs (repeated names allowed) or a mapping.
            body: The raw body; JSON objects are read, other text kept as the detail.
            sent_credentials: Whether the request carried credentials; lets a bare ``401``
                from a server that is not authguard be told apart as ``credentials_missing``
                or ``credentials_invalid``. ``None``: unknown.
            now: The local clock (POSIX seconds) for an HTTP-date ``Retry-After``.
            reason_phrase: The status line's reason phrase: the title of a status this
                module has none for, when the body gives none.
        """
        pairs = _pairs(headers)
        values = {name: value for name, value in reversed(pairs)}  # first occurrence wins
        challenges: list[Challenge] = []
        errors: list[str] = []
        for name, value in pairs:
            if name != "www-authenticate":
                continue
            try:
                challenges.extend(parse_www_authenticate(value))
            except ChallengeParseError as exc:
                errors.append(f"{value!r}: {exc}")

        raw_body = body or b""
        too_big = len(raw_body) > MAX_JSON_BODY
        raw_body = raw_body[:MAX_JSON_BODY]
        text = raw_body.decode("utf-8", "replace") if isinstance(raw_body, bytes) else raw_body
        data: dict[str, Any] | None = None
        if not too_big and text.lstrip().startswith("{"):
            data = _json_object(text)
        ctype = values.get("content-type", "").split(";")[0].strip().lower()
        d: Mapping[str, Any] = data or {}

        def text_member(*names: str) -> str | None:
            for name in names:
                value = d.get(name)
                if isinstance(value, str) and value:
                    return value
            return None

        def strings(value: Any) -> tuple[str, ...]:
            if isinstance(value, str):
                return tuple(value.split())
            if isinstance(value, list):
                return tuple(str(v) for v in value if isinstance(v, str | int | float))
            return ()

        # A body's ``reason`` is authguard's only in a problem+json body, or when it is one of
        # authguard's codes: other JSON errors use the word too (Kubernetes: "Unauthorized").
        body_reason = d.get("reason")
        if not isinstance(body_reason, str) or not body_reason or not (
                ctype == "application/problem+json" or body_reason in _REASON_CODES):
            body_reason = None
        is_problem = data is not None and (
            ctype == "application/problem+json" or ("type" in d and "title" in d)
            or body_reason is not None)
        reason: str | None = None
        source: ReasonSource | None = None
        if body_reason is not None:
            reason, source = body_reason, "body"
        else:
            reason, source = _infer(status, challenges, sent_credentials)

        detail = text_member("detail", "error_description", "message", "error")
        if detail is None and data is None and text.strip():
            detail = text.strip()[:_MAX_TEXT]

        retry_after = _seconds(d.get("retry_after"))
        if retry_after is None:
            retry_after = parse_retry_after(values.get("retry-after"), now=now)

        schemes = strings(d.get("schemes")) or tuple(dict.fromkeys(c.scheme for c in challenges))
        bearer = next((c for c in challenges if c.scheme.lower() == "bearer"), None)
        scopes = strings(d.get("required_scopes"))
        if not scopes and bearer is not None:
            scopes = strings(bearer.params.get("scope"))
        acr = text_member("acr_values") or (bearer.params.get("acr_values") if bearer else None)
        max_age = _non_negative_int(d.get("max_age"))
        if max_age is None and bearer is not None:
            max_age = _non_negative_int(bearer.params.get("max_age"))
        payment = d.get("payment")
        offered = d.get("offered_scheme")
        hints = d.get("hints")
        date = values.get("date")

        return cls(
            status=status,
            reason=reason,
            reason_source=source,
            type=text_member("type") or "about:blank",
            title=text_member("title") or _STATUS_TITLES.get(status) or (
                reason_phrase.strip()[:_MAX_TEXT] if reason_phrase and reason_phrase.strip()
                else f"HTTP {status}"),
            detail=detail,
            instance=text_member("instance"),
            request_id=text_member("request_id") or values.get("x-request-id"),
            hints=tuple(h for h in hints if isinstance(h, str)) if isinstance(hints, list)
            else (),
            challenges=tuple(challenges),
            challenge_errors=tuple(errors),
            retry_after=retry_after,
            schemes=schemes,
            required_scopes=scopes,
            required_roles=strings(d.get("required_roles")),
            offered_scheme=offered if isinstance(offered, str)
            and _SCHEME_NAME.fullmatch(offered) else None,
            acr_values=acr,
            max_age=max_age,
            payment=payment if isinstance(payment, dict) else None,
            payment_required=_decode_payment_header(values.get("payment-required")),
            server_date=_http_date(date) if date else None,
            is_problem_json=is_problem,
            body=data,
        )

    @classmethod
    def from_response(cls, response: Any, *, now: float | None = None) -> Problem:
        """Build a problem from an ``httpx.Response`` whose body has been read.

        Whether the request carried credentials (``Authorization``, ``Cookie``, or a header
        named like an API key) is taken from ``response.request`` when it is available.
        """
        sent: bool | None = None
        try:
            request = response.request
        except RuntimeError:  # a Response built without a request
            request = None
        if request is not None:
            names = {k.lower() for k in request.headers}
            sent = bool(names & {"authorization", "cookie", "x-api-key", "api-key",
                                 "proxy-authorization"})
        phrase = getattr(response, "reason_phrase", None)
        return cls.parse(response.status_code, response.headers.multi_items(),
                         response.content, sent_credentials=sent, now=now,
                         reason_phrase=phrase if isinstance(phrase, str) else None)
