"""Plans and credits, keyed by the identity: the 402 of a subscription.

An :class:`EntitlementStore` knows what each subject has bought: a plan with an expiry, and
a balance of credits. :class:`EntitlementVerifier` lets an identity through with an active
plan (or, when the route costs credits, with enough of them — used up atomically when the
payment settles). A lapsed plan answers ``payment_required`` with a detail that names the
expiry and a ``checkout`` link; no identity at all answers 401 first, with no prices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigurationError
from ..reasons import Reason
from .base import Offer, PaymentContext, PaymentRejected

__all__ = [
    "Entitlement",
    "EntitlementStore",
    "EntitlementVerifier",
    "MemoryEntitlementStore",
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
        if self.checkout:
            extensions["checkout"] = self.checkout
        wanted = " or ".join(repr(p) for p in self.plans)
        if (entitlement is not None and entitlement.plan in self.plans
                and entitlement.expires_at is not None):
            when = _iso(entitlement.expires_at)
            extensions["expired_at"] = when
            return PaymentRejected(
                f"Your {entitlement.plan!r} plan expired at {when}; renew it to continue.",
                reason=Reason.PAYMENT_REQUIRED, extensions=extensions)
        if self.credits:
            left = entitlement.credits if entitlement is not None else 0
            plan = f"an active plan ({wanted}) or " if self.plans else ""
            return PaymentRejected(
                f"This needs {plan}{self.credits} credit{'s' if self.credits != 1 else ''}, "
                f"and {left} {'is' if left == 1 else 'are'} left.",
                reason=Reason.PAYMENT_REQUIRED, extensions=extensions)
        return PaymentRejected(f"This needs an active plan ({wanted}).",
                               reason=Reason.PAYMENT_REQUIRED, extensions=extensions)

    async def settle(self, verified: tuple[str, int], ctx: PaymentContext) -> dict[str, str]:
        """Use the credits (atomically) when credits paid; a plan needs nothing."""
        subject, credits = verified
        if credits and not await self.store.use_credits(subject, credits):
            raise self._lapsed(await self.store.get(subject))
        return {}
