"""Interop with pympp, the reference SDK of the ``Payment`` scheme (PyPI ``pympp``, import
``mpp``), both ways, offline:

* pympp's client (``PaymentTransport``, with a payment method written here) pays the
  example app under real uvicorn — anonymously, and beside Basic credentials — and pays
  non-ASCII challenges in process;
* pympp's server (``Mpp`` with ``@pay``) issues challenges that authguard's client pays,
  and authguard's client reads pympp's receipt.

The payment method here is ``receipt``: the stand-in provider ``POST /billing/pay`` hands
out the proof (``payload.receipt``) for a challenge id, and pympp builds the credential —
its own echo of the challenge — around it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from mpp import Credential, Receipt
from mpp.client import ClientMethod, CredentialParams, Method, PaymentTransport
from mpp.errors import VerificationFailedError
from mpp.server import Mpp, ServerMethod, VerifyContext, pay
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authguard.challenges import Challenge
from authguard.client import (
    ChallengeNotPayable,
    PaymentRequired,
    apay_and_retry,
    payment_credential,
    read_payment_receipt,
)
from helpers import ROOT, uvicorn_server
from tokens import bearer, mint

BASIC = ("alice", "wonderland")


class QuoteRequest(BaseModel):
    """The ``request`` object of authguard's ``receipt`` method (decimal string amounts)."""

    amount: str
    currency: str
    recipient: str | None = None


class ReceiptPayload(BaseModel):
    """The proof of the ``receipt`` method."""

    receipt: str


RECEIPT = Method(name="receipt", intent="charge", request_model=QuoteRequest,
                 payload_model=ReceiptPayload)


