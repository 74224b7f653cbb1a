"""Limits: oversized credentials are refused before any decoding; many headers; the body of
a request is never read by the middleware (a slow-loris body does not hold a refusal)."""

from __future__ import annotations

import base64
import socket
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import hardening_app
import rawasgi
from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    BearerAuthenticator,
    ConfigurationError,
    Identity,
    JWTKey,
    Reason,
    SessionAuthenticator,
    StaticAPIKeys,
    StaticPasswords,
    parse_www_authenticate,
    protect,
)
from authguard.challenges import Challenge
from helpers import ROOT, uvicorn_server


class Spy:
    """An authenticator that records every call, to prove that it was never consulted."""

    scheme = "Spy"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def has_credentials(self, conn: HTTPConnection) -> bool:
        self.calls.append("has_credentials")
        return any(k == b"authorization" for k, _ in conn.scope["headers"])

    def account(self, conn: HTTPConnection) -> str | None:
        self.calls.append("account")
        return None

    def challenge(self, reason: Reason | None = None,
                  params: dict[str, str] | None = None) -> Challenge:
        return Challenge("Spy", {"realm": "spy"})

    async def authenticate(self, conn: HTTPConnection) -> Identity | None:
        self.calls.append("authenticate")
        return Identity(subject="spy", scheme="Spy")


def spy_app(limit: int = 1024, *, with_spy: bool = True) -> tuple[Starlette, Spy]:
    spy = Spy()
    basic = BasicAuthenticator(verifier=StaticPasswords({}), max_length=100_000)
    keys = APIKeyAuthenticator(store=StaticAPIKeys({}), max_length=100_000)
    guard = AuthGuard(authenticators=[spy, basic, keys] if with_spy else [basic, keys],
                      max_credentials_bytes=limit)

    @protect(Authenticated())
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"subject": request.user.subject})

    return Starlette(routes=[Route("/me", me)],
                     middleware=[Middleware(AuthGuardMiddleware, guard=guard)]), spy


def body(answer: rawasgi.Answer) -> dict[str, Any]:
    import json

    rawasgi.check_answer(answer)
    data: dict[str, Any] = json.loads(answer.body)
    return data


@pytest.mark.parametrize(("name", "value"), [
    (b"authorization", b"Spy " + b"A" * 1100),
    (b"authorization", b"Basic " + b"A" * 1100),
    (b"authorization", b"Unknown " + b"A" * 1100),
    (b"cookie", b"session=" + b"A" * 1100),
    (b"cookie", b"a=1; session=" + b"\xff" * 1100 + b"; b=2"),
    (b"x-api-key", b"k" * 1100),
    (b"sec-websocket-protocol", b"bearer." + b"A" * 1100),
])
async def test_oversized_credentials_are_refused_before_any_authenticator_runs(
    name: bytes, value: bytes
) -> None:
    app, spy = spy_app(limit=1024)
    answer = await rawasgi.http(app, "GET", "/me", [(name, value)])
    data = body(answer)
    assert (answer.status, data["reason"]) == (401, "credentials_malformed")
    assert "1024 bytes" in data["detail"]
    assert spy.calls == []  # nothing parsed, nothing decoded
    challenges = parse_www_authenticate([v.decode("latin-1") for v in
                                         answer.header(b"www-authenticate")])
    if value.startswith((b"Basic ", b"Spy ")):  # the claimed scheme's challenge
        assert [c.scheme for c in challenges] == [value.split(b" ")[0].decode()]
    else:
        assert {c.scheme for c in challenges} >= {"Basic", "ApiKey"}


async def test_credentials_at_the_limit_are_read() -> None:
    app, spy = spy_app(limit=1024)
    value = b"Spy " + b"A" * 1020
    answer = await rawasgi.http(app, "GET", "/me", [(b"authorization", value)])
    assert answer.status == 200 and "authenticate" in spy.calls
    # Many small cookies whose field is longer than the limit are fine: each pair counts.
    cookies = b"; ".join(b"c%d=%s" % (i, b"v" * 50) for i in range(100))
    answer = await rawasgi.http(app, "GET", "/me", [(b"cookie", cookies),
                                                    (b"authorization", b"Spy x")])
    assert answer.status == 200


def test_the_limit_is_validated() -> None:
    with pytest.raises(ConfigurationError, match=r"^max_credentials_bytes: "):
        AuthGuard(authenticators=[BasicAuthenticator(verifier=StaticPasswords({}))],
                  max_credentials_bytes=10)


