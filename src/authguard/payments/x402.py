"""x402 v2: ``PAYMENT-REQUIRED`` offers, ``PAYMENT-SIGNATURE`` proofs, a facilitator.

Needs the ``x402`` extra (``pip install 'authguard[x402]'``: httpx). The 402 carries
``PAYMENT-REQUIRED``: base64 (standard alphabet, padded) JSON ``{x402Version: 2, resource,
accepts: [...]}``. The client retries with ``PAYMENT-SIGNATURE`` (``X-PAYMENT`` too, with
``accept_v1=True``): base64 JSON ``{x402Version, payload, accepted, resource}``. The proof is
checked against this request's own requirements (an offer for another amount, asset,
network or recipient is ``payment_invalid``), then verified and settled by a facilitator's
``POST /verify`` and ``POST /settle`` over an async client: nothing blocks the event loop.
The successful response carries ``PAYMENT-RESPONSE`` (base64 JSON of the settlement).

x402 v1 (``accept_v1=True``): the 402's problem body also carries the v1 members
``x402Version: 1`` and ``accepts`` (v1 requirements: ``maxAmountRequired``, ``resource``…),
a v1 proof (``{x402Version: 1, scheme, network, payload}`` in ``X-PAYMENT``) must name this
request's scheme and network, the facilitator gets v1-shaped requirements, and the success
carries ``X-PAYMENT-RESPONSE`` beside ``PAYMENT-RESPONSE``. Without the flag a v1 proof is
``payment_invalid``.

A facilitator that cannot be reached (or answers 5xx) is a 503 ``auth_unavailable`` with
``Retry-After``; one that answers garbage is a 502 ``payment_provider_error``. Neither is a
402: a client told to pay again might pay twice.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from decimal import ROUND_CEILING, Decimal
from typing import Any

import httpx

from ..errors import AuthUnavailable, ConfigurationError
from ..reasons import Reason
from .base import Offer, PaymentContext, PaymentProviderError, PaymentRejected, b64json

__all__ = ["FacilitatorClient", "X402Verifier"]

_MAX_HEADER = 16_384
_SAFE_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class FacilitatorClient:
    """An async client of an x402 facilitator (``/verify`` and ``/settle``).

    Args:
        url: The facilitator's base URL.
        timeout: Seconds per call; past it the payment is 503 ``auth_unavailable``.
        retry_after: The ``Retry-After`` sent when the facilitator is unavailable.
        headers: Extra request headers (an API key, say).
        transport: An httpx transport (tests use ``httpx.ASGITransport``).
    """

    def __init__(self, url: str, *, timeout: float = 10.0, retry_after: int = 5,
                 headers: dict[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not url.startswith(("https://", "http://")):
            raise ConfigurationError("FacilitatorClient.url: an http(s) URL")
        self.url = url.rstrip("/")
        self.retry_after = retry_after
        self._client = httpx.AsyncClient(timeout=timeout, headers=headers, transport=transport)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path``; the decoded JSON object answered."""
        try:
            response = await self._client.post(self.url + path, json=body)
        except httpx.HTTPError as exc:
            raise AuthUnavailable(f"x402 facilitator unreachable: {type(exc).__name__}",
                                  retry_after=self.retry_after) from None
        if response.status_code >= 500:
            raise AuthUnavailable(f"x402 facilitator answered {response.status_code}",
                                  retry_after=self.retry_after)
        try:
            data = response.json()
        except (ValueError, RecursionError):  # not JSON, or nested past the decoder
            raise PaymentProviderError(f"{path}: {response.status_code}, not JSON") from None
        if not isinstance(data, dict):
            raise PaymentProviderError(f"{path}: not a JSON object")
        return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: cannot be sent on


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number too large")  # 1e999: cannot be sent on either
    return value


def _code(value: Any) -> str:
    """A facilitator's reason code, only if it is a short safe token."""
    return value if isinstance(value, str) and _SAFE_CODE.fullmatch(value) else "rejected"


