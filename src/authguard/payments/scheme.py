"""The wire format of the IETF ``Payment`` HTTP authentication scheme (draft-httpauth-payment-01).

What a server needs to issue and read the scheme's messages, whatever the payment method:

* :func:`jcs_b64url` — ``request`` and ``opaque`` are RFC 8785 (JCS) JSON in base64url
  without padding (§"Required Parameters", §"Optional Parameters"), so that a client that
  parses and re-encodes them (pympp does, for ``opaque``) sends back the same bytes.
* :func:`challenge_id` — the HMAC-SHA256 binding of §"Challenge Binding": the seven fixed
  slots ``realm|method|intent|request|expires|digest|opaque``, then ``header`` as an eighth
  slot when the challenge has one.
* :func:`wire_text` — the ``description``: §"Internationalization Considerations" makes
  every string value UTF-8, so the text goes out as its UTF-8 octets inside the
  quoted-string (RFC 9110 §5.6.4 allows octets 0x80-0xFF there as obs-text).
* :func:`read_credential` — the credential (§"Credentials"): base64url JSON
  ``{challenge, payload, [source]}``, checked for shape before anything else reads it.
* :data:`PROBLEMS` — the draft's problem types (§"Error Codes").
* :func:`rank_challenges` — ``Accept-Payment`` (§"Client Payment Preferences").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..challenges import Challenge

__all__ = [
    "BOUND",
    "PAYMENT_AUTHORIZATION",
    "PROBLEMS",
    "CredentialError",
    "challenge_id",
    "jcs_b64url",
    "parse_rfc3339",
    "problem",
    "rank_challenges",
    "read_credential",
    "rfc3339",
    "wire_text",
]

_jcs: Callable[[Any], bytes] | None
try:  # the "payments" extra
    from rfc8785 import dumps as _jcs
except ImportError:  # pragma: no cover - checked by ReceiptVerifier at start-up
    _jcs = None

PAYMENT_AUTHORIZATION = "Payment-Authorization"
"""The one field a challenge's ``header`` parameter may select (§"Credentials")."""

BOUND = ("realm", "method", "intent", "request", "expires", "digest", "opaque")
"""The seven fixed slots of the challenge binding, in order (``header`` follows them when
present; ``description`` is never bound: it is for display only)."""

PROBLEMS = "https://paymentauth.org/problems/"
"""The canonical base of the draft's problem types (§"Error Response Format")."""

MAX_CREDENTIAL = 8192
"""Longest credential read (the draft asks servers to take at least 4 KB)."""

_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_RANGE = re.compile(r"\s*([a-z][a-z0-9:_-]*|\*)/([A-Za-z0-9-]+|\*)\s*"
                    r"(?:;\s*q\s*=\s*(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)\s*)?")
# Echoed values that take part in the binding: printable ASCII, and never "|" (the slot
# separator), so that the joined slots can be split only one way.
_SLOT = re.compile(r"[\x20-\x7b\x7d\x7e]*")


class CredentialError(ValueError):
    """A ``Payment`` credential that cannot be read (the message is safe to show)."""


def available() -> bool:
    """Whether RFC 8785 canonical JSON is installed (the ``payments`` extra)."""
    return _jcs is not None