async def test_authenticator_limits_refuse_before_decoding() -> None:
    """Each authenticator has its own, smaller limit, also checked before decoding."""
    basic = BasicAuthenticator(verifier=StaticPasswords({}), max_length=64)
    bearer = BearerAuthenticator(key=JWTKey.hs256("k" * 32), audience="a",
                                 max_token_bytes=64)
    keys = APIKeyAuthenticator(store=StaticAPIKeys({}), max_length=64)
    session = SessionAuthenticator(secret_keys=["s" * 32], max_cookie_bytes=64)
    guard = AuthGuard(authenticators=[basic, bearer, keys, session])

    @protect(Authenticated())
    async def me(request: Request) -> JSONResponse:  # pragma: no cover - never allowed
        return JSONResponse({})

    app = Starlette(routes=[Route("/me", me)],
                    middleware=[Middleware(AuthGuardMiddleware, guard=guard)])
    malformed = "credentials_malformed"
    cases = [
        ((b"authorization", b"Basic " + base64.b64encode(b"u:" + b"p" * 80)), "Basic",
         malformed),
        ((b"authorization", b"Bearer " + b"e" * 80), "Bearer", malformed),
        ((b"x-api-key", b"k" * 80), "ApiKey", malformed),
        # A stale or forged session cookie is deleted by the answer (DESIGN §1).
        ((b"cookie", b"authguard_session=" + b"s" * 80), "Cookie", "session_invalid"),
    ]
    for header, scheme, reason in cases:
        answer = await rawasgi.http(app, "GET", "/me", [header])
        data = body(answer)
        assert (answer.status, data["reason"]) == (401, reason), scheme
        lines = [v.decode("latin-1") for v in answer.header(b"www-authenticate")]
        assert [c.scheme for c in parse_www_authenticate(lines)] == [scheme]


async def test_many_headers_and_many_credentials() -> None:
    app, _ = spy_app(limit=1024, with_spy=False)
    noise = [(b"x-noise-%d" % i, b"v" * 20) for i in range(2000)]
    answer = await rawasgi.http(app, "GET", "/me", noise)
    assert (answer.status, body(answer)["reason"]) == (401, "credentials_missing")
    repeated = [(b"authorization", b"Basic " + base64.b64encode(b"u:p"))] * 200
    answer = await rawasgi.http(app, "GET", "/me", noise + repeated)
    assert answer.status in (400, 401)
    assert body(answer)["reason"] in ("credentials_malformed", "invalid_request")
    keys = [(b"x-api-key", b"key-%d" % i) for i in range(200)]
    answer = await rawasgi.http(app, "GET", "/me", keys)
    assert (answer.status, body(answer)["reason"]) == (400, "invalid_request")
    cookies = [(b"cookie", b"c%d=v" % i) for i in range(500)]
    answer = await rawasgi.http(app, "GET", "/me", cookies)
    assert answer.status == 401


async def test_a_refusal_never_reads_the_request_body() -> None:
    app, _ = spy_app(with_spy=False)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("the middleware read the request body")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/me", "raw_path": b"/me",
             "query_string": b"", "root_path": "", "client": ("198.51.100.7", 1),
             "server": ("testserver", 80), "state": {},
             "headers": [(b"content-length", b"100000000"),
                         (b"authorization", b"Basic !!")]}
    await app(scope, receive, send)
    assert sent[0]["status"] == 401


def _raw_request(port: int, head: bytes) -> bytes:
    """Send only the request head (the promised body never comes); read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


@pytest.mark.e2e
@pytest.mark.parametrize("framing", [b"Content-Length: 100000000\r\n",
                                     b"Transfer-Encoding: chunked\r\n"])
def test_slow_body_under_uvicorn_is_refused_before_it_is_sent(framing: bytes) -> None:
    """A slow-loris upload: the 401 arrives although not one byte of the body was sent."""
    with uvicorn_server("hardening_app:app", app_dir=ROOT / "tests") as base:
        port = int(base.rsplit(":", 1)[1])
        for auth in (b"", b"Authorization: Basic !!!\r\n",
                     b"Authorization: Basic " + b"A" * 9000 + b"\r\n"):
            head = (b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n" + framing + auth
                    + b"Content-Type: application/octet-stream\r\n\r\n")
            answer = _raw_request(port, head)
            status_line = answer.split(b"\r\n", 1)[0]
            assert status_line == b"HTTP/1.1 401 Unauthorized", answer[:200]
            assert b"application/problem+json" in answer
        # The same route reads the body once the credentials are good.
        head = (b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n"
                b"Authorization: " + hardening_app.GOOD_BASIC.encode() + b"\r\n\r\nabc")
        assert _raw_request(port, head).startswith(b"HTTP/1.1 200 OK")


class Ticket(Spy):
    """An authenticator of one's own that declares where its credentials are."""

    scheme = "Ticket"
    credential_headers = ("X-Ticket",)

    def has_credentials(self, conn: HTTPConnection) -> bool:
        self.calls.append("has_credentials")
        return any(k == b"x-ticket" for k, _ in conn.scope["headers"])


async def test_declared_credential_headers_have_the_limit_too() -> None:
    ticket = Ticket()
    guard = AuthGuard(authenticators=[ticket], max_credentials_bytes=1024)
    assert b"x-ticket" in guard.credential_headers

    @protect(Authenticated())
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"subject": request.user.subject})

    app = Starlette(routes=[Route("/me", me)],
                    middleware=[Middleware(AuthGuardMiddleware, guard=guard)])
    answer = await rawasgi.http(app, "GET", "/me", [(b"x-ticket", b"t" * 1100)])
    data = body(answer)
    assert (answer.status, data["reason"]) == (401, "credentials_malformed")
    assert "1024 bytes" in data["detail"] and ticket.calls == []
    answer = await rawasgi.http(app, "GET", "/me", [(b"x-ticket", b"t" * 1000)])
    assert answer.status == 200 and "authenticate" in ticket.calls
