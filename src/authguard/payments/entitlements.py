"""Plans and credits, keyed by the identity: the 402 of a subscription.

An :class:`EntitlementStore` knows what each subject has bought: a plan with an expiry, and
a balance of credits. :class:`EntitlementVerifier` lets an identity through with an active
plan (or, when the route costs credits, with enough of them — used up atomically when the
payment settles). A lapsed plan answers ``payment_required`` with a detail that names the
expiry and a ``checkout`` link; no identity at all answers 401 first, with no prices.

:class:`PlanPurchase` sells the plan through a verifier of the ``Payment`` scheme (a plan
purchase is a payment intent too), so that the 402 of a plan route carries a challenge a
client can pay; paying it serves the request and grants the plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigurationError
from ..reasons import Reason
from .base import Offer, PaymentContext, PaymentRejected, PaymentVerifier, Price

__all__ = [
    "Entitlement",
    "EntitlementStore",
    "EntitlementVerifier",
    "MemoryEntitlementStore",
    "PlanPurchase",
    "PlanStore",
]


@dataclass(frozen=True, slots=True)
class Entitlement:
    """What one subject has bought.

    Attributes:
        plan: The plan's name (``"pro"``), or ``None``.
        expires_at: When the plan ends (seconds since the epoch); ``None``: it does not.
        credits: Prepaid credits left.
    """

    plan: str | None = None
    expires_at: float | None = None
    credits: int = 0


@runtime_checkable
class EntitlementStore(Protocol):
    """Entitlements by subject. Methods may raise ``StoreUnavailable`` (→ 503)."""

    async def get(self, subject: str) -> Entitlement | None:
        """The subject's entitlement, if any."""
        ...

    async def use_credits(self, subject: str, amount: int) -> bool:
        """Take ``amount`` credits, atomically; ``False`` (and nothing taken) if too few."""
        ...


@runtime_checkable
class PlanStore(EntitlementStore, Protocol):
    """An :class:`EntitlementStore` that can also record a purchase."""

    async def set(self, subject: str, entitlement: Entitlement) -> None:
        """Give ``subject`` this entitlement."""
        ...


class MemoryEntitlementStore:
    """Entitlements in a dict, for one process (and the example app)."""

    def __init__(self, entitlements: Mapping[str, Entitlement] | None = None) -> None:
        self._data: dict[str, Entitlement] = dict(entitlements or {})

    async def get(self, subject: str) -> Entitlement | None:
        """The subject's entitlement, if any."""
        return self._data.get(subject)

    async def set(self, subject: str, entitlement: Entitlement) -> None:
        """Give ``subject`` this entitlement (after a checkout, say)."""
        self._data[subject] = entitlement

    async def use_credits(self, subject: str, amount: int) -> bool:
        """Take ``amount`` credits; no suspension point between check and write."""
        current = self._data.get(subject)
        if current is None or current.credits < amount:
            return False
        self._data[subject] = replace(current, credits=current.credits - amount)
        return True


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EntitlementVerifier:
    """An active plan (one of ``plans``) or enough credits pays for the request.

    Args:
        store: Where entitlements are kept.
        plans: Plans that include the route.
        credits: Credits one request costs instead (``0``: only plans pay).
        checkout: Where a person buys or renews a plan (the ``checkout`` member).
    """

    name = "plan"
    needs_identity = True

    def __init__(self, store: EntitlementStore, *, plans: Sequence[str] = (),
                 credits: int = 0, checkout: str | None = None) -> None:
        if not plans and credits <= 0:
            raise ConfigurationError("EntitlementVerifier: name plans, credits, or both")
        if credits < 0:
            raise ConfigurationError("EntitlementVerifier.credits: at least 0")
        self.store = store
        self.plans = tuple(plans)
        self.credits = credits
        self.checkout = checkout

    def offer(self, ctx: PaymentContext) -> Offer:
        """The plans (and credit price) that pay for this route."""
        body: dict[str, Any] = {"scheme": "plan"}
        if self.plans:
            body["plans"] = list(self.plans)
        if self.credits:
            body["credits"] = self.credits
        if self.checkout:
            body["checkout"] = self.checkout
        return Offer(body=body)

    def extract(self, ctx: PaymentContext) -> str | None:
        """The identity's subject: plans are keyed by it."""
        return None if ctx.identity is None else ctx.identity.subject

    async def verify(self, credential: str, ctx: PaymentContext) -> tuple[str, int]:
        """An active plan (no credits used) or enough credits (used when settled)."""
        entitlement = await self.store.get(credential)
        if entitlement is not None:
            plan = entitlement.plan
            if plan is not None and plan in self.plans:
                expires = entitlement.expires_at
                if expires is None or ctx.now < expires:
                    return credential, 0
            if self.credits and entitlement.credits >= self.credits:
                return credential, self.credits
        raise self._lapsed(entitlement)

    def _lapsed(self, entitlement: Entitlement | None) -> PaymentRejected:
        extensions: dict[str, Any] = {}
        where = " at the page in 'checkout'" if self.checkout else ""
        again = "then send this request again as it is: an active plan needs no payment proof."
        if self.checkout:
            extensions["checkout"] = self.checkout
        wanted = " or ".join(repr(p) for p in self.plans)
        if (entitlement is not None and entitlement.plan in self.plans
                and entitlement.expires_at is not None):
            when = _iso(entitlement.expires_at)
            extensions["expired_at"] = when
            return PaymentRejected(
                f"Your {entitlement.plan!r} plan expired at {when}; renew it to continue.",
                reason=Reason.PAYMENT_REQUIRED, extensions=extensions,
                hints=(f"Renew your plan{where or ' where you bought it'}, {again}",))
        if self.credits:
            left = entitlement.credits if entitlement is not None else 0
            plan = f"an active plan ({wanted}) or " if self.plans else ""
            return PaymentRejected(
                f"This needs {plan}{self.credits} credit{'s' if self.credits != 1 else ''}, "
                f"and {left} {'is' if left == 1 else 'are'} left.",
                reason=Reason.PAYMENT_REQUIRED, extensions=extensions,
                hints=(f"Buy credits{' or a plan' if self.plans else ''}{where}, then send "
                       "this request again as it is.",))
        return PaymentRejected(f"This needs an active plan ({wanted}).",
                               reason=Reason.PAYMENT_REQUIRED, extensions=extensions,
                               hints=(f"Get one of the plans named in the detail{where}, "
                                      f"{again}",))

    async def settle(self, verified: tuple[str, int], ctx: PaymentContext) -> dict[str, str]:
        """Use the credits (atomically) when credits paid; a plan needs nothing."""
        subject, credits = verified
        if credits and not await self.store.use_credits(subject, credits):
            raise self._lapsed(await self.store.get(subject))
        return {}