def jcs_b64url(value: Mapping[str, Any]) -> str:
    """``value`` as RFC 8785 canonical JSON in base64url without padding (RFC 4648 §5)."""
    if _jcs is None:  # pragma: no cover - ReceiptVerifier refuses to start without it
        raise RuntimeError("RFC 8785 needs the 'payments' extra: pip install "
                           "'authguard[payments]'")
    return base64.urlsafe_b64encode(_jcs(dict(value))).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding; :class:`ValueError` for anything else."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def challenge_id(params: Mapping[str, str], key: bytes) -> str:
    """The challenge ``id`` for ``params`` under ``key`` (§"Challenge Binding", the
    recommended HMAC-SHA256 form): absent optional slots are empty strings; ``header``
    is appended only when present."""
    slots = [params.get(name, "") for name in BOUND]
    if "header" in params:
        slots.append(params["header"])
    mac = hmac.new(key, "|".join(slots).encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def rfc3339(ts: float) -> str:
    """``ts`` as an RFC 3339 UTC date-time, to the second (``expires``, ``timestamp``)."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    """The timestamp of an ``expires`` this server wrote; :class:`ValueError` otherwise."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def wire_text(text: str) -> str:
    """``text`` as the header parameter value that carries its UTF-8 octets (the str the
    server's Latin-1 header encoding turns into exactly those bytes)."""
    return text.encode("utf-8").decode("latin-1")


def problem(code: str) -> dict[str, str]:
    """The ``payment`` member naming the draft's problem type ``code``."""
    return {"problem_type": PROBLEMS + code}


def read_credential(token: str) -> dict[str, Any]:
    """Decode and check the shape of a credential (the part after ``Payment``).

    The echoed ``challenge`` must hold strings; the values that take part in the binding
    (and ``id`` and ``header``) must be printable ASCII without ``|``. ``description`` may
    be any text: it is not bound and never used, so a client that decoded its octets in
    another charset still pays. ``payload`` must be an object, ``source`` a string.

    Raises:
        CredentialError: The credential cannot be read.
    """
    try:
        if len(token) > MAX_CREDENTIAL:
            raise ValueError("too long")
        data = json.loads(b64url_decode(token))
        if not isinstance(data, dict):
            raise TypeError("not an object")
        challenge, payload = data["challenge"], data["payload"]
        if not isinstance(challenge, dict) or not isinstance(payload, dict):
            raise TypeError("not objects")
        for name in (*BOUND, "id", "header"):
            value = challenge.get(name, "")
            if not isinstance(value, str) or not _SLOT.fullmatch(value):
                raise TypeError(f"{name} is not printable ASCII")
        if not isinstance(challenge.get("description", ""), str):
            raise TypeError("description is not a string")
        if not isinstance(data.get("source", ""), str):
            raise TypeError("source is not a string")
    except (ValueError, TypeError, KeyError, binascii.Error, RecursionError):
        # RecursionError: JSON nested too deeply for the decoder (never a 500).
        raise CredentialError("The Payment credential could not be parsed: it must be "
                              "base64url JSON with 'challenge' and 'payload'.") from None
    return data


def _ranges(header: str) -> list[tuple[str, str, float]] | None:
    """``Accept-Payment`` as (method, intent, q) ranges; ``None`` when it is malformed."""
    out: list[tuple[str, str, float]] = []
    for item in header.split(","):
        if not item.strip():
            continue
        match = _RANGE.fullmatch(item)
        if match is None:
            return None
        out.append((match[1], match[2], float(match[3]) if match[3] else 1.0))
    return out


def _weight(challenge: Challenge, ranges: list[tuple[str, str, float]]) -> float | None:
    """The q of the most specific range that matches ``challenge`` (``None``: none does)."""
    best: tuple[int, float] | None = None
    method, intent = challenge.params.get("method"), challenge.params.get("intent")
    for want_method, want_intent, q in ranges:
        if want_method not in ("*", method) or want_intent not in ("*", intent):
            continue
        specific = (want_method != "*") * 2 + (want_intent != "*")
        if best is None or specific > best[0]:
            best = (specific, q)
    return None if best is None else best[1]


def rank_challenges(challenges: Sequence[Challenge], accept: str | None) -> list[Challenge]:
    """``challenges`` as ``Accept-Payment`` asks (§"Client Payment Preferences"): the
    ``Payment`` challenges that match a range with ``q>0``, by descending ``q`` (ties in
    the server's order), the other schemes' challenges where they were. An absent or
    malformed header, or one that matches none of them, changes nothing."""
    ranges = _ranges(accept) if accept else None
    if not ranges:
        return list(challenges)
    payment = [(i, c) for i, c in enumerate(challenges) if c.scheme.lower() == "payment"]
    weighted = [(w, i, c) for i, c in payment
                if (w := _weight(c, ranges)) is not None and w > 0]
    if not weighted:
        return list(challenges)
    ranked = iter(c for _, _, c in sorted(weighted, key=lambda t: (-t[0], t[1])))
    slots = {i for i, _ in payment}
    out: list[Challenge] = []
    for i, c in enumerate(challenges):
        if i not in slots:
            out.append(c)
        elif (nxt := next(ranked, None)) is not None:
            out.append(nxt)
    return out
