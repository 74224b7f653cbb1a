"""The payment requirement and the verifier protocol (HTTP 402, DESIGN §1 step 6, last).

A :class:`Payment` requirement has a price (fixed, or a callable of the request) and one or
more :class:`PaymentVerifier` objects. Each verifier makes one *offer* in the 402 (a member
of the problem body's ``payment.offers``, plus its own challenges or headers), finds its
own credential in a request without I/O, verifies it, and settles it.

Settlement runs once the whole decision is taken, through the middleware's response hook:
by default *before* the app runs (``settle="before"``: unpaid requests have no side effects,
and streaming responses need no buffering), or with ``settle="on_success"`` when the app
starts a 2xx response, before its first byte is sent. Either way the response carries the
verifier's receipt headers (``Payment-Receipt``, ``PAYMENT-RESPONSE``).
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from starlette.requests import HTTPConnection
from starlette.types import Message

from ..challenges import Challenge
from ..composition import RESPONSE_HOOK, Context, Requirement
from ..errors import ConfigurationError, Refusal
from ..identity import Identity
from ..middleware import full_path
from ..reasons import Reason
from ..routing import serves_method
from .scheme import problem

__all__ = [
    "Offer",
    "Payment",
    "PaymentContext",
    "PaymentProviderError",
    "PaymentRejected",
    "PaymentVerifier",
    "Price",
    "PriceFn",
]

log = logging.getLogger("authguard")


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
    """

    def __init__(self, detail: str, *, reason: Reason = Reason.PAYMENT_INVALID,
                 extensions: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason
        self.extensions = dict(extensions or {})


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


def _provider_error(exc: PaymentProviderError) -> Refusal:
    log.warning("authguard: payment provider answered garbage: %s", exc)
    return Refusal(Reason.PAYMENT_PROVIDER_ERROR)


@dataclass(eq=False, slots=True)
class _Settlement:
    """The middleware's response hook for one verified payment.

    ``settle="before"`` (and every WebSocket): settled in :meth:`before_app`.
    ``settle="on_success"``: a verifier with ``reserve`` holds the proof before the app
    runs (one receipt never runs the app twice), then settles when the app starts a 2xx
    response; any other status gives the proof back (``release``), with nothing charged.
    """

    payment: Payment
    verifier: PaymentVerifier
    verified: Any
    ctx: PaymentContext
    headers: Mapping[str, str] | None = None
    reserved: bool = False

    async def _guarded(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except PaymentRejected as exc:
            raise self.payment.refusal(self.ctx, exc) from None
        except PaymentProviderError as exc:
            raise _provider_error(exc) from None

    async def _settle(self) -> None:
        settle = getattr(self.verifier, "settle", None)  # optional: nothing to complete
        self.headers = {} if settle is None else await self._guarded(
            settle(self.verified, self.ctx))
        self.reserved = False  # settled: never given back
        self.ctx.conn.scope.setdefault(PAID, set()).add(id(self.payment))

    async def on_failure(self) -> None:
        """The app failed before its response started (an exception, a refusal, a
        cancellation): a held proof is given back."""
        await self._release()

    async def settle_now(self) -> Mapping[str, str]:
        """Settle at once and return the receipt headers (where no middleware runs the
        hook: a FastAPI dependency on an app with ``install()`` only)."""
        if self.headers is None:
            await self._settle()
        return dict(self.headers or {})

    async def before_app(self) -> None:
        if self.payment.settle == "before" or self.ctx.conn.scope.get("type") == "websocket":
            await self._settle()
            return
        reserve = getattr(self.verifier, "reserve", None)
        if reserve is not None:
            self.verified = await self._guarded(reserve(self.verified, self.ctx))
            self.reserved = True
        # Held (or nothing to hold): a guard further in does not take this payment again.
        self.ctx.conn.scope.setdefault(PAID, set()).add(id(self.payment))

    async def on_start(self, message: Message) -> None:
        status = int(message.get("status", 200))
        if self.headers is None:
            if not 200 <= status < 300:
                await self._release()  # on_success: nothing served, nothing charged
                return
            await self._settle()
        # Settled (before the app ran, or just now). A Payment-Receipt only goes on a 2xx
        # (draft-httpauth-payment §Receipt Status Semantics: never on an error response);
        # other receipts (x402's PAYMENT-RESPONSE) say "charged" whatever the status.
        headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
        added = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                 for k, v in (self.headers or {}).items()
                 if 200 <= status < 300 or k.lower() != "payment-receipt"]
        # Receipts, and answers to a credential outside Authorization, must not be stored
        # by shared caches (draft-httpauth-payment §Caching; RFC 9111 §3.5 covers only
        # Authorization).
        if not added and not any(k == b"payment-authorization"
                                 for k, _ in self.ctx.conn.scope["headers"]):
            return
        kept = [(k, v) for k, v in headers if k != b"cache-control"
                or b"private" in v or b"no-store" in v]
        if not any(k == b"cache-control" for k, _ in kept):
            kept.append((b"cache-control", b"private"))
        if added:
            # Browser code may read the receipt (CORS hides other headers by default).
            names = b", ".join(k for k, _ in added)
            exposed = [(k, v) for k, v in kept if k == b"access-control-expose-headers"]
            if exposed:
                kept = [(k, v + b", " + names if k == b"access-control-expose-headers" else v)
                        for k, v in kept]
            else:
                kept.append((b"access-control-expose-headers", names))
        message["headers"] = kept + added

    async def _release(self) -> None:
        release = getattr(self.verifier, "release", None)
        if not self.reserved or release is None:
            return
        self.reserved = False
        try:
            await release(self.verified, self.ctx)
        except Exception:  # the response goes out; a lost receipt is logged, not raised
            log.warning("authguard: a reserved payment could not be released", exc_info=True)


class _Hooks:
    """Two payments on one request (two ``Payment`` requirements): both are settled."""

    def __init__(self, first: Any, second: Any) -> None:
        self.hooks = (first, second)

    async def before_app(self) -> None:
        for hook in self.hooks:
            await hook.before_app()

    async def on_start(self, message: Message) -> None:
        for hook in self.hooks:
            await hook.on_start(message)

    async def on_failure(self) -> None:
        for hook in self.hooks:
            await hook.on_failure()

    async def settle_now(self) -> Mapping[str, str]:
        out: dict[str, str] = {}
        for hook in self.hooks:
            out.update(await hook.settle_now())
        return out


PAID = "authguard.paid"
"""Scope key: the ``Payment`` requirements (by id) already settled or held for this
request, so that a nested app's guard does not take the same payment again."""


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
                return _provider_error(exc)
            hook = _Settlement(self, verifier, verified, pctx)
            earlier = conn.scope.get(RESPONSE_HOOK)
            conn.scope[RESPONSE_HOOK] = hook if earlier is None else _Hooks(earlier, hook)
            return None
        if rejection is not None and rejection.reason is Reason.INVALID_REQUEST:
            # x402 v2 HTTP transport: a malformed payment payload is 400, with no offer.
            return Refusal(Reason.INVALID_REQUEST, rejection.detail)
        return self.refusal(pctx, rejection)

    def refusal(self, ctx: PaymentContext, rejection: PaymentRejected | None = None) -> Refusal:
        """The 402 for ``ctx``: every verifier's offer (fresh challenges), and why."""
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
        payment: dict[str, Any] = {"offers": offers}
        if self.price is not None:
            payment["price"] = ctx.price.as_json()
        if self.checkout is not None:
            payment["checkout"] = self.checkout
        reason = Reason.PAYMENT_REQUIRED
        detail: str | None = None
        if rejection is not None:
            reason, detail = rejection.reason, rejection.detail
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
                           extensions=extensions)
        return Refusal(reason, detail, challenges=challenges, headers=headers,
                       extensions=extensions)

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
        out = {402, 503}
        if all(v.needs_identity for v in self.verifiers):
            out.add(401)
        if any(getattr(v, "facilitator", None) is not None for v in self.verifiers):
            out.add(502)
        return frozenset(out)


# Which rejection a 402 reports when several verifiers rejected their proofs.
_RANK = {Reason.PAYMENT_REQUIRED: 0, Reason.PAYMENT_INVALID: 1, Reason.INVALID_REQUEST: 2}

# Problem members an offer's extensions never replace.
_RESERVED = frozenset({"type", "title", "status", "detail", "instance", "reason", "hints",
                       "request_id", "schemes", "payment", "checkout", "retry_after"})

_NO_PRICE = Price(Decimal(0), "USD")


def _resource(conn: HTTPConnection) -> str:
    return full_path(conn.scope)
