"""RFC 9457 problem details: the body and headers of every refusal.

One renderer for every refusal: :func:`problem_body` builds the JSON members from a
:class:`~authguard.Refusal` and the Reason table; :func:`send_refusal` sends it as a raw ASGI
response (``HEAD`` gets the same status and headers, no body; a websocket handshake gets it
through the ``websocket.http.response`` extension, or is closed before accept).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from email.utils import formatdate
from importlib import resources
from typing import Any

from starlette.types import Scope, Send

from .challenges import Challenge
from .errors import Refusal
from .reasons import DEFAULT_TYPE_BASE, Reason

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "problem_body",
    "problem_schema",
    "refusal_headers",
    "render_problem",
    "send_problem",
]

log = logging.getLogger("authguard")
# RFC 9110 §5.6.2 token (header and cookie names), §5.5 field-value (VCHAR, obs-text, SP, HTAB
# inside; no CR, LF, NUL or other control characters).
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE_RE = re.compile(r"[\x21-\x7e\x80-\xff]([\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?|")

PROBLEM_CONTENT_TYPE = "application/problem+json"
EXPOSE_HEADERS = (
    "WWW-Authenticate, Retry-After, Date, X-Request-ID, PAYMENT-REQUIRED, PAYMENT-RESPONSE, "
    "Payment-Receipt, X-PAYMENT-RESPONSE, DPoP-Nonce"
)
"""The headers a browser page may read on a refusal (``Access-Control-Expose-Headers``).
A CORS middleware outside authguard replaces this with its own ``expose_headers``: give it
the same list (``EXPOSE_HEADERS.split(", ")``)."""


def problem_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of authguard's problem bodies, shipped in the package."""
    text = resources.files("authguard").joinpath("schema/problem.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def problem_body(
    refusal: Refusal,
    *,
    instance: str | None = None,
    request_id: str | None = None,
    type_base: str = DEFAULT_TYPE_BASE,
    schemes: Sequence[str] = (),
) -> dict[str, Any]:
    """The problem+json members for ``refusal``.

    ``schemes`` are the schemes the route accepts, listed for 401 answers so that a program
    can pick one without parsing ``WWW-Authenticate``.
    """
    spec = refusal.reason.spec
    hints = refusal.hints if refusal.hints is not None else spec.hints_for(refusal.scheme)
    body: dict[str, Any] = {
        "type": type_base + refusal.reason.value,
        "title": spec.title,
        "status": spec.status,
        "detail": refusal.detail or spec.detail,
        "reason": refusal.reason.value,
        "hints": list(hints),
    }
    if instance is not None:
        body["instance"] = instance
    if request_id is not None:
        body["request_id"] = request_id
    if schemes and spec.status == 401:
        body["schemes"] = list(schemes)
    retry_after = refusal.headers.get("Retry-After")
    if retry_after is not None and retry_after.isdigit():
        body["retry_after"] = int(retry_after)
    for key, value in refusal.extensions.items():
        body.setdefault(key, value)
    return body



_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
"""The one encoder of every body (``json.dumps`` with options builds a new one per call)."""
_STATUS = {reason: reason.spec.status for reason in Reason}
_SPECS = {reason: reason.spec for reason in Reason}


def render_problem(
    refusal: Refusal,
    *,
    instance: str | None = None,
    request_id: str | None = None,
    type_base: str = DEFAULT_TYPE_BASE,
    schemes: Sequence[str] = (),
    encoder: json.JSONEncoder = _ENCODER,
) -> bytes:
    """``encoder.encode(problem_body(...))`` as UTF-8, byte for byte: the members that are
    the same for every refusal of a reason and detail are encoded once (by the same
    encoder), the rest per refusal."""
    detail = refusal.detail
    if (type(detail) not in (str, type(None)) or type(type_base) is not str
            or any(type(k) is not str for k in refusal.extensions)):
        body = problem_body(refusal, instance=instance, request_id=request_id,
                            type_base=type_base, schemes=schemes)
        return encoder.encode(body).encode("utf-8")
    # The hints depend on the scheme (a rejected token is not fixed by checking a password)
    # or are the refusal's own: they are part of the key, as they are of the fixed members.
    hints = refusal.hints
    if hints is None:
        hints = _SPECS[refusal.reason].hints_for(refusal.scheme)
    key = (encoder, refusal.reason, detail, type_base, hints)
    prefix = _PREFIXES.get(key)
    if prefix is None:
        fixed = problem_body(refusal.replace(headers={}, extensions={}),
                             type_base=type_base)
        prefix = encoder.encode(fixed)[:-1]
        if len(_PREFIXES) >= 256:
            _PREFIXES.clear()
        _PREFIXES[key] = prefix
    parts = [prefix]
    used = set(_FIXED)
    if instance is not None:
        parts.append(',"instance":' + encoder.encode(instance))
        used.add("instance")
    if request_id is not None:
        parts.append(',"request_id":' + encoder.encode(request_id))
        used.add("request_id")
    if schemes and _STATUS[refusal.reason] == 401:
        names = tuple(schemes)
        listing = _LISTINGS.get((prefix, names))  # a route accepts a fixed set
        if listing is None:
            listing = ',"schemes":' + encoder.encode(list(names))
            if all(type(n) is str for n in names):  # (1 == True would share a key)
                if len(_LISTINGS) >= 256:
                    _LISTINGS.clear()
                _LISTINGS[(prefix, names)] = listing
        parts.append(listing)
        used.add("schemes")
    retry_after = refusal.headers.get("Retry-After")
    if retry_after is not None and retry_after.isdigit():
        parts.append(',"retry_after":' + encoder.encode(int(retry_after)))
        used.add("retry_after")
    for name, value in refusal.extensions.items():
        if name not in used:
            parts.append("," + encoder.encode(name) + ":" + encoder.encode(value))
            used.add(name)
    parts.append("}")
    return "".join(parts).encode("utf-8")


