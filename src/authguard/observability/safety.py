"""Values that came from a request, made safe to write in a log.

A server percent-decodes ``%0A``, ``%0D`` and ``%00`` into ``scope["path"]``; a header
value may hold ANSI escape sequences; any of them may be megabytes long. Written as they
are, they forge log lines (CWE-117) or repaint a terminal. :func:`safe_text` escapes
every character Python does not call printable (C0, DEL and C1 controls, the Unicode
line and paragraph separators, format characters) as ``\\xNN``/``\\uNNNN``, escapes
the backslash itself so that an escape cannot be faked, and cuts long values with a
marker that says how much was left out.

:func:`route_template` names the route a request matched by its path template
(``/items/{item_id}``) rather than the path that was sent, so that logs and metric
attributes carry neither request data nor unbounded cardinality.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Host, Match, Mount
from starlette.types import Scope

from ..routing import ROUTE_ENTRY, find_routes

__all__ = ["MAX_FIELD", "UNMATCHED", "optional_text", "route_template", "safe_text"]

MAX_FIELD = 200
"""Longest value (in characters, after escaping) a request-derived event field keeps."""
UNMATCHED = "<unmatched>"
"""The route attribute of a request that matched no route of the app."""


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: object, limit: int = MAX_FIELD) -> str:
    """``value`` as one printable line of at most ``limit`` characters (plus a marker).

    ``bytes`` are read as Latin-1 (as HTTP field values are).
    """
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("latin-1")
    else:
        text = value if isinstance(value, str) else str(value)
    # Cut before escaping too, so that a huge value costs no more than ``limit`` work.
    cut = len(text) > limit
    out = text[:limit] if cut else text
    if not out.isprintable() or "\\" in out:
        out = "".join(map(_escape, out))
    if len(out) > limit:
        out = out[:limit]
        cut = True
    if cut:
        out += f"...[{len(text)} chars]"
    return out


def optional_text(value: object, limit: int = MAX_FIELD) -> str | None:
    """:func:`safe_text` of ``value``, or ``None`` when ``value`` is ``None``."""
    return None if value is None else safe_text(value, limit)


def scope_route(scope: Scope, app: Any = None) -> str:
    """The route template of ``scope``: the one the middleware found with the route's plan
    (worked out once per route), else :func:`route_template`."""
    entry = scope.get(ROUTE_ENTRY)
    if entry is not None:  # set by the middleware: the route's RouteEntry
        template: str = entry.template
        return template
    return route_template(scope, app)


def route_template(scope: Scope, app: Any = None) -> str:
    """The path template of the route ``scope`` matches (``/items/{id}``), mount prefixes
    included, or ``"<unmatched>"``; never the path that was sent."""
    routes = find_routes(scope.get("app") or app)
    if routes is None:
        return UNMATCHED
    found = _match(routes, scope, "")
    return found if found is not None else UNMATCHED


def _match(routes: Sequence[BaseRoute], scope: Scope, prefix: str) -> str | None:
    partial: str | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        path = getattr(route, "path", None)
        if isinstance(route, Mount | Host):
            inner = getattr(route, "routes", None)
            here = prefix + (route.path if isinstance(route, Mount) else "")
            if inner:
                found = _match(inner, {**scope, **child}, here)
                if found is not None:
                    return found
            return here or "/"
        template = prefix + path if isinstance(path, str) else None
        if template is None:
            continue
        if match is Match.FULL:
            return template
        if partial is None:
            partial = template
    return partial
