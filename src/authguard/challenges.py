"""Building ``WWW-Authenticate`` challenges exactly to the RFC 9110 §11 grammar.

    challenge   = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param  = token BWS "=" BWS ( token / quoted-string )
    token68     = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="

Parameter values are emitted as a ``token`` where that is allowed, else as a
``quoted-string`` with ``"`` and ``\\`` escaped (RFC 9110 §5.6.4). Values that cannot be
represented (CR, LF, other control characters) are refused with :class:`HeaderValueError`
when the challenge is built — never silently emitted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Challenge", "HeaderValueError", "format_challenge", "quote"]

_TCHAR = "!#$%&'*+.^_`|~0-9A-Za-z-"
_TOKEN_RE = re.compile(rf"[{_TCHAR}]+")
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# qdtext / quoted-pair allow HTAB, SP, VCHAR and obs-text (0x80-0xFF); nothing else.
_QUOTABLE_RE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
# Parameters that RFC 7235/9110 users expect quoted even when they are tokens.
_ALWAYS_QUOTED = frozenset({"realm", "charset", "scope", "error_description", "acr_values"})


class HeaderValueError(ValueError):
    """A value cannot be placed in a header field without breaking its grammar."""


def quote(value: str) -> str:
    """Return ``value`` as an RFC 9110 ``quoted-string``.

    Raises:
        HeaderValueError: if ``value`` holds CR, LF, NUL or another control character, or a
            character outside Latin-1 (header fields are octets; see RFC 9110 §5.5).
    """
    if not _QUOTABLE_RE.fullmatch(value):
        raise HeaderValueError("header parameter value holds a character that cannot be sent")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_token(value: str) -> bool:
    return _TOKEN_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Challenge:
    """One authentication challenge: a scheme plus either auth-params or a token68.

    Attributes:
        scheme: The auth-scheme, e.g. ``Basic`` or ``Bearer`` (case-insensitive on the wire).
        params: Auth-parameters in the order they are sent.
        token68: A token68 value instead of parameters (rare in challenges).
    """

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    def __post_init__(self) -> None:
        if not _is_token(self.scheme):
            raise HeaderValueError(f"auth-scheme {self.scheme!r} is not a token")
        if self.token68 is not None:
            if self.params:
                raise HeaderValueError("a challenge has either token68 or parameters, not both")
            if not _TOKEN68_RE.fullmatch(self.token68):
                raise HeaderValueError("token68 value has characters outside its alphabet")
        seen: set[str] = set()
        for name, value in self.params.items():
            if not _is_token(name):
                raise HeaderValueError(f"auth-param name {name!r} is not a token")
            if name.lower() in seen:
                raise HeaderValueError(f"auth-param {name!r} repeated (RFC 9110 §11.2)")
            seen.add(name.lower())
            quote(value)  # validates

    def __str__(self) -> str:
        return format_challenge(self)


def format_challenge(challenge: Challenge) -> str:
    """Serialize one challenge as a ``WWW-Authenticate`` field value."""
    if challenge.token68 is not None:
        return f"{challenge.scheme} {challenge.token68}"
    if not challenge.params:
        return challenge.scheme
    parts = []
    for name, value in challenge.params.items():
        if name.lower() in _ALWAYS_QUOTED or not _is_token(value):
            parts.append(f"{name}={quote(value)}")
        else:
            parts.append(f"{name}={value}")
    return f"{challenge.scheme} " + ", ".join(parts)


def header_lines(challenges: Iterable[Challenge]) -> list[tuple[bytes, bytes]]:
    """One ``WWW-Authenticate`` field line per challenge (DESIGN §1), as raw ASGI headers."""
    return [
        (b"www-authenticate", format_challenge(c).encode("latin-1")) for c in challenges
    ]
