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
from json.encoder import encode_basestring
from typing import Any

from starlette.types import Scope, Send

from .challenges import Challenge, format_challenge
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
    body: dict[str, Any] = {
        "type": type_base + refusal.reason.value,
        "title": spec.title,
        "status": spec.status,
        "detail": refusal.detail or spec.detail,
        "reason": refusal.reason.value,
        "hints": list(spec.hints),
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
_FIXED = frozenset({"type", "title", "status", "detail", "reason", "hints"})
_STATUS = {reason: reason.spec.status for reason in Reason}
# (encoder, reason, detail, type_base) → the encoded fixed members, without the closing brace.
_PREFIXES: dict[tuple[int, Reason, str | None, str], str] = {}
# The schemes a 401 lists, encoded (a route accepts a fixed set).
_SCHEMES: dict[tuple[str, ...], str] = {}


def _prefix(encoder: json.JSONEncoder, refusal: Refusal, type_base: str) -> str:
    key = (id(encoder), refusal.reason, refusal.detail, type_base)
    hit = _PREFIXES.get(key)
    if hit is None:
        spec = refusal.reason.spec
        hit = encoder.encode({
            "type": type_base + refusal.reason.value,
            "title": spec.title,
            "status": spec.status,
            "detail": refusal.detail or spec.detail,
            "reason": refusal.reason.value,
            "hints": list(spec.hints),
        })[:-1]
        if len(_PREFIXES) >= 512:
            _PREFIXES.clear()
        _PREFIXES[key] = hit
    return hit


_LITERALS: dict[Any, str] = {None: "null", True: "true", False: "false"}


def _plain(value: Any, depth: int = 0) -> str | None:
    """``value`` as JSON when it is made only of str, int, bool, None, lists and dicts with
    str keys (what the encoder would write, with its ``,``/``:`` separators); else ``None``."""
    kind = type(value)
    if kind is str:
        text: str = encode_basestring(value)
        return text
    if value is None or kind is bool:
        return _LITERALS[value]
    if kind is int:
        return int.__repr__(value)
    if depth > 8:
        return None
    if kind is list:
        items = []
        for v in value:
            piece = _plain(v, depth + 1)
            if piece is None:
                return None
            items.append(piece)
        return "[" + ",".join(items) + "]"
    if kind is dict:
        members = []
        for k, v in value.items():
            piece = _plain(v, depth + 1)
            if type(k) is not str or piece is None:
                return None
            members.append(encode_basestring(k) + ":" + piece)
        return "{" + ",".join(members) + "}"
    return None


def _piece(encoder: json.JSONEncoder, value: Any) -> str:
    """``encoder.encode(value)``; plain values written directly."""
    text = _plain(value)
    if text is None:
        encoded: str = encoder.encode(value)
        return encoded
    return text


def render_problem(
    refusal: Refusal,
    *,
    instance: str | None = None,
    request_id: str | None = None,
    type_base: str = DEFAULT_TYPE_BASE,
    schemes: Sequence[str] = (),
    encoder: json.JSONEncoder = _ENCODER,
) -> bytes:
    """``encoder.encode(problem_body(...))`` as UTF-8, byte for byte, with the members that
    are the same for every refusal of a reason encoded once."""
    extensions = refusal.extensions
    detail = refusal.detail
    if ((detail is not None and type(detail) is not str) or type(type_base) is not str
            or (encoder is not _ENCODER and (
                encoder.ensure_ascii or encoder.item_separator != ","
                or encoder.key_separator != ":"))
            or (extensions and not all(type(k) is str for k in extensions))):
        body = problem_body(refusal, instance=instance, request_id=request_id,
                            type_base=type_base, schemes=schemes)
        return encoder.encode(body).encode("utf-8")
    text = _PREFIXES.get((id(encoder), refusal.reason, detail, type_base))
    if text is None:
        text = _prefix(encoder, refusal, type_base)
    if instance is not None:
        text += ',"instance":' + (encode_basestring(instance) if type(instance) is str
                                  else _piece(encoder, instance))
    if request_id is not None:
        text += ',"request_id":' + (encode_basestring(request_id) if type(request_id) is str
                                    else _piece(encoder, request_id))
    listed = bool(schemes) and _STATUS[refusal.reason] == 401
    if listed:
        names = tuple(schemes)
        listing = _SCHEMES.get(names)
        if listing is None:
            # strings only: written the same by any encoder allowed here (and 1 == True
            # would share a key)
            plain = _plain(list(names)) if all(type(n) is str for n in names) else None
            if plain is None:
                listing = ',"schemes":' + encoder.encode(list(names))
            else:
                listing = ',"schemes":' + plain
                if len(_SCHEMES) >= 256:
                    _SCHEMES.clear()
                _SCHEMES[names] = listing
        text += listing
    retry_after = refusal.headers.get("Retry-After") if refusal.headers else None
    retry = retry_after is not None and retry_after.isdigit()
    if retry:
        text += ',"retry_after":' + encoder.encode(int(retry_after))  # type: ignore[arg-type]
    if extensions:
        used = set(_FIXED)
        if instance is not None:
            used.add("instance")
        if request_id is not None:
            used.add("request_id")
        if listed:
            used.add("schemes")
        if retry:
            used.add("retry_after")
        for key, value in extensions.items():
            if key not in used:
                text += "," + encode_basestring(key) + ":" + _piece(encoder, value)
    return (text + "}").encode("utf-8")


_EXPOSE_HEADERS = EXPOSE_HEADERS.encode()
# Formatted challenges by object: an authenticator's fixed challenge (the same object on
# every refusal) is formatted once; the entry holds the object, so its id stays its own.
_LINES: dict[int, tuple[Challenge, bytes]] = {}


def _challenge_line(challenge: Challenge) -> bytes:
    hit = _LINES.get(id(challenge))
    if hit is not None and hit[0] is challenge:
        return hit[1]
    line = format_challenge(challenge).encode("latin-1")
    if len(_LINES) >= 256:
        _LINES.clear()
    _LINES[id(challenge)] = (challenge, line)
    return line


def refusal_headers(
    refusal: Refusal,
    challenges: Sequence[Challenge],
    *,
    request_id: str | None,
    secure: bool,
    send_date: bool = False,
) -> list[tuple[bytes, bytes]]:
    """Headers of a refusal: challenges (one field line each), caching, CORS exposure."""
    headers: list[tuple[bytes, bytes]] = [
        (b"www-authenticate", _challenge_line(c)) for c in challenges
    ]
    headers.append((b"cache-control", b"no-store"))
    headers.append((b"access-control-expose-headers", _EXPOSE_HEADERS))
    if _STATUS[refusal.reason] in (401, 402):
        headers.append((b"vary", b"Authorization, Cookie"))
    if request_id is not None:
        headers.append((b"x-request-id", request_id.encode("latin-1")))
    if send_date:
        headers.append((b"date", formatdate(usegmt=True).encode()))
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