class X402Verifier:
    """Payments by x402 v2 through a facilitator.

    Args:
        facilitator: The facilitator client.
        network: CAIP-2 network id (``"eip155:8453"``).
        asset: The asset's address or name.
        pay_to: The recipient.
        currency: The price currency this asset stands for (``"USD"`` for USDC).
        decimals: Decimals of the asset: a price of 0.01 with 6 decimals is ``"10000"``.
        scheme: The x402 scheme (``"exact"``).
        max_timeout_seconds: How long the payment authorization stays valid.
        extra: Scheme-specific members of the requirement (``{"name", "version"}``…).
        accept_v1: Also read the proof from ``X-PAYMENT`` (x402 v1 clients).
    """

    name = "x402"
    needs_identity = False

    def __init__(self, *, facilitator: FacilitatorClient, network: str, asset: str,
                 pay_to: str, currency: str = "USD", decimals: int = 6,
                 scheme: str = "exact", max_timeout_seconds: int = 60,
                 extra: dict[str, Any] | None = None, accept_v1: bool = False) -> None:
        if decimals < 0 or max_timeout_seconds < 1:
            raise ConfigurationError("X402Verifier: decimals >= 0, max_timeout_seconds >= 1")
        self.facilitator = facilitator
        self.network = network
        self.asset = asset
        self.pay_to = pay_to
        self.currency = currency
        self.decimals = decimals
        self.scheme = scheme
        self.max_timeout_seconds = max_timeout_seconds
        self.extra = dict(extra or {})
        self.accept_v1 = accept_v1

    def requirements(self, ctx: PaymentContext) -> dict[str, Any] | None:
        """This request's ``accepts[]`` entry (``None`` if priced in another currency)."""
        if ctx.price.currency != self.currency:
            return None
        atomic = (ctx.price.amount * (Decimal(10) ** self.decimals)).to_integral_value(
            rounding=ROUND_CEILING)
        return {
            "scheme": self.scheme, "network": self.network, "asset": self.asset,
            "amount": str(int(atomic)), "payTo": self.pay_to,
            "maxTimeoutSeconds": self.max_timeout_seconds, "extra": dict(self.extra),
        }

    def requirements_v1(self, ctx: PaymentContext) -> dict[str, Any] | None:
        """This request's requirement in the x402 v1 shape."""
        v2 = self.requirements(ctx)
        if v2 is None:
            return None
        return {
            "scheme": v2["scheme"], "network": v2["network"],
            "maxAmountRequired": v2["amount"], "resource": str(ctx.conn.url),
            "description": ctx.price.description or "", "mimeType": "application/json",
            "payTo": v2["payTo"], "maxTimeoutSeconds": v2["maxTimeoutSeconds"],
            "asset": v2["asset"], "extra": v2["extra"],
        }

    def _resource(self, ctx: PaymentContext) -> dict[str, Any]:
        out: dict[str, Any] = {"url": str(ctx.conn.url)}
        if ctx.price.description:
            out["description"] = ctx.price.description
        return out

    def offer(self, ctx: PaymentContext) -> Offer | None:
        """The ``PAYMENT-REQUIRED`` header, and the same requirement in the body."""
        accepts = self.requirements(ctx)
        if accepts is None:
            return None
        required = {"x402Version": 2, "resource": self._resource(ctx), "accepts": [accepts]}
        extensions: dict[str, Any] = {}
        if self.accept_v1:  # v1 clients read the body: {x402Version: 1, accepts, error}
            extensions = {"x402Version": 1, "accepts": [self.requirements_v1(ctx)]}
        return Offer(body={"scheme": "x402", "x402Version": 2, "accepts": [accepts]},
                     headers={"PAYMENT-REQUIRED": b64json(required)},
                     extensions=extensions)

    def extract(self, ctx: PaymentContext) -> dict[str, Any] | None:
        """The decoded ``PAYMENT-SIGNATURE`` (or ``X-PAYMENT``) value; no I/O."""
        names = (b"payment-signature", b"x-payment") if self.accept_v1 else (
            b"payment-signature",)
        raw = next((v for n, v in ctx.conn.scope["headers"] if n in names), None)
        if raw is None:
            return None
        try:
            if len(raw) > _MAX_HEADER:
                raise ValueError("too long")
            data = json.loads(base64.b64decode(raw, validate=True),
                              parse_constant=_no_constant, parse_float=_finite_float)
            if not isinstance(data, dict) or not isinstance(data.get("payload"), dict):
                raise ValueError("no payload")
            version = data.get("x402Version", 1)
            if type(version) is not int:
                raise ValueError("no x402Version")
            if version == 2 and not isinstance(data.get("accepted"), dict):
                raise ValueError("no accepted requirement")
            if version == 1 and not (isinstance(data.get("scheme"), str)
                                     and isinstance(data.get("network"), str)):
                raise ValueError("no scheme and network")
        except (ValueError, binascii.Error, RecursionError):
            # x402 v2 HTTP transport: a malformed payment payload is 400, not 402.
            # RecursionError: JSON nested too deeply for the decoder (never a 500).
            raise PaymentRejected("The x402 payment header could not be parsed: it must be "
                                  "base64 JSON with x402Version 2, 'payload' and "
                                  "'accepted'.", reason=Reason.INVALID_REQUEST) from None
        if version not in ((1, 2) if self.accept_v1 else (2,)):
            # Well formed, but a version this route does not take: a payment that failed.
            raise PaymentRejected(f"x402Version {version} is not accepted here; pay the "
                                  "offer in PAYMENT-REQUIRED (x402Version 2).")
        return data

    async def verify(self, credential: dict[str, Any],
                     ctx: PaymentContext) -> tuple[dict[str, Any], dict[str, Any]]:
        """Match the proof to this request's requirement, then ask the facilitator."""
        wanted = self.requirements(ctx)
        if wanted is None:
            raise PaymentRejected("This request is not payable with x402.")
        version = credential.get("x402Version", 1)
        requirements: dict[str, Any] | None = wanted
        if version == 1:  # only with accept_v1 (extract)
            for key in ("scheme", "network"):
                if credential.get(key) != wanted[key]:
                    raise PaymentRejected(
                        f"The x402 payment does not match this request's requirement "
                        f"({key}); pay the one in 'accepts'.")
            requirements = self.requirements_v1(ctx)
        else:
            accepted = credential.get("accepted")
            assert isinstance(accepted, dict)  # noqa: S101 - checked by extract
            for key in ("scheme", "network", "asset", "amount", "payTo"):
                if str(accepted.get(key)) != str(wanted[key]):
                    raise PaymentRejected(
                        f"The x402 payment does not match this request's requirement "
                        f"({key}); pay the one in PAYMENT-REQUIRED.")
        body = {"x402Version": version, "paymentPayload": credential,
                "paymentRequirements": requirements}
        answer = await self.facilitator.call("/verify", body)
        valid = answer.get("isValid")
        if not isinstance(valid, bool):
            raise PaymentProviderError("/verify: no boolean isValid")
        if not valid:
            raise PaymentRejected(
                f"The payment was declined ({_code(answer.get('invalidReason'))}).")
        return body, answer

    async def settle(self, verified: tuple[dict[str, Any], dict[str, Any]],
                     ctx: PaymentContext) -> dict[str, str]:
        """Settle through the facilitator; ``PAYMENT-RESPONSE`` for the response."""
        body, _ = verified
        answer = await self.facilitator.call("/settle", body)
        success = answer.get("success")
        if not isinstance(success, bool):
            raise PaymentProviderError("/settle: no boolean success")
        if not success:
            raise PaymentRejected(
                f"The payment could not be settled ({_code(answer.get('errorReason'))}).")
        transaction, network = answer.get("transaction"), answer.get("network")
        if not isinstance(transaction, str) or not isinstance(network, str):
            raise PaymentProviderError("/settle: no transaction or network")
        response = {k: v for k, v in answer.items()
                    if k in ("success", "transaction", "network", "payer", "amount")}
        headers = {"PAYMENT-RESPONSE": b64json(response)}
        if body.get("x402Version") == 1:  # what x402 v1 clients read
            headers["X-PAYMENT-RESPONSE"] = headers["PAYMENT-RESPONSE"]
        return headers
