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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "Challenge",
    "ChallengeParseError",
    "HeaderValueError",
    "Params",
    "format_challenge",
    "parse_www_authenticate",
    "quote",
]

_TCHAR = "!#$%&'*+.^_`|~0-9A-Za-z-"
_TOKEN_RE = re.compile(rf"[{_TCHAR}]+")
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# qdtext / quoted-pair allow HTAB, SP, VCHAR and obs-text (0x80-0xFF); nothing else.
_QUOTABLE_RE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
# Parameters that RFC 7235/9110 users expect quoted even when they are tokens.
_ALWAYS_QUOTED = frozenset({"realm", "charset", "scope", "error", "error_description",
                            "acr_values", "max_age", "form-action", "cookie-name"})


class HeaderValueError(ValueError):
    """A value cannot be placed in a header field without breaking its grammar."""


# The scheme word of an Authorization field, as it may be named back (a refusal's
# ``offered_scheme``, an event's): an RFC 9110 token of letters, digits and "-._~+" starting
# with a letter, at most 32 characters, followed by credentials (a lone word may be a bare
# token, i.e. the secret itself, and is never named).
SCHEME_WORD = re.compile(r"[A-Za-z][A-Za-z0-9._~+-]{0,31}")


def offered_scheme_word(value: bytes) -> str | None:
    """The scheme word of the Authorization field ``value`` if it may be named back (see
    :data:`SCHEME_WORD`), else ``None``. Never any of the credentials."""
    word, _, rest = value.strip().partition(b" ")
    try:
        text = word.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if rest.strip() and SCHEME_WORD.fullmatch(text) else None


def quote(value: str) -> str:
    """Return ``value`` as an RFC 9110 ``quoted-string``.

    Raises:
        HeaderValueError: if ``value`` holds CR, LF, NUL or another control character, or a
            character outside Latin-1 (header fields are octets; see RFC 9110 §5.5).
    """
    if not _QUOTABLE_RE.fullmatch(value):
        raise HeaderValueError("header parameter value holds a character that cannot be sent")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def checked_setting(value: str, setting: str) -> str:
    """``value``, if it can go into a header parameter; else a start-up error naming
    ``setting`` (for configured strings: realms, login URLs, cookie names).

    Raises:
        ConfigurationError: ``value`` holds CR, LF or another control character, or a
            character outside Latin-1 (also a :class:`HeaderValueError`).
    """
    from .errors import HeaderSettingError  # errors imports this module

    if not _QUOTABLE_RE.fullmatch(value):
        raise HeaderSettingError(
            f"{setting}: {value!r} cannot be sent in a header field (control characters, "
            "CR/LF and characters outside Latin-1 are not allowed)")
    return value


def _is_token(value: str) -> bool:
    return _TOKEN_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Challenge:
    """One authentication challenge: a scheme plus either auth-params or a token68.

    Attributes:
        scheme: The auth-scheme, e.g. ``Basic`` or ``Bearer`` (case-insensitive on the wire).
        params: Auth-parameters in the order they are sent (read-only; a ``dict`` given
            here is copied).
        token68: A token68 value instead of parameters (rare in challenges).
    """

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None
    # The field value, formatted once: a challenge is read-only (see format_challenge).
    _line: bytes = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if type(self.params) is dict:
            # Read-only, like the rest of the challenge: one object may be shared by many
            # refusals (an authenticator's fixed challenges), each formatted once.
            object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        if not _is_token(self.scheme):
            raise HeaderValueError(f"auth-scheme {self.scheme!r} is not a token")
        if self.token68 is not None:
            if self.params:
                raise HeaderValueError("a challenge has either token68 or parameters, not both")
            if not _TOKEN68_RE.fullmatch(self.token68):
                raise HeaderValueError("token68 value has characters outside its alphabet")
        seen: set[str] = set()
        for name in self.params:
            if not _is_token(name):
                raise HeaderValueError(f"auth-param name {name!r} is not a token")
            if name.lower() in seen:
                raise HeaderValueError(f"auth-param {name!r} repeated (RFC 9110 §11.2)")
            seen.add(name.lower())
        # formatting quotes (and so validates) every value that is not a token
        object.__setattr__(self, "_line", format_challenge(self).encode("latin-1"))

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
    return [(b"www-authenticate", c._line) for c in challenges]


class ChallengeParseError(ValueError):
    """A ``WWW-Authenticate`` value does not follow the RFC 9110 §11 grammar."""


