"""Signed single-use receipts in the IETF "Payment" HTTP authentication scheme.

draft-httpauth-payment-01: the 402 carries ``WWW-Authenticate: Payment id=…, realm=…,
method=…, intent=…, request=…, expires=…, opaque=…`` where ``id`` is the HMAC-SHA256 of
§"Challenge Binding" (:func:`~authguard.payments.scheme.challenge_id`), so the server keeps
no state per challenge. ``opaque`` binds the challenge to the route and method it was
issued for. When the request has an identity, the challenge selects
``header="Payment-Authorization"`` (bound too), so that the identity's ``Authorization``
travels alongside; a credential counts only in the field its challenge selected
(§"Credentials").

The embedded method (``method="receipt"``) stands in for a payment processor: the proof in
``payload.receipt`` is an HMAC of the challenge id under a key derived from the same
secret, made by :meth:`ReceiptVerifier.pay` on the provider side. Each challenge is paid
for once: settlement consumes its id in a :class:`~authguard.stores.NonceStore` (atomic,
so of concurrent requests with one receipt exactly one passes) and answers with a
``Payment-Receipt`` header (§"Payment-Receipt Header").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from ..challenges import Challenge, checked_setting
from ..errors import ConfigurationError
from ..stores.base import NonceStore
from .base import Offer, PaymentContext, PaymentRejected, b64json
from .scheme import (
    BOUND,
    PAYMENT_AUTHORIZATION,
    CredentialError,
    available,
    b64url_decode,
    challenge_id,
    jcs_b64url,
    parse_rfc3339,
    problem,
    read_credential,
    rfc3339,
    wire_text,
)

__all__ = ["ReceiptVerifier"]

_METHOD = re.compile(r"[a-z]+")
_INTENT = re.compile(r"[A-Za-z0-9-]+")
_PA = PAYMENT_AUTHORIZATION
OpaqueFn = Callable[[PaymentContext], Mapping[str, Any]]


def _route(ctx: PaymentContext) -> str:
    """What a challenge pays for: the method (HEAD counts as GET) and the path."""
    method = str(ctx.conn.scope.get("method", "GET"))
    return ("GET" if method == "HEAD" else method) + " " + ctx.resource


def _rejected(detail: str, code: str) -> PaymentRejected:
    return PaymentRejected(detail, extensions=problem(code))


class ReceiptVerifier:
    """The IETF ``Payment`` scheme with HMAC-bound challenges and single-use receipts.

    Args:
        secret: At least 32 bytes; binds challenge ids and signs receipts (keep it
            server-side). A list verifies with every key and signs with the last, for
            rotation.
        nonces: Where used challenge ids are remembered until they expire (Redis for many
            replicas).
        realm: The protection space (the ``realm`` parameter; no ``|``).
        method: The payment method identifier (lowercase letters).
        intent: The payment intent (``charge``: one payment per request).
        recipient: Who is paid, put in the ``request`` object when given.
        ttl: Seconds a challenge stays payable.
        header: The field the challenge selects for the credential: ``"auto"``
            (``Payment-Authorization`` when the request has an identity, else
            ``Authorization``), or always one of the two. A credential counts only in the
            field its challenge selected.
        remember: How many recently issued challenges to keep for :meth:`authorization_for`
            (a stand-in payment provider in the same process, as in the example app);
            ``0`` (default): none.
        opaque: A callable of the request returning server-defined correlation data (a
            payment processor's intent id, say), put in the bound ``opaque`` object beside
            authguard's own ``nonce`` and ``route``. The draft asks for string values;
            others are written in RFC 8785 form too, so they survive a client's canonical
            re-encoding.

    Raises:
        ConfigurationError: A setting is unsafe, or the ``payments`` extra (RFC 8785
            canonical JSON) is not installed.
    """

    name = "Payment"
    needs_identity = False

    def __init__(self, *, secret: bytes | str | list[bytes | str], nonces: NonceStore,
                 realm: str, method: str = "receipt", intent: str = "charge",
                 recipient: str | None = None, ttl: int = 300,
                 header: Literal["auto", "Authorization", "Payment-Authorization"] = "auto",
                 remember: int = 0, opaque: OpaqueFn | None = None) -> None:
        if not available():
            raise ConfigurationError("ReceiptVerifier: RFC 8785 canonical JSON needs the "
                                     "'payments' extra: pip install 'authguard[payments]'")
        keys = secret if isinstance(secret, list) else [secret]
        raw = [k.encode() if isinstance(k, str) else bytes(k) for k in keys]
        if not raw or any(len(k) < 32 for k in raw):
            raise ConfigurationError("ReceiptVerifier.secret: at least 32 bytes per key")
        self._bind_keys = [hmac.new(k, b"authguard payment challenge", hashlib.sha256).digest()
                           for k in raw]
        self._receipt_keys = [hmac.new(k, b"authguard payment receipt", hashlib.sha256).digest()
                              for k in raw]
        if not _METHOD.fullmatch(method):
            raise ConfigurationError("ReceiptVerifier.method: lowercase letters only")
        if not _INTENT.fullmatch(intent):
            raise ConfigurationError("ReceiptVerifier.intent: letters, digits and '-'")
        if ttl < 1:
            raise ConfigurationError("ReceiptVerifier.ttl: at least 1 second")
        if header not in ("auto", "Authorization", _PA):
            raise ConfigurationError("ReceiptVerifier.header: 'auto', 'Authorization' or "
                                     "'Payment-Authorization'")
        self.realm = checked_setting(realm, "ReceiptVerifier.realm")
        if not realm.isascii() or "|" in realm:
            # ASCII (the draft's advice for realms) and no "|", the binding's separator.
            raise ConfigurationError("ReceiptVerifier.realm: printable ASCII without '|'")
        self.method = method
        self.intent = intent
        self.recipient = recipient
        self.ttl = ttl
        self.header = header
        self.nonces = nonces
        self.opaque = opaque
        # Recently issued challenges, for the provider side (:meth:`authorization_for`).
        self.remember = max(0, remember)
        self._issued: OrderedDict[str, dict[str, str]] = OrderedDict()

    def _receipt(self, challenge_id: str, key: bytes) -> str:
        mac = hmac.new(key, challenge_id.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    # -- the 402 -----------------------------------------------------------------------

    def challenge_params(self, ctx: PaymentContext) -> dict[str, str]:
        """A fresh, bound challenge for ``ctx`` (a new ``id`` every time); the
        ``description`` is the price's text as it is (see :meth:`offer` for the wire)."""
        request: dict[str, str] = {"amount": format(ctx.price.amount, "f"),
                                   "currency": ctx.price.currency}
        if self.recipient:
            request["recipient"] = self.recipient
        correlation = dict(self.opaque(ctx)) if self.opaque is not None else {}
        opaque = {**correlation, "nonce": secrets.token_urlsafe(12), "route": _route(ctx)}
        try:
            opaque_b64 = jcs_b64url(opaque)
        except (TypeError, ValueError):  # rfc8785: not JSON, or an integer past 2**53
            raise ConfigurationError("ReceiptVerifier.opaque: the correlation data must be "
                                     "JSON that RFC 8785 can write") from None
        params = {
            "realm": self.realm,
            "method": self.method,
            "intent": self.intent,
            "request": jcs_b64url(request),
            "expires": rfc3339(ctx.now + self.ttl),
            "opaque": opaque_b64,
        }
        if self.header == _PA or (self.header == "auto" and ctx.identity is not None):
            params["header"] = _PA
        params = {"id": challenge_id(params, self._bind_keys[-1]), **params}
        if ctx.price.description:
            params["description"] = ctx.price.description
        if self.remember:
            self._issued[params["id"]] = params
            while len(self._issued) > self.remember:
                self._issued.popitem(last=False)
        return params

    def offer(self, ctx: PaymentContext) -> Offer:
        """A ``Payment`` challenge, and its parameters in the body's offer. The
        ``description`` goes out as UTF-8 (§"Internationalization Considerations")."""
        params = self.challenge_params(ctx)
        body = {"scheme": "Payment", **params, **ctx.price.as_json(),
                "credential_header": params.get("header", "Authorization")}
        wire = dict(params)
        if "description" in wire:
            wire["description"] = wire_text(wire["description"])
        return Offer(body=body, challenges=[Challenge("Payment", wire)])

    # -- the provider side ----------------------------------------------------------------

    def pay(self, challenge: Mapping[str, str], *, source: str | None = None) -> str:
        """The value for the credential header that pays ``challenge`` (what a payment
        provider hands the client once it has been paid): ``Payment <base64url>``. The
        challenge's parameters are echoed as they are given."""
        key = self._receipt_keys[-1]
        echoed = {k: v for k, v in challenge.items() if k in (*BOUND, "id", "header",
                                                             "description")}
        credential: dict[str, Any] = {"challenge": echoed,
                                      "payload": {"receipt": self._receipt(echoed["id"], key)}}
        if source is not None:
            credential["source"] = source
        return "Payment " + b64json(credential, urlsafe=True)

    def authorization_for(self, challenge_id: str) -> str | None:
        """:meth:`pay` for a challenge this process issued recently, by its id (kept only
        with ``remember``)."""
        params = self._issued.get(challenge_id)
        return None if params is None else self.pay(params)

    # -- the paid request ---------------------------------------------------------------

    def extract(self, ctx: PaymentContext) -> tuple[dict[str, Any], str] | None:
        """The decoded credential and the field it came in; no I/O."""
        found: tuple[str, str] | None = None
        for name, value in ctx.conn.scope["headers"]:
            if name in (b"authorization", b"payment-authorization"):
                text = value.decode("latin-1")
                scheme, _, rest = text.strip().partition(" ")
                if scheme.lower() != "payment":
                    continue
                if found is not None:
                    raise _rejected("Send one Payment credential, not several.",
                                    "malformed-credential")
                field = "Authorization" if name == b"authorization" else _PA
                found = (rest.strip(), field)
        if found is None:
            return None
        token, field = found
        try:
            data = read_credential(token)
        except CredentialError as exc:
            raise _rejected(str(exc), "malformed-credential") from None
        return data, field

    async def verify(self, credential: tuple[dict[str, Any], str],
                     ctx: PaymentContext) -> tuple[str, float, bool]:
        """Check the binding, the field, the route, the expiry, the amount and the
        receipt."""
        data, field = credential
        ch: dict[str, str] = data["challenge"]
        given = ch.get("id", "")
        if not any(hmac.compare_digest(challenge_id(ch, k), given) for k in self._bind_keys):
            raise _rejected("The payment challenge was not issued here or was altered.",
                            "invalid-challenge")
        if (ch.get("realm"), ch.get("method"), ch.get("intent")) != (
                self.realm, self.method, self.intent):
            raise _rejected("The payment challenge is for another realm or method.",
                            "invalid-challenge")
        selected = ch.get("header", "Authorization")  # bound: as the challenge said
        if field != selected:
            # §Credentials: a credential in any other field MUST NOT satisfy the challenge.
            raise _rejected(f"This payment challenge selected the {selected} field; send "
                            "the credential there.", "invalid-challenge")
        try:
            expires = parse_rfc3339(ch.get("expires", ""))
            request = json.loads(b64url_decode(ch.get("request", "")))
            amount = Decimal(request["amount"])
            currency = request["currency"]
            route = json.loads(b64url_decode(ch.get("opaque", ""))).get("route")
        except (ValueError, KeyError, TypeError, AttributeError, InvalidOperation):
            raise _rejected("The payment challenge could not be read.",
                            "invalid-challenge") from None
        if route != _route(ctx):
            raise _rejected("This payment challenge was issued for another route or "
                            "method; pay the one this request was given.", "invalid-challenge")
        if ctx.now >= expires:
            raise _rejected(f"The payment challenge expired at {ch['expires']}; "
                            "pay the fresh one.", "payment-expired")
        if amount != ctx.price.amount or currency != ctx.price.currency:
            raise _rejected(
                f"The payment is for {format(amount, 'f')} {str(currency)[:16]}; this request "
                f"costs {format(ctx.price.amount, 'f')} {ctx.price.currency}.",
                "payment-insufficient" if currency == ctx.price.currency
                and amount < ctx.price.amount else "verification-failed")
        receipt = data["payload"].get("receipt")
        if not isinstance(receipt, str) or not any(
                hmac.compare_digest(self._receipt(given, k).encode(), receipt.encode("utf-8"))
                for k in self._receipt_keys):
            raise _rejected("The payment proof was not accepted.", "verification-failed")
        return given, expires, False

    async def reserve(self, verified: tuple[str, float, bool],
                      ctx: PaymentContext) -> tuple[str, float, bool]:
        """Consume the challenge before the app runs (``settle="on_success"``), so one
        receipt never runs the app twice, even under concurrency."""
        challenge_id, expires, reserved = verified
        if not reserved:
            ttl = max(expires - ctx.now, 1.0) + 60.0
            if not await self.nonces.consume("payment:" + challenge_id, ttl):
                raise _rejected("This payment was already used; each one pays for one "
                                "request.", "invalid-challenge")
        return challenge_id, expires, True

    async def release(self, verified: tuple[str, float, bool], ctx: PaymentContext) -> None:
        """Give a reserved receipt back when nothing was served (needs a nonce store with
        ``release``; without one, the receipt stays used)."""
        release = getattr(self.nonces, "release", None)
        if verified[2] and release is not None:
            await release("payment:" + verified[0])

    async def settle(self, verified: tuple[str, float, bool],
                     ctx: PaymentContext) -> dict[str, str]:
        """Consume the challenge (once, atomically, unless :meth:`reserve` did) and make
        the ``Payment-Receipt``."""
        challenge_id, _, _ = await self.reserve(verified, ctx)
        receipt = {"status": "success", "method": self.method,
                   "timestamp": rfc3339(ctx.now), "reference": challenge_id}
        return {"Payment-Receipt": b64json(receipt, urlsafe=True)}
