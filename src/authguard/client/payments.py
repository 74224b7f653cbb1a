"""Paying for a 402 and retrying once: :func:`pay_and_retry` and :func:`apay_and_retry`.

The server's 402 says what to pay (:attr:`PaymentRequired.payment` lists the offers; the
``Payment`` challenges are in ``error.problem.challenges`` and the decoded x402
``PAYMENT-REQUIRED`` in :attr:`PaymentRequired.payment_required`). *How* to pay — a wallet,
a payment provider's API, asking a person — is the application's business, so it is a
callback: it gets the :class:`PaymentRequired` error and returns the headers that carry the
proof (``{"Authorization": "Payment …"}``, ``{"Payment-Authorization": "Payment …"}`` or
``{"PAYMENT-SIGNATURE": "…"}``), or ``None`` to decline. The request is then sent again,
exactly once, with those headers added: a second 402 is returned as it is, never paid
again, so a misbehaving server cannot drain a wallet in a loop. The retry keeps the method,
the URL, the headers (a proof header of the same name is replaced) and the body, which must
therefore be bytes, not a stream that can be read only once.

Example (httpx, async)::

    async def pay(error: PaymentRequired) -> dict[str, str] | None:
        offer = next(o for o in error.payment["offers"] if o["scheme"] == "Payment")
        if Decimal(offer["amount"]) > Decimal("0.05"):
            return None  # too expensive: keep the 402
        proof = await my_provider.pay(offer["id"])
        return {offer["credential_header"]: proof}

    async with httpx.AsyncClient(base_url="https://api.example") as client:
        response = await apay_and_retry(client, client.build_request("GET", "/paid/quote"),
                                        pay)

For the IETF ``Payment`` scheme (draft-httpauth-payment-01), whoever the server is,
:func:`payment_credential` turns a challenge and a payment method's proof into the
credential header — the challenge echoed as received, in the field the challenge selected —
and :func:`read_payment_receipt` reads the ``Payment-Receipt`` of the paid response.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from ..challenges import Challenge
from .errors import PaymentRequired, error_for
from .problem import Problem

__all__ = [
    "ChallengeNotPayable",
    "PayCallback",
    "PaymentReceipt",
    "apay_and_retry",
    "pay_and_retry",
    "payment_credential",
    "read_payment_receipt",
]

PayCallback = Callable[
    [PaymentRequired], Mapping[str, str] | Awaitable[Mapping[str, str] | None] | None
]
"""Gets the 402 as a :class:`PaymentRequired`; returns the headers that carry the payment
proof, or ``None`` to decline. ``async def`` callbacks are for :func:`apay_and_retry`."""


def _payment_required(response: httpx.Response) -> PaymentRequired:
    error = error_for(Problem.from_response(response), response)
    if not isinstance(error, PaymentRequired):  # pragma: no cover - every 402 maps to it
        raise TypeError("a 402 that is not a PaymentRequired")
    return error


def _retry(request: httpx.Request, headers: Mapping[str, str]) -> httpx.Request:
    if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise TypeError("the pay callback must return a mapping of header names to strings "
                        "(or None)")
    if not headers:
        raise ValueError("the pay callback returned no headers: return None to decline")
    merged = request.headers.copy()
    for name, value in headers.items():
        merged[name] = value  # replaces a header of the same name (an old proof)
    return httpx.Request(request.method, request.url, headers=merged, content=request.content,
                         extensions=request.extensions)


def pay_and_retry(client: httpx.Client, request_or_response: httpx.Request | httpx.Response,
                  pay: PayCallback) -> httpx.Response:
    """Send a request (or take a response already received); on a 402, pay and retry once.

    Args:
        client: The client that sends the request and the retry.
        request_or_response: A request to send (``client.build_request(...)``), or the
            response of one already sent.
        pay: Called with the :class:`PaymentRequired` error of the 402; returns the headers
            to add to the retry, or ``None`` to decline (the 402 is returned). A plain
            function here; use :func:`apay_and_retry` for an ``async def``.

    Returns:
        The response: the first one when it is not a 402 or the callback declined, else the
        retry's (whatever its status: a 402 again is not paid for a second time). Raise for
        refusals with :func:`~authguard.client.raise_for_auth` if you want exceptions.

    Raises:
        TypeError: The callback returned something other than headers or ``None``.
    """
    if isinstance(request_or_response, httpx.Request):
        response = client.send(request_or_response)
    else:
        response = request_or_response
    if response.status_code != 402:
        return response
    response.read()
    headers = pay(_payment_required(response))
    if inspect.isawaitable(headers):
        if inspect.iscoroutine(headers):
            headers.close()
        raise TypeError("pay_and_retry needs a plain function; use apay_and_retry for an "
                        "async callback")
    if headers is None:
        return response
    retry = _retry(response.request, headers)
    response.close()
    return client.send(retry)


async def apay_and_retry(client: httpx.AsyncClient,
                         request_or_response: httpx.Request | httpx.Response,
                         pay: PayCallback) -> httpx.Response:
    """The async form of :func:`pay_and_retry`; ``pay`` may be ``async def`` or plain."""
    if isinstance(request_or_response, httpx.Request):
        response = await client.send(request_or_response)
    else:
        response = request_or_response
    if response.status_code != 402:
        return response
    await response.aread()
    headers = pay(_payment_required(response))
    if inspect.isawaitable(headers):
        headers = await headers
    if headers is None:
        return response
    retry = _retry(response.request, headers)
    await response.aclose()
    return await client.send(retry)


# -- the Payment scheme: credentials and receipts -------------------------------------------

_ECHOED = ("id", "realm", "method", "intent", "request", "expires", "digest", "opaque",
           "header", "description")
_REQUIRED = ("id", "realm", "method", "intent", "request")


class ChallengeNotPayable(ValueError):
    """A ``Payment`` challenge that a client must not pay (draft-httpauth-payment-01):
    a required parameter missing or empty, a ``header`` other than
    ``Payment-Authorization``, or an ``expires`` that has passed or cannot be read."""


def payment_credential(challenge: Challenge, payload: Mapping[str, Any], *,
                       source: str | None = None,
                       now: datetime | None = None) -> dict[str, str]:
    """The header that carries the credential for ``challenge`` (§"Credentials").

    The challenge's parameters are echoed exactly as they were received (``opaque`` and
    ``request`` byte for byte, so the server's binding matches), unknown ones left out;
    the field is the one the challenge selected: ``Authorization`` by default,
    ``Payment-Authorization`` when it says ``header="Payment-Authorization"``.

    Args:
        challenge: A ``Payment`` challenge (from :func:`parse_www_authenticate`, or
            ``PaymentRequired.problem.challenges``).
        payload: The payment method's proof (its ``payload`` object).
        source: The payer's identifier (a DID is recommended), if it is to be sent.
        now: The time to check ``expires`` against (default: the clock).

    Returns:
        ``{field: "Payment <base64url>"}``, to add to the retried request.

    Raises:
        ChallengeNotPayable: The draft forbids paying this challenge.
    """
    if challenge.scheme.lower() != "payment":
        raise ChallengeNotPayable("not a Payment challenge")
    params = challenge.params
    missing = [name for name in _REQUIRED if not params.get(name)]
    if missing:
        raise ChallengeNotPayable(f"the challenge has no {', '.join(missing)}")
    selected = params.get("header")
    if selected is not None and selected != "Payment-Authorization":
        raise ChallengeNotPayable(f"the challenge selects a field this scheme does not "
                                  f"allow ({selected[:40]!r})")
    expires = params.get("expires")
    if expires is not None:
        try:
            when = datetime.fromisoformat(expires.replace("z", "Z"))
        except ValueError:
            raise ChallengeNotPayable("the challenge's expires cannot be read") from None
        if when.tzinfo is None or when <= (now or datetime.now(UTC)):
            raise ChallengeNotPayable("the challenge has expired; request a fresh one")
    echoed = {name: params[name] for name in _ECHOED if name in params}
    credential: dict[str, Any] = {"challenge": echoed, "payload": dict(payload)}
    if source is not None:
        credential["source"] = source
    raw = json.dumps(credential, separators=(",", ":"), sort_keys=True).encode()
    token = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return {selected or "Authorization": "Payment " + token}


@dataclass(frozen=True, slots=True)
class PaymentReceipt:
    """A ``Payment-Receipt`` (draft-httpauth-payment-01 §"Payment-Receipt Header").

    Attributes:
        method: The payment method used.
        timestamp: When the payment was settled.
        reference: The method's reference (a transaction hash, an invoice id, a
            challenge id).
        extra: The receipt's other members (methods may define more).
    """

    method: str
    timestamp: datetime
    reference: str
    extra: Mapping[str, Any] = field(default_factory=dict)


def read_payment_receipt(value: str) -> PaymentReceipt:
    """Read a ``Payment-Receipt`` header value: base64url JSON with ``status`` ``"success"``
    (the only status a receipt may carry), ``method``, an RFC 3339 ``timestamp`` and
    ``reference``.

    Raises:
        ValueError: The value is not such a receipt.
    """
    try:
        text = value.strip()
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(data, dict):
            raise TypeError("not an object")
        method, stamp, reference = data["method"], data["timestamp"], data["reference"]
        if not all(isinstance(v, str) for v in (method, stamp, reference)):
            raise TypeError("not strings")
        timestamp = datetime.fromisoformat(stamp)
    except (ValueError, TypeError, KeyError, binascii.Error, RecursionError):
        raise ValueError("not a Payment-Receipt: base64url JSON with status, method, "
                         "timestamp and reference") from None
    if data.get("status") != "success" or timestamp.tzinfo is None:
        raise ValueError("not a Payment-Receipt: its status must be 'success' and its "
                         "timestamp carry a time zone")
    extra = {k: v for k, v in data.items()
             if k not in ("status", "method", "timestamp", "reference")}
    return PaymentReceipt(method=method, timestamp=timestamp, reference=reference,
                          extra=extra)
