"""Where a Bearer token travels, and finding it (RFC 6750 §2).

* the ``Authorization: Bearer <token>`` header (§2.1) — always;
* a websocket subprotocol ``bearer.<token>`` — browsers cannot set headers on a websocket;
* opt-in, the ``access_token`` form-body parameter (§2.2; read by the middleware, see
  :mod:`authguard.formbody`) and the ``access_token`` query parameter (§2.3; it leaks into
  logs).

A token sent by more than one method, or twice, is refused with 400 ``invalid_request``
(§3.1). Shared by every authenticator that reads Bearer tokens.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import parse_qsl

from starlette.requests import HTTPConnection

from ..errors import Refusal
from ..formbody import FORM_TOKENS
from ..reasons import Reason

__all__ = ["SUBPROTOCOL_PREFIX", "TokenPlaces", "bearer_token", "has_bearer_token"]

SUBPROTOCOL_PREFIX = "bearer."
"""A websocket subprotocol that carries a token: ``bearer.<token>``."""


class TokenPlaces(NamedTuple):
    """Where, besides the ``Authorization`` header, a token is looked for."""

    query: bool = False
    subprotocol: bool = True
    form_body: bool = False


def has_bearer_token(conn: HTTPConnection, places: TokenPlaces) -> bool:
    """Whether a Bearer token is present in any of ``places`` (cheap: nothing parsed)."""
    for name, value in conn.scope["headers"]:
        if name == b"authorization" and (
            value[:7].lower() == b"bearer " or value.lower() == b"bearer"
        ):
            return True
    if places.subprotocol and conn.scope["type"] == "websocket":
        if any(p.startswith(SUBPROTOCOL_PREFIX) for p in conn.scope.get("subprotocols", ())):
            return True
    if places.query and b"access_token=" in conn.scope.get("query_string", b""):
        return True
    return bool(places.form_body and conn.scope.get(FORM_TOKENS))


def bearer_token(conn: HTTPConnection, places: TokenPlaces) -> bytes | None:
    """The one token of the request (spaces and tabs around it removed); ``None`` when
    there is none. Raises :class:`~authguard.Refusal` ``invalid_request`` when the token
    comes by more than one method, or twice."""
    found: list[bytes] = []
    for name, value in conn.scope["headers"]:
        if name != b"authorization":
            continue
        scheme, _, rest = value.partition(b" ")
        if scheme.lower() == b"bearer":
            found.append(rest)
    if places.subprotocol and conn.scope["type"] == "websocket":
        for p in conn.scope.get("subprotocols", ()):
            if p.startswith(SUBPROTOCOL_PREFIX):
                found.append(p[len(SUBPROTOCOL_PREFIX):].encode("latin-1", "replace"))
    if places.query:
        qs = conn.scope.get("query_string", b"")
        if b"access_token=" in qs:
            for k, v in parse_qsl(qs.decode("latin-1"), keep_blank_values=True):
                if k == "access_token":
                    found.append(v.encode("latin-1", "replace"))
    if places.form_body:
        found.extend(conn.scope.get(FORM_TOKENS, ()))
    if not found:
        return None
    if len(found) > 1:
        raise Refusal(Reason.INVALID_REQUEST, "Send the access token by exactly one method, "
                      "once.", scheme="Bearer")
    return found[0].strip(b" \t")
