"""RFC 6750 §2.2 form-body tokens: read a form body once, before the app, and replay it.

Only for authenticators that opt in (``BearerAuthenticator(allow_form_body=True)``), only
for POST, PUT and PATCH requests whose ``Content-Type`` is exactly
``application/x-www-form-urlencoded``, and only up to a size limit: the ``access_token``
values found are put in the scope under :data:`FORM_TOKENS`, and the app receives the body
unchanged, message by message, as if nothing had read it. A body over the limit is not
searched for a token; what was read of it is replayed, and the rest streams through.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import Message, Receive, Scope

__all__ = ["FORM_TOKENS", "is_form_post", "read_form_tokens"]

FORM_TOKENS = "authguard.form_access_tokens"
"""Scope key: the ``access_token`` values of the form body (bytes), when it was read."""

_METHODS = frozenset({"POST", "PUT", "PATCH"})


def is_form_post(scope: Scope) -> bool:
    """A request whose body may carry a form token (RFC 6750 §2.2: never a GET)."""
    if scope["type"] != "http" or scope["method"] not in _METHODS:
        return False
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/x-www-form-urlencoded"
    return False


async def read_form_tokens(scope: Scope, receive: Receive, limit: int) -> Receive:
    """Read the body (up to ``limit`` bytes), note its ``access_token`` values in
    ``scope[FORM_TOKENS]``, and return a ``receive`` that replays it to the app."""
    buffered: list[Message] = []
    size = 0
    complete = False
    while True:
        message = await receive()
        buffered.append(message)
        if message["type"] != "http.request":
            break  # http.disconnect: replayed to the app as it came
        size += len(message.get("body", b""))
        if size > limit:
            break
        if not message.get("more_body", False):
            complete = True
            break
    if complete:
        body = b"".join(m.get("body", b"") for m in buffered)
        try:
            pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True,
                              max_num_fields=1000)
        except ValueError:  # more fields than that: not searched
            pairs = []
        tokens = [v.encode("latin-1", "replace") for k, v in pairs if k == "access_token"]
        if tokens:
            scope[FORM_TOKENS] = tokens

    async def replay() -> Message:
        if buffered:
            return buffered.pop(0)
        return await receive()

    return replay