class Params(Mapping[str, str]):
    """Read-only auth-params: case-insensitive lookup (RFC 9110 §11.2), original order."""

    __slots__ = ("_items", "_lower")

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items = dict(items)
        self._lower = {k.lower(): v for k, v in self._items.items()}

    def __getitem__(self, key: str) -> str:
        return self._lower[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lower

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Params({self._items!r})"


_OWS = " \t"
# What a quoted-string may not hold (RFC 9110 §5.6.4): controls other than HTAB, and DEL.
# Anything above 0x7F is obs-text: clients such as httpx decode field bytes as UTF-8 when
# they can, so a realm sent as UTF-8 ("Zone €") arrives as characters beyond U+00FF.
_CONTROLS = frozenset(map(chr, [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F]))


class _Scanner:
    """A single left-to-right scanner over one field value (no backtracking)."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def ows(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in _OWS:
            self.i += 1

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def token(self) -> str:
        m = _TOKEN_RE.match(self.s, self.i)
        if not m:
            raise ChallengeParseError(f"expected a token at offset {self.i}")
        self.i = m.end()
        return m.group()

    def quoted(self) -> str:
        # RFC 9110 §5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
        self.i += 1
        out: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == '"':
                self.i += 1
                return "".join(out)
            if c == "\\":
                if self.i + 1 >= len(self.s):
                    break
                c = self.s[self.i + 1]
                self.i += 1
            if c in _CONTROLS:
                raise ChallengeParseError(
                    f"control character U+{ord(c):04X} in a quoted-string at offset {self.i}")
            out.append(c)
            self.i += 1
        raise ChallengeParseError("unterminated quoted-string")


def _param_follows(s: str, i: int) -> bool:
    """Whether, past commas and whitespace from ``i``, ``token BWS "="`` follows."""
    while i < len(s) and s[i] in ", \t":
        i += 1
    m = _TOKEN_RE.match(s, i)
    if not m:
        return False
    k = m.end()
    while k < len(s) and s[k] in _OWS:
        k += 1
    return k < len(s) and s[k] == "="


def _parse_field(text: str, out: list[Challenge]) -> None:
    sc = _Scanner(text)
    while True:
        # #rule: empty list elements are allowed (RFC 9110 §5.6.1)
        sc.ows()
        while sc.peek() == ",":
            sc.i += 1
            sc.ows()
        if sc.i >= len(sc.s):
            return
        scheme = sc.token()
        params: list[tuple[str, str]] = []
        seen: set[str] = set()  # lower-cased names: a repeat is found in O(1), not by a scan
        token68: str | None = None
        if sc.peek() == " ":
            sc.ows()
            m68 = _TOKEN68_RE.match(sc.s, sc.i)
            after = m68.end() if m68 else sc.i
            k = after  # the first character after the token68 and its OWS (no copy)
            while k < len(sc.s) and sc.s[k] in _OWS:
                k += 1
            rest = sc.s[k] if k < len(sc.s) else ""
            is_param = m68 is not None and _TOKEN_RE.fullmatch(
                sc.s[sc.i:after].rstrip("=")) is not None and (
                sc.s[sc.i:after].endswith("=") or rest == "=") and rest not in ("", ",")
            if m68 and not is_param and rest in ("", ","):
                token68 = m68.group()
                sc.i = after
            else:
                # §5.6.1.2: empty elements may lead the auth-param list ("Basic , realm=x")
                if sc.peek() == "," and _param_follows(sc.s, sc.i):
                    while sc.peek() in (",", " ", "\t"):
                        sc.i += 1
                while True:
                    sc.ows()
                    if sc.peek() in ("", ","):
                        break
                    start = sc.i
                    name = sc.token()
                    sc.ows()
                    if sc.peek() != "=":
                        # the start of the next challenge: rewind (scheme without params)
                        sc.i = start
                        break
                    sc.i += 1
                    sc.ows()
                    value = sc.quoted() if sc.peek() == '"' else sc.token()
                    if name.lower() in seen:
                        raise ChallengeParseError(f"auth-param {name!r} repeated (§11.2)")
                    seen.add(name.lower())
                    params.append((name, value))
                    sc.ows()
                    if sc.peek() != ",":
                        break
                    # look past commas: another param, or the next challenge?
                    j = sc.i
                    while j < len(sc.s) and sc.s[j] in ", \t":
                        j += 1
                    m = _TOKEN_RE.match(sc.s, j)
                    k = m.end() if m else j
                    while k < len(sc.s) and sc.s[k] in _OWS:
                        k += 1
                    if m and k < len(sc.s) and sc.s[k] == "=":
                        sc.i = j
                        continue
                    break
        out.append(_parsed(scheme, params, token68))
        sc.ows()
        if sc.i >= len(sc.s):
            return
        if sc.peek() != ",":
            raise ChallengeParseError(f"unexpected {sc.peek()!r} at offset {sc.i}")


def _parsed(scheme: str, params: list[tuple[str, str]], token68: str | None) -> Challenge:
    ch = Challenge.__new__(Challenge)
    object.__setattr__(ch, "scheme", scheme)
    object.__setattr__(ch, "params", Params(params))
    object.__setattr__(ch, "token68", token68)
    return ch


def parse_www_authenticate(value: str | Sequence[str]) -> list[Challenge]:
    """Parse one ``WWW-Authenticate`` field value, or a list of field lines, strictly.

    Implements RFC 9110 §11.6.1 with §11 (challenge, token68, auth-param), §5.6.1 (lists,
    empty elements), §5.6.4 (quoted-string). Scheme and parameter names are matched
    case-insensitively; a parameter repeated within one challenge is an error (§11.2).

    Raises:
        ChallengeParseError: the value does not follow the grammar.
    """
    lines = [value] if isinstance(value, str) else list(value)
    out: list[Challenge] = []
    for line in lines:
        if not isinstance(line, str):
            raise ChallengeParseError("field values must be str")
        _parse_field(line, out)
    return out
