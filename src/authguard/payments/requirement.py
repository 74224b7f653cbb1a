"""The payment requirement (HTTP 402, DESIGN §1 step 6, last): :class:`Payment`.

It asks each verifier for its credential, lets the first valid one through (settled by a
:class:`~authguard.payments.settlement.Settlement`), and otherwise answers one 402 with
every verifier's offer — or, when nothing in it can be paid over HTTP, 403 (no 402 without
a ``Payment`` challenge, draft-httpauth-payment §Usage of 402).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar, Literal

from starlette.requests import HTTPConnection

from ..challenges import Challenge
from ..composition import RESPONSE_HOOK, Context, Requirement
from ..errors import ConfigurationError, Refusal
from ..middleware import full_path
from ..reasons import Reason
from ..routing import serves_method
from .base import (
    PaymentContext,
    PaymentProviderError,
    PaymentRejected,
    PaymentVerifier,
    Price,
    PriceFn,
)
from .entitlements import PlanPurchase
from .receipts import ReceiptVerifier
from .scheme import problem, rank_challenges
from .settlement import PAID, Hooks, Settlement, provider_error

__all__ = ["Payment"]

log = logging.getLogger("authguard")


class Payment(Requirement):
    """The route needs a payment: a price and the verifiers that can accept one.

    ``Payment(Price(Decimal("0.01"), "USD"), verifiers=[receipts, x402])`` answers an unpaid
    request with one 402 listing an offer per verifier; a request that carries a valid proof
    of one of them passes, and the proof is settled before the app runs (or, with
    ``settle="on_success"``, when the app starts a 2xx response).

    Compose it with identity and permissions (``Authenticated() & Payment(...)``): it is
    always checked last, so a client never sees a price before it is known and allowed.

    Args:
        price: A :class:`Price`, or a callable of the request returning one. ``None`` only
            when every verifier is a plan (:class:`EntitlementVerifier`): the 402 then
            names no price.
        verifiers: The ways to pay, in order of preference.
        settle: ``"before"`` (default): settle before the app runs; ``"on_success"``: when
            the app starts a 2xx response (a failed response is not charged).
        checkout: A page where a person can pay or subscribe (the body's
            ``payment.checkout`` member).
    """

    order: ClassVar[int] = 3

    def __init__(self, price: Price | PriceFn | None = None, *,
                 verifiers: Sequence[PaymentVerifier],
                 settle: Literal["before", "on_success"] = "before",
                 checkout: str | None = None) -> None:
        if not verifiers:
            raise ConfigurationError("Payment.verifiers: name at least one verifier")
        for v in verifiers:
            missing = [m for m in ("offer", "extract", "verify") if not callable(
                getattr(v, m, None))]
            if missing or not isinstance(getattr(v, "needs_identity", None), bool):
                raise ConfigurationError(
                    f"Payment.verifiers: {type(v).__name__} is not a PaymentVerifier (it needs "
                    "offer(), extract(), verify() and a boolean needs_identity)")
        if price is None and not all(v.needs_identity for v in verifiers):
            raise ConfigurationError("Payment.price: needed for verifiers that take payments "
                                     "(only plans go without a price)")
        if settle not in ("before", "on_success"):
            raise ConfigurationError("Payment.settle: 'before' or 'on_success'")
        self.price = price
        self.verifiers: tuple[PaymentVerifier, ...] = tuple(verifiers)
        self.settle = settle
        self.checkout = checkout

    async def _price(self, conn: HTTPConnection) -> Price:
        if self.price is None:
            return _NO_PRICE
        if isinstance(self.price, Price):
            return self.price
        result = self.price(conn)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, Price):
            raise TypeError("the price callable must return a Price")
        return result

    async def check(self, ctx: Context) -> Refusal | None:
        if id(self) in ctx.conn.scope.get(PAID, ()):
            return None  # settled (or held) by a guard further out: a nested app
        if not serves_method(ctx.conn.scope.get("app"), ctx.conn.scope):
            return None  # the router answers 405: nothing to pay for, nothing is taken
        usable = [v for v in self.verifiers if ctx.identity is not None or not v.needs_identity]
        if not usable:
            # Plans need an identity: ask for one first, with no prices (DESIGN §1).
            return Refusal(Reason.CREDENTIALS_MISSING)
        conn = ctx.conn
        try:
            price = await self._price(conn)
        except (ValueError, TypeError, ArithmeticError) as exc:
            # A price made from the request's own parameters: bad ones are bad input.
            log.info("authguard: the price callable failed (%s)", type(exc).__name__)
            return Refusal(Reason.INVALID_REQUEST, "The price of this request could not be "
                           "worked out from its parameters; check them.")
        pctx = PaymentContext(conn=conn, identity=ctx.identity, price=price,
                              now=ctx.now, resource=_resource(conn))
        rejection: PaymentRejected | None = None
        for verifier in usable:
            try:
                credential = verifier.extract(pctx)
                if credential is None:
                    continue
                verified = await verifier.verify(credential, pctx)
            except PaymentRejected as exc:
                # A malformed proof (400) is the first thing to fix; a rejected proof
                # (payment_invalid) tells more than a missing plan.
                if rejection is None or _RANK.get(exc.reason, 1) > _RANK.get(rejection.reason, 1):
                    rejection = exc
                continue
            except PaymentProviderError as exc:
                return provider_error(exc)
            hook = Settlement(self, verifier, verified, pctx)
            earlier = conn.scope.get(RESPONSE_HOOK)
            conn.scope[RESPONSE_HOOK] = hook if earlier is None else Hooks(earlier, hook)
            return None
        if rejection is not None and rejection.reason is Reason.INVALID_REQUEST:
            # x402 v2 HTTP transport: a malformed payment payload is 400, with no offer.
            return Refusal(Reason.INVALID_REQUEST, rejection.detail)
        return self.refusal(pctx, rejection)

    def refusal(self, ctx: PaymentContext, rejection: PaymentRejected | None = None) -> Refusal:
        """The 402 for ``ctx``: every verifier's offer (fresh challenges, ordered by
        ``Accept-Payment``), and why; a 403 when none of them can be paid over HTTP."""
        offers: list[dict[str, Any]] = []
        challenges: list[Challenge] = []
        headers: dict[str, str] = {}
        top: dict[str, Any] = {}
        for verifier in self.verifiers:
            if verifier.needs_identity and ctx.identity is None:
                continue
            offer = verifier.offer(ctx)
            if offer is None:
                continue
            offers.append(offer.body)
            challenges.extend(offer.challenges)
            headers.update(offer.headers)
            top.update({k: v for k, v in offer.extensions.items() if k not in _RESERVED})
        accept = ctx.conn.headers.get("accept-payment")
        challenges = rank_challenges(challenges, accept)
        payment: dict[str, Any] = {"offers": offers}
        if self.price is not None:
            payment["price"] = ctx.price.as_json()
        if self.checkout is not None:
            payment["checkout"] = self.checkout
        reason = Reason.PAYMENT_REQUIRED
        detail: str | None = None
        hints: tuple[str, ...] | None = None
        if rejection is not None:
            reason, detail, hints = rejection.reason, rejection.detail, rejection.hints
        payable = any(c.scheme.lower() == "payment" for c in challenges)
        if payable:  # the draft's problem type, for clients of the Payment scheme
            payment.update(problem("verification-failed" if reason is Reason.PAYMENT_INVALID
                                   else "payment-required"))
        if rejection is not None:
            payment.update(rejection.extensions)
        extensions: dict[str, Any] = {**top, "payment": payment}
        if "checkout" in payment:
            extensions["checkout"] = payment["checkout"]
        if not payable and "PAYMENT-REQUIRED" not in headers:
            # draft-httpauth-payment §Usage of 402: no 402 without a Payment challenge.
            # Nothing here can be paid over HTTP (a plan sold elsewhere): 403, with the
            # offers and the checkout link, says what the client can do instead.
            return Refusal(Reason.FORBIDDEN, detail or "This needs a payment or a plan "
                           "that cannot be bought here; see 'payment'.",
                           extensions=extensions, hints=hints)
        if hints is not None:  # a plan to renew or buy, and an offer that pays here too
            hints = (*hints, "Or pay for it here: pay an offer in 'payment' (its Payment "
                     "challenge, or x402's PAYMENT-REQUIRED) and send the request with "
                     "that credential.")
        return Refusal(reason, detail, challenges=challenges, headers=headers,
                       extensions=extensions, hints=hints)

    def describe(self) -> str:
        if self.price is None:
            price = "a plan"
        elif isinstance(self.price, Price):
            price = f"{format(self.price.amount, 'f')} {self.price.currency}"
        else:
            price = "dynamic price"
        names = ", ".join(getattr(v, "name", type(v).__name__) for v in self.verifiers)
        return f"payment ({price}; {names})"

    def statuses(self) -> frozenset[int]:
        # 503: a store or provider that cannot be reached; 502: a provider's unreadable
        # answer (verifiers that call one, like x402's facilitator).
        # 403: nothing here that can be paid over HTTP (plans sold elsewhere, verifiers of
        # your own), so no 402.
        out = {402, 503}
        if all(v.needs_identity for v in self.verifiers):
            out.add(401)
        x402 = any(getattr(v, "facilitator", None) is not None for v in self.verifiers)
        if x402:
            out.add(502)
        if not x402 and not any(isinstance(v, ReceiptVerifier | PlanPurchase)
                                for v in self.verifiers):
            out.add(403)
        return frozenset(out)


# Which rejection a 402 reports when several verifiers rejected their proofs.
_RANK = {Reason.PAYMENT_REQUIRED: 0, Reason.PAYMENT_INVALID: 1, Reason.INVALID_REQUEST: 2}

# Problem members an offer's extensions never replace.
_RESERVED = frozenset({"type", "title", "status", "detail", "instance", "reason", "hints",
                       "request_id", "schemes", "payment", "checkout", "retry_after"})

_NO_PRICE = Price(Decimal(0), "USD")


def _resource(conn: HTTPConnection) -> str:
    return full_path(conn.scope)
