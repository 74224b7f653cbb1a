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
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping

import httpx

from .errors import PaymentRequired, error_for
from .problem import Problem

__all__ = ["PayCallback", "apay_and_retry", "pay_and_retry"]

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
