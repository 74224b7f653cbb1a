"""Signed single-use receipts in the IETF "Payment" HTTP authentication scheme.

draft-httpauth-payment-01: the 402 carries ``WWW-Authenticate: Payment id=…, realm=…,
method=…, intent=…, request=…, expires=…, opaque=…`` where ``id`` is an HMAC-SHA256 over
the seven bound parameters (§"Challenge Binding"; encoded as a JSON array, so no value can
spill into the next slot), so the server keeps no state per challenge. ``opaque`` binds the
challenge to the route and method it was issued for. The client pays, and sends
``Authorization: Payment <base64url JSON {challenge, payload}>`` — or the same value in
``Payment-Authorization``, so a Bearer token can travel alongside (the challenge's
``header`` parameter suggests it when the request has an identity; either field is
accepted).

The embedded method (``method="receipt"``) stands in for a payment processor: the proof in
``payload.receipt`` is an HMAC of the challenge id under a key derived from the same
secret, made by :meth:`ReceiptVerifier.pay` on the provider side. Each challenge is paid
for once: settlement consumes its id in a :class:`~authguard.stores.NonceStore` (atomic,
so of concurrent requests with one receipt exactly one passes) and answers with a
``Payment-Receipt`` header (§"Payment-Receipt Header").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from ..challenges import Challenge, HeaderValueError, checked_setting, quote
from ..errors import ConfigurationError
from ..stores.base import NonceStore
from .base import Offer, PaymentContext, PaymentRejected, b64json

__all__ = ["ReceiptVerifier"]

_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_METHOD = re.compile(r"[a-z]+")
_INTENT = re.compile(r"[A-Za-z0-9-]+")
_MAX_CREDENTIAL = 8192
_PA = "Payment-Authorization"
_BOUND = ("realm", "method", "intent", "request", "expires", "digest", "opaque")


def _b64url_decode(text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sendable(text: str) -> bool:
    try:
        quote(text)
    except HeaderValueError:
        return False
    return True


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _printable(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _route(ctx: PaymentContext) -> str:
    """What a challenge pays for: the method (HEAD counts as GET) and the path."""
    method = str(ctx.conn.scope.get("method", "GET"))
    return ("GET" if method == "HEAD" else method) + " " + ctx.resource


def _parse_rfc3339(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


class ReceiptVerifier:
    """The IETF ``Payment`` scheme with HMAC-bound challenges and single-use receipts.

    Args:
        secret: At least 32 bytes; binds challenge ids and signs receipts (keep it
            server-side). A list verifies with every key and signs with the last, for
            rotation.
        nonces: Where used challenge ids are remembered until they expire (Redis for many
            replicas).
        realm: The protection space (the ``realm`` parameter).
        method: The payment method identifier (lowercase letters).
        intent: The payment intent (``charge``: one payment per request).
        recipient: Who is paid, put in the ``request`` object when given.
        ttl: Seconds a challenge stays payable.
        header: The field the challenge suggests for the credential: ``"auto"``
            (``Payment-Authorization`` when the request has an identity, else
            ``Authorization``), or always one of the two. Either field is accepted.
        remember: How many recently issued challenges to keep for :meth:`authorization_for`
            (a stand-in payment provider in the same process, as in the example app);
            ``0`` (default): none.
    """

    name = "Payment"
    needs_identity = False

    def __init__(self, *, secret: bytes | str | list[bytes | str], nonces: NonceStore,
                 realm: str, method: str = "receipt", intent: str = "charge",
                 recipient: str | None = None, ttl: int = 300,
                 header: Literal["auto", "Authorization", "Payment-Authorization"] = "auto",
                 remember: int = 0) -> None:
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
        self.method = method
        self.intent = intent
        self.recipient = recipient
        self.ttl = ttl
        self.header = header
        self.nonces = nonces
        # Recently issued challenges, for the provider side (:meth:`authorization_for`).
        self.remember = max(0, remember)
        self._issued: OrderedDict[str, dict[str, str]] = OrderedDict()

    # -- binding -----------------------------------------------------------------------

    def _id(self, params: Mapping[str, str], key: bytes) -> str:
        slots = [params.get(name, "") for name in _BOUND]
        mac = hmac.new(key, json.dumps(slots, ensure_ascii=True).encode("ascii"),
                       hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def _receipt(self, challenge_id: str, key: bytes) -> str:
        mac = hmac.new(key, challenge_id.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    # -- the 402 -----------------------------------------------------------------------

    def challenge_params(self, ctx: PaymentContext) -> dict[str, str]:
        """A fresh, bound challenge for ``ctx`` (a new ``id`` every time)."""
        request: dict[str, str] = {"amount": format(ctx.price.amount, "f"),
                                   "currency": ctx.price.currency}
        if self.recipient:
            request["recipient"] = self.recipient
        params = {
            "realm": self.realm,
            "method": self.method,
            "intent": self.intent,
            "request": b64json(request, urlsafe=True),
            "expires": _rfc3339(ctx.now + self.ttl),
            "opaque": b64json({"nonce": secrets.token_urlsafe(12), "route": _route(ctx)},
                              urlsafe=True),
        }
        if self.header == _PA or (self.header == "auto" and ctx.identity is not None):
            params["header"] = _PA
        params = {"id": self._id(params, self._bind_keys[-1]), **params}
        if ctx.price.description and _sendable(ctx.price.description):
            params["description"] = ctx.price.description
        if self.remember:
            self._issued[params["id"]] = params
            while len(self._issued) > self.remember:
                self._issued.popitem(last=False)
        return params

    def offer(self, ctx: PaymentContext) -> Offer:
        """A ``Payment`` challenge, and its parameters in the body's offer."""
        params = self.challenge_params(ctx)
        body = {"scheme": "Payment", **params, **ctx.price.as_json(),
                "credential_header": params.get("header", "Authorization")}
        return Offer(body=body, challenges=[Challenge("Payment", params)])

    # -- the provider side ----------------------------------------------------------------

    def pay(self, challenge: Mapping[str, str], *, source: str | None = None) -> str:
        """The value for the credential header that pays ``challenge`` (what a payment
        provider hands the client once it has been paid): ``Payment <base64url>``."""
        key = self._receipt_keys[-1]
        echoed = {k: v for k, v in challenge.items() if k in (*_BOUND, "id", "header",
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
                    raise PaymentRejected("Send one Payment credential, not several.")
                field = "Authorization" if name == b"authorization" else _PA
                found = (rest.strip(), field)
        if found is None:
            return None
        token, field = found
        try:
            if len(token) > _MAX_CREDENTIAL:
                raise ValueError("too long")
            data = json.loads(_b64url_decode(token))
            challenge = data["challenge"]
            payload = data["payload"]
            if not isinstance(challenge, dict) or not isinstance(payload, dict):
                raise TypeError("not objects")
            if not all(isinstance(v, str) and _printable(v) for v in challenge.values()):
                raise TypeError("challenge values are not printable ASCII strings")
            receipt = payload.get("receipt")
            if receipt is not None and not (isinstance(receipt, str) and _printable(receipt)):
                raise TypeError("the receipt is not a printable ASCII string")
        except (ValueError, TypeError, KeyError, binascii.Error, RecursionError):
            # RecursionError: JSON nested too deeply for the decoder (never a 500).
            raise PaymentRejected("The Payment credential could not be parsed: it must be "
                                  "base64url JSON with 'challenge' and 'payload'.") from None
        return data, field

    async def verify(self, credential: tuple[dict[str, Any], str],
                     ctx: PaymentContext) -> tuple[str, float, bool]:
        """Check the binding, the route, the expiry, the amount and the receipt."""
        data, _field = credential
        ch: dict[str, str] = data["challenge"]
        given = ch.get("id", "")
        if not any(hmac.compare_digest(self._id(ch, k), given) for k in self._bind_keys):
            raise PaymentRejected("The payment challenge was not issued here or was altered.")
        if (ch.get("realm"), ch.get("method"), ch.get("intent")) != (
                self.realm, self.method, self.intent):
            raise PaymentRejected("The payment challenge is for another realm or method.")
        try:
            expires = _parse_rfc3339(ch.get("expires", ""))
            request = json.loads(_b64url_decode(ch.get("request", "")))
            amount = Decimal(request["amount"])
            currency = request["currency"]
            route = json.loads(_b64url_decode(ch.get("opaque", ""))).get("route")
        except (ValueError, KeyError, TypeError, AttributeError, InvalidOperation,
                binascii.Error):
            raise PaymentRejected("The payment challenge could not be read.") from None
        if route != _route(ctx):
            raise PaymentRejected("This payment challenge was issued for another route or "
                                  "method; pay the one this request was given.")
        if ctx.now >= expires:
            raise PaymentRejected(f"The payment challenge expired at {ch['expires']}; "
                                  "pay the fresh one.")
        if amount != ctx.price.amount or currency != ctx.price.currency:
            raise PaymentRejected(
                f"The payment is for {format(amount, 'f')} {str(currency)[:16]}; this request "
                f"costs {format(ctx.price.amount, 'f')} {ctx.price.currency}.")
        receipt = data["payload"].get("receipt")
        if not isinstance(receipt, str) or not any(
                hmac.compare_digest(self._receipt(given, k), receipt)
                for k in self._receipt_keys):
            raise PaymentRejected("The payment proof was not accepted.")
        return given, expires, False

    async def reserve(self, verified: tuple[str, float, bool],
                      ctx: PaymentContext) -> tuple[str, float, bool]:
        """Consume the challenge before the app runs (``settle="on_success"``), so one
        receipt never runs the app twice, even under concurrency."""
        challenge_id, expires, reserved = verified
        if not reserved:
            ttl = max(expires - ctx.now, 1.0) + 60.0
            if not await self.nonces.consume("payment:" + challenge_id, ttl):
                raise PaymentRejected("This payment was already used; each one pays for one "
                                      "request.")
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
                   "timestamp": _rfc3339(ctx.now), "reference": challenge_id}
        return {"Payment-Receipt": b64json(receipt, urlsafe=True)}
