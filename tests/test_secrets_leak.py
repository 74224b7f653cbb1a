"""No credential used by the suite appears in any log record, response header or body.

``conftest.py`` records the whole session (see ``leakcheck.py``) and moves this module to
the end. The first test adds a deliberate workout — every scheme, right and wrong, refused
for every reason the example app can give, with DEBUG logging — and the last checks the
corpus of everything the suite produced.
"""

from __future__ import annotations

import base64
import json
import time

import demo_payments
import httpx
import jwt

import leakcheck
import rawasgi
from authguard.challenges import parse_www_authenticate
from helpers import http_client, uvicorn_server

SECRET = "demo-jwt-secret-0123456789abcdef-0123456789"


def token(**claims: object) -> str:
    now = int(time.time())
    payload = {"iss": "https://auth.example.test", "aud": "authguard-demo", "sub": "alice",
               "iat": now, "exp": now + 600, **claims}
    return jwt.encode(payload, SECRET, algorithm="HS256")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_workout_every_scheme_and_reason_under_uvicorn() -> None:
    now = int(time.time())
    wrong_secret = jwt.encode({"sub": "alice", "aud": "authguard-demo", "exp": now + 60},
                              "wrong-secret-0123456789abcdef-0123456789", algorithm="HS256")
    cases = [
        ("/me", {"Authorization": basic("alice", "wonderland")}),
        ("/me", {"Authorization": basic("alice", "wonderland-but-wrong")}),
        ("/me", {"Authorization": basic("nobody-at-all", "some-password-123")}),
        ("/admin", {"Authorization": basic("alice", "wonderland")}),
        ("/me", {"X-API-Key": "demo-key-alice-0123456789"}),
        ("/me", {"X-API-Key": "demo-key-alice-0123456789-wrong"}),
        ("/me", {"Authorization": f"Bearer {token()}"}),
        ("/me", {"Authorization": f"Bearer {token(exp=now - 100)}"}),
        ("/me", {"Authorization": f"Bearer {token(nbf=now + 3600)}"}),
        ("/me", {"Authorization": f"Bearer {wrong_secret}"}),
        ("/reports", {"Authorization": f"Bearer {token(scope='other:scope')}"}),
        ("/step-up", {"Authorization": f"Bearer {token(acr='pwd')}"}),
        ("/me", {"Cookie": "authguard_session=forged-session-value-0123456789"}),
        ("/me", {"Authorization": f"Bearer {token()}",
                 "X-API-Key": "demo-key-bob-0123456789"}),
    ]
    with uvicorn_server("app:app", env={"AUTHGUARD_DEMO_FAILURE_LIMIT": "3"}) as base, \
            http_client(base) as client:
        for path, headers in cases:
            client.get(path, headers=headers)
        for _ in range(5):  # into the brute-force guard
            client.get("/me", headers={"Authorization": basic("bob", "not-the-password-1")})
        login = client.post("/login", json={"username": "carol", "password": "rainbow"})
        assert login.status_code == 200
        assert client.get("/account").status_code == 200
        client.post("/logout", headers={"Origin": "http://localhost:3000"})
        client.post("/login", json={"username": "carol", "password": "rainbow-wrong-123"})
    assert leakcheck.RECORDER.sent  # the workout's credentials were recorded


def _payment_challenge(r: httpx.Response) -> str:
    for line in r.headers.get_list("www-authenticate"):
        (challenge,) = parse_www_authenticate(line)
        if challenge.scheme == "Payment":
            return dict(challenge.params)["id"]
    raise AssertionError("no Payment challenge")


def _x402(r: httpx.Response, version: int, nonce: str, *, forged: bool = False) -> str:
    required = json.loads(base64.b64decode(r.headers["payment-required"]))
    accepted = required["accepts"][0]
    signature = demo_payments.demo_signature(accepted, nonce)
    if forged:
        signature = signature[::-1]
    proof: dict[str, object] = {"x402Version": version, "payload": {
        "nonce": nonce, "signature": signature, "payer": "leak-test-payer"}}
    if version == 2:
        proof |= {"accepted": accepted, "resource": required["resource"]}
    else:
        proof |= {"scheme": accepted["scheme"], "network": accepted["network"]}
    return base64.b64encode(json.dumps(proof).encode()).decode()