# (encoder, reason, detail, type base, hints) → the fixed members encoded, without the
# closing brace. Bounded: details and hints are few (the table's, per scheme, and the fixed
# texts of authenticators and requirements).
_PREFIXES: dict[tuple[json.JSONEncoder, Reason, str | None, str, tuple[str, ...]], str] = {}
_FIXED = frozenset({"type", "title", "status", "detail", "reason", "hints"})
# (the fixed members, the schemes) → the schemes member, encoded
_LISTINGS: dict[tuple[str, tuple[str, ...]], str] = {}


_EXPOSE_HEADERS = EXPOSE_HEADERS.encode()
_VARY = b"Authorization, Cookie"
def refusal_headers(
    refusal: Refusal,
    challenges: Sequence[Challenge],
    *,
    request_id: str | None,
    secure: bool,
    send_date: bool = False,
    vary: bytes = _VARY,
) -> list[tuple[bytes, bytes]]:
    """Headers of a refusal: challenges (one field line each), caching, CORS exposure.

    ``vary`` names the request fields a 401/402 depends on (RFC 9110 §12.5.5): the
    credential fields of the schemes the route accepts.
    """
    headers: list[tuple[bytes, bytes]] = [
        (b"www-authenticate", c._line) for c in challenges
    ]
    headers.append((b"cache-control", b"no-store"))
    headers.append((b"x-content-type-options", b"nosniff"))  # a body is never sniffed
    headers.append((b"access-control-expose-headers", _EXPOSE_HEADERS))
    if _STATUS[refusal.reason] in (401, 402):
        headers.append((b"vary", vary))
    if request_id is not None:
        headers.append((b"x-request-id", request_id.encode("latin-1")))
    if send_date:
        headers.append((b"date", formatdate(usegmt=True).encode()))
    headers.extend(_own_headers(refusal, secure))
    return headers


def redirect_headers(refusal: Refusal, location: str, *, secure: bool,
                     vary: bytes = _VARY) -> list[tuple[bytes, bytes]]:
    """Headers of a refusal answered with a redirect to a login page (303): no challenge,
    the refusal's own headers and cookie deletions kept."""
    headers = [(b"location", location.encode("latin-1")), (b"cache-control", b"no-store"),
               (b"x-content-type-options", b"nosniff")]
    if _STATUS[refusal.reason] in (401, 402):
        headers.append((b"vary", vary))
    headers.extend(_own_headers(refusal, secure))
    return headers


def _own_headers(refusal: Refusal, secure: bool) -> list[tuple[bytes, bytes]]:
    """The refusal's own header fields and the ``Set-Cookie`` fields deleting its cookies;
    a value that cannot be sent is dropped (never a split response, never a 500)."""
    headers: list[tuple[bytes, bytes]] = []
    for name, value in refusal.headers.items():
        value = value.strip(" \t")
        if not _TOKEN_RE.fullmatch(name) or not _FIELD_VALUE_RE.fullmatch(value):
            # Never split a response or fail it: a header that cannot be sent is dropped.
            log.warning("authguard: dropped refusal header %r: not a valid field", name[:64])
            continue
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    for cookie in refusal.delete_cookies:
        if "=" in cookie:  # a complete Set-Cookie value (an authenticator's own attributes)
            if _FIELD_VALUE_RE.fullmatch(cookie) and _TOKEN_RE.fullmatch(cookie.split("=")[0]):
                headers.append((b"set-cookie", cookie.encode("latin-1")))
            else:
                log.warning("authguard: not deleting cookie: not a valid Set-Cookie value")
            continue
        if not _TOKEN_RE.fullmatch(cookie):
            log.warning("authguard: not deleting cookie %r: not a cookie name", cookie[:64])
            continue
        attrs = "; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
        if secure:
            attrs += "; Secure"
        headers.append((b"set-cookie", f'{cookie}=""{attrs}'.encode("latin-1")))
    return headers


async def send_problem(
    scope: Scope,
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    content_type: bytes = PROBLEM_CONTENT_TYPE.encode(),
) -> None:
    """Send a complete response on ``send`` for an ``http`` or ``websocket`` scope."""
    full = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    if scope["type"] == "websocket":
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": status,
                        "headers": full})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            # Closing before accept makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "http.response.start", "status": status, "headers": full})
    await send({
        "type": "http.response.body",
        "body": b"" if scope.get("method") == "HEAD" else body,
    })
