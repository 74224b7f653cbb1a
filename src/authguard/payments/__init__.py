"""HTTP 402: the payment requirement, its verifiers, plans, receipts and x402.

* :class:`Payment` — the requirement (checked after identity and permissions), with a
  :class:`Price` and one or more :class:`PaymentVerifier` objects, one offer each.
* :class:`EntitlementVerifier` — plans with an expiry and credits, keyed by the identity.
* :class:`PlanPurchase` — sells a plan through a ``Payment`` challenge, so that the 402 of
  a plan route can be paid.
* :class:`ReceiptVerifier` — the IETF ``Payment`` HTTP authentication scheme with signed,
  single-use receipts.
* :class:`authguard.payments.x402.X402Verifier` — x402 v2 through a facilitator (needs the
  ``x402`` extra; import it from :mod:`authguard.payments.x402`).
* :func:`authguard.client.pay_and_retry` — the client side: pay through a callback and
  retry once.
"""

from .base import (
    Offer,
    PaymentContext,
    PaymentProviderError,
    PaymentRejected,
    PaymentVerifier,
    Price,
    PriceFn,
)
from .entitlements import (
    Entitlement,
    EntitlementStore,
    EntitlementVerifier,
    MemoryEntitlementStore,
    PlanPurchase,
    PlanStore,
)
from .receipts import ReceiptVerifier
from .requirement import Payment

__all__ = [
    "Entitlement",
    "EntitlementStore",
    "EntitlementVerifier",
    "MemoryEntitlementStore",
    "Offer",
    "Payment",
    "PaymentContext",
    "PaymentProviderError",
    "PaymentRejected",
    "PaymentVerifier",
    "PlanPurchase",
    "PlanStore",
    "Price",
    "PriceFn",
    "ReceiptVerifier",
]