def test_workout_payments_under_uvicorn() -> None:
    """Every way to pay the example app, paid, replayed, forged and misplaced."""
    with uvicorn_server("app:app", env={"AUTHGUARD_DEMO_FAILURE_LIMIT": "1000"}) as base, \
            http_client(base) as client:
        for field, identity in (("Authorization", {}),
                                ("Payment-Authorization",
                                 {"Authorization": f"Bearer {token()}"})):
            r = client.get("/paid/quote", headers=identity)
            assert r.status_code == 402
            paid = client.post("/billing/pay", json={"challenge": _payment_challenge(r)})
            authorization = paid.json()["authorization"]
            headers = {**identity, field: authorization}
            assert client.get("/paid/quote", headers=headers).status_code == 200
            assert client.get("/paid/quote", headers=headers).status_code == 402  # replay
            other = "Payment-Authorization" if field == "Authorization" else "Authorization"
            misplaced = {**identity, other: authorization} if identity else {
                other: authorization}
            client.get("/paid/quote", headers=misplaced)
            credential = json.loads(base64.urlsafe_b64decode(
                authorization.removeprefix("Payment ") + "=="))
            credential["payload"]["receipt"] = "forged-receipt-" + "x" * 28
            forged = "Payment " + base64.urlsafe_b64encode(
                json.dumps(credential).encode()).decode().rstrip("=")
            assert client.get("/paid/quote", headers={**identity, field: forged}
                              ).status_code == 402
        for name, version in (("PAYMENT-SIGNATURE", 2), ("X-PAYMENT", 1)):
            r = client.get("/paid/quote")
            nonce = f"leak-test-nonce-{version}-0123456789"
            proof = _x402(r, version, nonce)
            assert client.get("/paid/quote", headers={name: proof}).status_code == 200
            assert client.get("/paid/quote", headers={name: proof}).status_code == 402
            forged = _x402(r, version, nonce + "-2", forged=True)
            assert client.get("/paid/quote", headers={name: forged}).status_code == 402
        client.get("/premium", auth=("alice", "wonderland"))
        client.get("/premium", auth=("carol", "rainbow"))
    sent = leakcheck.RECORDER.sent
    assert any("payment receipt" in where for _, where in sent.values())
    assert any("payment signature in PAYMENT-SIGNATURE" in where for _, where in sent.values())


async def test_workout_in_process_with_debug_logging() -> None:
    app = rawasgi.load_example_app("authguard_leak_example_app",
                                   {"AUTHGUARD_DEMO_FAILURE_LIMIT": "1000"}).app
    minted = token()
    leakcheck.RECORDER.credential(minted, "in-process Bearer token")  # before it is sent
    secret_header = b"Bearer " + minted.encode()
    await rawasgi.http(app, "GET", "/admin", [(b"authorization", secret_header)])
    await rawasgi.http(app, "GET", "/me", [(b"authorization", secret_header + b"x")])
    await rawasgi.http(app, "GET", "/me", [(b"authorization", secret_header),
                                           (b"authorization", secret_header)])


def test_the_detector_finds_what_it_should() -> None:
    r = leakcheck.Recorder()
    r.text("log", "refused GET /me: 401 credentials_invalid")
    assert r.leaks() == []
    r.text("log", "password was wonderland")  # a fixed secret, anywhere
    assert len(r.leaks()) == 1
    r = leakcheck.Recorder()
    issued = "server-issued-session-0123456789"
    r.text("Set-Cookie", f"authguard_session={issued}")
    r.request(httpx.Request("GET", "http://t/me", headers={
        "Cookie": f"authguard_session={issued}",
        "Authorization": "Bearer client-minted-token-0123456789"}))
    r.text("body", f"cookie again {issued}")  # the server's own value: not a leak
    assert r.leaks() == []
    r.text("body", "echo: client-minted-token-0123456789")
    (leak,) = r.leaks()
    assert "Authorization" in leak and "clie…" in leak
    r = leakcheck.Recorder()
    r.request(httpx.Request("POST", "http://t/login",
                            json={"username": "u", "password": "hunter2-hunter2-x"}))
    r.request(httpx.Request("GET", "http://t/", headers={"Authorization": basic(
        "u", "basic-password-987")}))
    r.text("log", "hunter2-hunter2-x basic-password-987 short")
    assert len(r.leaks()) == 2


def test_the_detector_finds_payment_proofs() -> None:
    receipt = "receipt-hmac-0123456789abcdefXYZ"
    credential = base64.urlsafe_b64encode(json.dumps(
        {"challenge": {"id": "abc"}, "payload": {"receipt": receipt}}).encode()).decode()
    signature = "x402-signature-0123456789abcdef"
    proof = base64.b64encode(json.dumps(
        {"x402Version": 2, "payload": {"signature": signature}}).encode()).decode()
    r = leakcheck.Recorder()
    r.text("body of POST /billing/pay", f'{{"authorization": "Payment {credential}"}}')
    r.request(httpx.Request("GET", "http://t/paid/quote", headers={
        "Payment-Authorization": f"Payment {credential.rstrip('=')}",
        "PAYMENT-SIGNATURE": proof}))
    r.text("body", f"again Payment {credential}")  # handed out by the server: no leak
    assert r.leaks() == []
    r.text("log", f"verified receipt {receipt}")  # the decoded proof, logged
    r.text("log", f"x402 header {proof}")
    r.text("log", f"signature {signature}")
    leaks = r.leaks()
    assert len(leaks) == 3, leaks
    assert any("payment receipt in Payment-Authorization" in leak for leak in leaks)
    assert any("payment signature in PAYMENT-SIGNATURE" in leak for leak in leaks)
    r = leakcheck.Recorder()
    r.text("log", "payment secret demo-payment-secret-0123456789abcdef-0123")
    assert len(r.leaks()) == 1


def test_no_secret_in_any_log_record_or_response_of_the_suite() -> None:
    """Runs last (conftest.py): every credential, every answer, every log record."""
    recorder = leakcheck.RECORDER
    leaks = recorder.leaks()
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks[:50])
    assert recorder.texts and recorder.sent