class PlanPurchase:
    """Sells a plan through a ``Payment``-scheme verifier: the plan's price is offered as a
    challenge, and paying it serves the request and grants (or extends) the plan.

    ``Payment(verifiers=[EntitlementVerifier(store, plans=["pro"]), PlanPurchase(receipts,
    store, plan="pro", price=Price(Decimal("9.00")), seconds=30 * 86_400)])``: a subscriber
    passes on the plan; anyone else gets a 402 whose challenge buys it.

    Args:
        seller: The verifier that takes the payment (a :class:`ReceiptVerifier`).
        store: Where the plan is recorded once paid (needs ``set``).
        plan: The plan sold.
        price: What the plan costs (its ``description`` is shown to the payer).
        seconds: How long one purchase lasts, added to a plan still running.
    """

    name = "plan purchase"
    needs_identity = True

    def __init__(self, seller: PaymentVerifier, store: PlanStore, *, plan: str, price: Price,
                 seconds: float) -> None:
        if seller.needs_identity:
            raise ConfigurationError("PlanPurchase.seller: a verifier that takes payments "
                                     "(a ReceiptVerifier), not a plan")
        if not callable(getattr(store, "set", None)):
            raise ConfigurationError("PlanPurchase.store: needs set(subject, entitlement)")
        if not plan or seconds <= 0:
            raise ConfigurationError("PlanPurchase: a plan name and seconds > 0")
        self.seller = seller
        self.store = store
        self.plan = plan
        self.price = price
        self.seconds = seconds

    def _ctx(self, ctx: PaymentContext) -> PaymentContext:
        return replace(ctx, price=self.price)

    def offer(self, ctx: PaymentContext) -> Offer | None:
        """The seller's offer at the plan's price, naming the plan."""
        offer = self.seller.offer(self._ctx(ctx))
        if offer is not None:
            offer.body = {**offer.body, "plan": self.plan, "period_seconds": self.seconds}
        return offer

    def extract(self, ctx: PaymentContext) -> Any | None:
        """The seller's credential, if any."""
        return self.seller.extract(self._ctx(ctx))

    async def verify(self, credential: Any, ctx: PaymentContext) -> Any:
        """The seller's check, at the plan's price."""
        return await self.seller.verify(credential, self._ctx(ctx))

    async def reserve(self, verified: Any, ctx: PaymentContext) -> Any:
        """Hold the seller's proof (``settle="on_success"``), where it can be held."""
        reserve = getattr(self.seller, "reserve", None)
        return verified if reserve is None else await reserve(verified, self._ctx(ctx))

    async def release(self, verified: Any, ctx: PaymentContext) -> None:
        """Give the held proof back."""
        release = getattr(self.seller, "release", None)
        if release is not None:
            await release(verified, self._ctx(ctx))

    async def settle(self, verified: Any, ctx: PaymentContext) -> Mapping[str, str]:
        """Settle the payment, then record the plan: from now, or from the end of the
        same plan when it is still running."""
        settle = getattr(self.seller, "settle", None)
        headers = {} if settle is None else await settle(verified, self._ctx(ctx))
        assert ctx.identity is not None  # noqa: S101 - needs_identity
        subject = ctx.identity.subject
        current = await self.store.get(subject) or Entitlement()
        start = ctx.now
        if current.plan == self.plan and current.expires_at is not None:
            start = max(start, current.expires_at)
        await self.store.set(subject, replace(current, plan=self.plan,
                                              expires_at=start + self.seconds))
        return headers
