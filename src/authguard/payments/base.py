"""What payments are made of: prices, offers, the verifier protocol and its errors.

A :class:`~authguard.payments.Payment` requirement (:mod:`.requirement`) has a price
(:class:`Price`, fixed or a callable of the request) and one or more
:class:`PaymentVerifier` objects. Each verifier makes one *offer* in the 402 (an
:class:`Offer`: a member of the problem body's ``payment.offers``, plus its own challenges
or headers), finds its own credential in a request without I/O, verifies it, and settles
it (:mod:`.settlement`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, runtime_checkable

from starlette.requests import HTTPConnection

from ..challenges import Challenge
from ..errors import ConfigurationError
from ..identity import Identity
from ..reasons import Reason

__all__ = [
    "Offer",
    "PaymentContext",
    "PaymentProviderError",
    "PaymentRejected",
    "PaymentVerifier",
    "Price",
    "PriceFn",
    "b64json",
]

_MAX_DESCRIPTION = 256


@dataclass(frozen=True, slots=True)
class Price:
    """What one request costs.

    Attributes:
        amount: The amount in the currency's main unit (``Decimal("0.01")`` is one cent).
        currency: An ISO 4217 code (``"USD"``) or an asset name.
        description: What is paid for, shown to the payer.
    """

    amount: Decimal
    currency: str = "USD"
    description: str | None = None

    def __post_init__(self) -> None:
        try:
            # A float goes through its shortest repr: 0.1 is Decimal("0.1"), not 0.1000…0555.
            raw = str(self.amount) if isinstance(self.amount, float) else self.amount
            amount = Decimal(raw)
        except (InvalidOperation, TypeError, ValueError):
            raise ConfigurationError(f"Price.amount: {self.amount!r} is not a number") from None
        if not amount.is_finite() or amount < 0:
            raise ConfigurationError("Price.amount: must be a finite amount of at least 0")
        object.__setattr__(self, "amount", amount)
        if not self.currency or not self.currency.isascii() or not self.currency.isprintable():
            raise ConfigurationError("Price.currency: must be a non-empty ASCII name")
        # Any language, one line: it is sent in a challenge (as UTF-8) and in the body.
        if self.description is not None and not (
                isinstance(self.description, str) and self.description.isprintable()
                and len(self.description) <= _MAX_DESCRIPTION):
            raise ConfigurationError("Price.description: printable text (no control "
                                     f"characters or line breaks), at most {_MAX_DESCRIPTION}"
                                     " characters")

    def as_json(self) -> dict[str, Any]:
        """The price as JSON members (the amount as a decimal string)."""
        out: dict[str, Any] = {"amount": format(self.amount, "f"), "currency": self.currency}
        if self.description:
            out["description"] = self.description
        return out


PriceFn = Callable[[HTTPConnection], Price | Awaitable[Price]]
"""A dynamic price: a callable of the request, sync or async."""


@dataclass(slots=True)
class PaymentContext:
    """What a verifier sees: the request, the identity (if any), the price and the time."""

    conn: HTTPConnection
    identity: Identity | None
    price: Price
    now: float
    resource: str


@dataclass(slots=True)
class Offer:
    """One way to pay, as a verifier advertises it in a 402.

    Attributes:
        body: The member of the problem body's ``payment.offers`` list.
        challenges: ``WWW-Authenticate`` challenges (the IETF ``Payment`` scheme).
        headers: Extra response headers (the x402 ``PAYMENT-REQUIRED``).
        extensions: Top-level members of the problem body (x402 v1's ``x402Version`` and
            ``accepts``); the standard members and ``payment`` are never replaced.
    """

    body: dict[str, Any]
    challenges: list[Challenge] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


class PaymentRejected(Exception):
    """A payment proof (or plan) was looked at and does not pay for this request: 402.

    Args:
        detail: A safe, human explanation (never echoes the proof).
        reason: ``payment_invalid`` (expired, replayed, wrong amount, declined),
            ``payment_required`` (no plan, a lapsed plan), or ``invalid_request`` (a proof
            too malformed to be a payment attempt: 400, as x402 v2's HTTP transport asks).
        extensions: Extra members of the ``payment`` object (e.g. ``checkout``).
        hints: Hints that fit this case, replacing the reason's (a lapsed plan is renewed,
            not paid for with a proof).
    """

    def __init__(self, detail: str, *, reason: Reason = Reason.PAYMENT_INVALID,
                 extensions: Mapping[str, Any] | None = None,
                 hints: Sequence[str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason
        self.extensions = dict(extensions or {})
        self.hints = tuple(hints) if hints is not None else None


class PaymentProviderError(Exception):
    """The payment provider answered something that cannot be read: 502, never 402."""


@runtime_checkable
class PaymentVerifier(Protocol):
    """One way to pay for a route. See :mod:`authguard.payments` for the built-in ones."""

    needs_identity: bool
    """``True`` when the verifier works only for an authenticated identity (plans)."""

    def offer(self, ctx: PaymentContext) -> Offer | None:
        """The offer made in a 402 for this request (``None``: none for this price)."""
        ...

    def extract(self, ctx: PaymentContext) -> Any | None:
        """This verifier's credential in the request, without I/O (``None``: none of mine).

        Raises:
            PaymentRejected: A credential of this verifier that cannot be parsed.
        """
        ...

    async def verify(self, credential: Any, ctx: PaymentContext) -> Any:
        """Check the credential; return what :meth:`settle` needs.

        Raises:
            PaymentRejected: The proof does not pay for this request (402).
            AuthUnavailable: The provider cannot be reached (503).
            PaymentProviderError: The provider's answer cannot be read (502).
        """
        ...

    async def settle(self, verified: Any, ctx: PaymentContext) -> Mapping[str, str]:
        """Complete the payment (consume a receipt, settle on chain, use a credit) and return
        the headers the successful response carries. Raises as :meth:`verify` does.

        Optional at run time: a verifier without ``settle`` (a proof that is complete once
        verified) settles with no headers.

        Also optional: ``async reserve(verified, ctx) -> verified`` holds the proof before
        the app runs with ``settle="on_success"`` (its result is what ``settle`` then
        gets), and ``async release(verified, ctx)`` gives it back when the app answered
        something other than 2xx."""
        ...


def b64json(value: Mapping[str, Any], *, urlsafe: bool = False) -> str:
    """``value`` as compact JSON in base64 (standard with padding, or URL-safe without)."""
    raw = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    if urlsafe:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return base64.b64encode(raw).decode("ascii")