def b64url_json(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def receipt_method(provider: httpx.AsyncClient, calls: list[str],
                   forge: bool = False) -> ClientMethod:
    """A pympp client method that buys the proof from the stand-in provider."""

    async def create(params: CredentialParams) -> str:
        challenge = params.challenge
        calls.append(challenge.id)
        paid = await provider.post("/billing/pay", json={"challenge": challenge.id})
        assert paid.status_code == 200, paid.text
        token = paid.json()["authorization"].split(" ", 1)[1]
        proof = b64url_json(token)["payload"]
        if forge:
            proof = {"receipt": "A" * 43}
        return Credential(challenge=challenge.to_echo(), payload=proof).to_authorization()

    return ClientMethod(method=RECEIPT, create_credential=create)


async def pympp_get(base_url: str, path: str, *, forge: bool = False,
                    transport: httpx.AsyncBaseTransport | None = None,
                    **kw: Any) -> tuple[httpx.Response, list[str]]:
    calls: list[str] = []
    inner = transport or httpx.AsyncHTTPTransport()
    async with httpx.AsyncClient(base_url=base_url, transport=inner) as provider:
        paying = PaymentTransport(methods=[receipt_method(provider, calls, forge)],
                                  inner=inner, max_payment_retries=1)
        async with httpx.AsyncClient(base_url=base_url, transport=paying, timeout=10) as c:
            r = await c.get(path, **kw)
            await r.aread()
    return r, calls


# -- pympp's client pays authguard ---------------------------------------------------------


async def test_pympp_pays_the_example_app_anonymously(example_server: str) -> None:
    r, calls = await pympp_get(example_server, "/paid/quote")
    assert r.status_code == 200, r.text
    assert r.json()["symbol"] == "AGRD"
    assert len(calls) == 1
    receipt = Receipt.from_payment_receipt(r.headers["payment-receipt"])
    assert receipt.status == "success" and receipt.method == "receipt"
    assert receipt.reference == calls[0]
    assert r.headers["cache-control"] == "private"


async def test_pympp_pays_beside_basic_credentials(example_server: str) -> None:
    """With an identity the challenge selects ``Payment-Authorization``; pympp keeps the
    Basic credentials in ``Authorization`` and the app sees both."""
    seen: list[httpx.Request] = []

    class Recording(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return await super().handle_async_request(request)

    r, calls = await pympp_get(example_server, "/paid/quote", auth=BASIC,
                               transport=Recording())
    assert r.status_code == 200, r.text
    retry = [q for q in seen if "payment-authorization" in q.headers]
    assert len(retry) == 1 and retry[0].headers["authorization"].startswith("Basic ")
    assert Receipt.from_payment_receipt(r.headers["payment-receipt"]).reference == calls[0]


async def test_pympp_buys_the_plan_behind_a_plan_402(example_server: str) -> None:
    """The plan route's 402 carries a Payment challenge: pympp can act on it."""
    token = bearer(mint("frank"))  # no plan; the shared server's users stay as they are
    r, calls = await pympp_get(example_server, "/premium", headers=token)
    assert r.status_code == 200, r.text
    assert r.json() == {"premium": True, "subject": "frank"} and len(calls) == 1


async def test_a_wrong_proof_is_402_and_charged_once(example_server: str) -> None:
    r, calls = await pympp_get(example_server, "/paid/quote", forge=True)
    assert r.status_code == 402
    body = r.json()
    assert body["reason"] == "payment_invalid"
    assert body["payment"]["problem_type"] == (
        "https://paymentauth.org/problems/verification-failed")
    assert len(calls) == 1  # max_payment_retries=1: no second payment
    assert "payment-receipt" not in r.headers


async def test_pympp_pays_non_ascii_challenges_in_process() -> None:
    from test_payment_conformance import LATIN1, WIDE
    from test_payment_conformance import App as ConformanceApp

    world = ConformanceApp()
    transport = httpx.ASGITransport(app=world.asgi)

    async def create(params: CredentialParams) -> str:
        challenge = params.challenge
        assert challenge.description in (LATIN1, WIDE)  # UTF-8 read back exactly
        proof = b64url_json(world.receipts.pay({
            "id": challenge.id, "realm": challenge.realm, "method": challenge.method,
            "intent": challenge.intent, "request": challenge.request_b64}).split(" ")[1])
        return Credential(challenge=challenge.to_echo(),
                          payload=proof["payload"]).to_authorization()

    paying = PaymentTransport(methods=[ClientMethod(method=RECEIPT, create_credential=create)],
                              inner=transport, max_payment_retries=1)
    async with httpx.AsyncClient(base_url="http://testserver", transport=paying) as c:
        for path in ("/latin1", "/wide"):
            r = await c.get(path)
            assert r.status_code == 200, (path, r.text)


async def test_a_non_ascii_description_over_the_wire_both_clients_pay() -> None:
    """Under real uvicorn: the description's UTF-8 octets cross the wire; pympp and
    authguard's own client read it exactly, echo it, and pay."""
    from paid_unicode_app import DESCRIPTION

    with uvicorn_server("paid_unicode_app:app", app_dir=ROOT / "tests") as base:
        async with httpx.AsyncClient(base_url=base) as provider:
            async def create(params: CredentialParams) -> str:
                assert params.challenge.description == DESCRIPTION
                paid = await provider.post("/pay", json={"challenge": params.challenge.id})
                proof = b64url_json(paid.json()["authorization"].split(" ", 1)[1])
                return Credential(challenge=params.challenge.to_echo(),
                                  payload=proof["payload"]).to_authorization()

            paying = PaymentTransport(
                methods=[ClientMethod(method=RECEIPT, create_credential=create)],
                inner=httpx.AsyncHTTPTransport(), max_payment_retries=1)
            async with httpx.AsyncClient(base_url=base, transport=paying) as c:
                r = await c.get("/quote")
                assert r.status_code == 200, r.text

            async def pay_it(error: PaymentRequired) -> dict[str, str]:
                (ch,) = error.problem.challenges
                assert ch.params["description"] == DESCRIPTION
                paid = await provider.post("/pay", json={"challenge": ch.params["id"]})
                return {"Authorization": paid.json()["authorization"]}

            r = await apay_and_retry(provider, provider.build_request("GET", "/quote"),
                                     pay_it)
            assert r.status_code == 200, r.text


# -- authguard's client pays pympp ---------------------------------------------------------


class Proof(BaseModel):
    proof: str


PROVED = Method(name="proved", intent="charge", request_model=QuoteRequest, payload_model=Proof)


async def _verify(ctx: VerifyContext) -> Receipt:
    payload: Any = ctx.credential.payload  # parsed by the method's payload model
    if payload.proof != "good":
        raise VerificationFailedError("the proof was not accepted")
    return Receipt(status="success", timestamp=datetime.now(UTC),
                   reference="pympp-" + ctx.challenge.id[:12], method="proved")


def pympp_app(*, requires_auth: bool) -> Starlette:
    server = Mpp(methods=ServerMethod(method=PROVED, verify=_verify), realm="pympp.test",
                 secret_key="pympp-test-secret-0123456789abcdef", requires_auth=requires_auth)

    @pay(server.charge(amount="0.01", currency="USD", description="One pympp quote"))
    async def quote(request: Request, credential: Any, receipt: Any) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/quote", quote)])


@pytest.fixture(params=[False, True], ids=["Authorization", "Payment-Authorization"])
async def pympp_server(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    app = pympp_app(requires_auth=request.param)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://pympp.test") as c:
        yield c


def paying_with(proof: str, used: list[Challenge]) -> Callable[
        [PaymentRequired], Awaitable[dict[str, str]]]:
    async def pay_it(error: PaymentRequired) -> dict[str, str]:
        (challenge,) = [c for c in error.problem.challenges if c.scheme == "Payment"]
        used.append(challenge)
        return payment_credential(challenge, {"proof": proof}, source="did:example:alice")
    return pay_it


async def test_authguards_client_pays_pympps_challenge(
        pympp_server: httpx.AsyncClient) -> None:
    used: list[Challenge] = []
    r = await apay_and_retry(pympp_server, pympp_server.build_request("GET", "/quote"),
                             paying_with("good", used))
    assert r.status_code == 200, r.text
    (challenge,) = used
    receipt = read_payment_receipt(r.headers["payment-receipt"])
    assert receipt.method == "proved"
    assert receipt.reference == "pympp-" + challenge.params["id"][:12]
    assert receipt.timestamp.tzinfo is not None
    # the credential went in the field the challenge selected
    selected = challenge.params.get("header", "Authorization")
    assert selected == ("Payment-Authorization" if "header" in challenge.params
                        else "Authorization")


async def test_pympp_refuses_a_wrong_proof_and_authguards_client_pays_once(
        pympp_server: httpx.AsyncClient) -> None:
    used: list[Challenge] = []
    r = await apay_and_retry(pympp_server, pympp_server.build_request("GET", "/quote"),
                             paying_with("bad", used))
    assert r.status_code == 402 and len(used) == 1
    assert "payment-receipt" not in r.headers


def test_a_challenge_the_draft_forbids_paying_is_refused() -> None:
    base = {"id": "x", "realm": "r", "method": "m", "intent": "charge", "request": "e30"}
    for params in ({**base, "header": "X-Pay"}, {**base, "expires": "2000-01-01T00:00:00Z"},
                   {**base, "expires": "tomorrow"}, {k: v for k, v in base.items()
                                                     if k != "id"}):
        with pytest.raises(ChallengeNotPayable):
            payment_credential(Challenge("Payment", params), {"proof": "good"})
    header = payment_credential(Challenge("Payment", {**base, "unknown": "u"}), {"p": 1})
    (name, value), = header.items()
    assert name == "Authorization"
    assert b64url_json(value.split(" ")[1])["challenge"] == base  # unknown left out


def test_a_receipt_that_is_not_one_is_refused() -> None:
    good = {"status": "success", "method": "m", "timestamp": "2026-01-01T00:00:00Z",
            "reference": "r", "payer": "p"}

    def encode(data: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()

    assert read_payment_receipt(encode(good)).extra == {"payer": "p"}
    for bad in ({**good, "status": "failed"}, {**good, "timestamp": "2026-01-01T00:00:00"},
                {k: v for k, v in good.items() if k != "reference"}, [1]):
        with pytest.raises(ValueError, match="Payment-Receipt"):
            read_payment_receipt(encode(bad))
    with pytest.raises(ValueError, match="Payment-Receipt"):
        read_payment_receipt("!!!")


async def test_authguards_client_reads_pympps_402(
        pympp_server: httpx.AsyncClient) -> None:
    """authguard's client reads another server's 402 (pympp's problem+json) as a
    ``PaymentRequired`` with its challenge."""
    r = await pympp_server.get("/quote")
    from authguard.client import Problem, error_for

    error = error_for(Problem.from_response(r), r)
    assert isinstance(error, PaymentRequired)
    assert [c.scheme for c in error.problem.challenges] == ["Payment"]
