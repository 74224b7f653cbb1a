"""A valid credential of a scheme the route does not accept: still ``credentials_missing``
(DESIGN's Reason table), but the answer says what happened — which scheme was offered and
not accepted (``offered_scheme``: its name only), which ones the route accepts — and gives
no proxy-stripping hint. ``explain`` suggests the accepted schemes."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    BearerAuthenticator,
    Identity,
    JWTKey,
    PBKDF2Hasher,
    StaticAPIKeys,
    StaticPasswords,
    hash_api_key,
    protect,
)
from authguard.client import Problem
from authguard.client.diagnose import next_steps
from helpers import asgi_client

SECRET = "wrong-scheme-secret-0123456789abcdef0123"
PROXY = "proxy"  # the word of the proxy-stripping hint
BASIC = "Basic " + base64.b64encode(b"bob:builder").decode()
BAD_BASIC = "Basic " + base64.b64encode(b"bob:nope").decode()


def _token() -> str:
    now = int(time.time())
    return pyjwt.encode({"sub": "jo", "aud": "api", "iat": now, "exp": now + 600},
                        SECRET, algorithm="HS256")


async def _ok(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.display_name})


def _app() -> Starlette:
    passwords = StaticPasswords.from_plaintext({"bob": ("builder", ["admin"])},
                                               hasher=PBKDF2Hasher(iterations=1000))
    alice = Identity(subject="alice", scheme="ApiKey")
    guard = AuthGuard(authenticators=[
        BasicAuthenticator(verifier=passwords, realm="t"),
        APIKeyAuthenticator(store=StaticAPIKeys({hash_api_key("k-alice"): alice}), realm="t"),
        BearerAuthenticator(key=JWTKey.hs256(SECRET), audience="api", realm="t"),
    ])
    return Starlette(routes=[
        protect(Authenticated("ApiKey"))(Route("/key", _ok)),
        protect(Authenticated("Basic"))(Route("/basic", _ok)),
        protect(Authenticated("Bearer"))(Route("/bearer", _ok)),
        protect(Authenticated("Bearer", "ApiKey"))(Route("/either", _ok)),
        protect(Authenticated())(Route("/any", _ok)),
    ], middleware=[Middleware(AuthGuardMiddleware, guard=guard)])


@pytest.fixture
async def client() -> Any:
    async with asgi_client(_app()) as c:
        yield c


@pytest.mark.parametrize(("path", "headers", "offered", "accepts"), [
    ("/key", {"Authorization": BASIC}, "Basic", "an API key in the X-API-Key header"),
    ("/key", {"Authorization": BAD_BASIC}, "Basic", "an API key in the X-API-Key header"),
    ("/basic", {"Authorization": "Bearer " + _token()}, "Bearer", "Basic"),
    ("/bearer", {"X-API-Key": "k-alice"}, "ApiKey", "Bearer"),
    ("/either", {"Authorization": BASIC}, "Basic",
     "an API key in the X-API-Key header or Bearer"),
])
async def test_a_credential_of_another_scheme_is_named(
        client: httpx.AsyncClient, path: str, headers: dict[str, str], offered: str,
        accepts: str) -> None:
    r = await client.get(path, headers=headers)
    body = r.json()
    assert (r.status_code, body["reason"]) == (401, "credentials_missing")
    assert body["offered_scheme"] == offered
    assert accepts in body["detail"]
    assert "does not accept" in body["detail"]
    assert not any(PROXY in h for h in body["hints"]), body["hints"]
    # the challenges are those of a plain credentials_missing: every accepted scheme, no error
    plain = await client.get(path)
    assert r.headers.get_list("www-authenticate") == plain.headers.get_list("www-authenticate")
    assert all("error" not in line for line in r.headers.get_list("www-authenticate"))
    # nothing of the credential itself is sent back
    for value in headers.values():
        secret = value.split(" ", 1)[-1]
        assert secret not in r.text


@pytest.mark.parametrize("first", ["wrong-scheme", "plain"])
async def test_plain_and_wrong_scheme_answers_do_not_share_a_body(
        client: httpx.AsyncClient, first: str) -> None:
    """The bodies precomputed per reason never give one case the other's detail."""
    async def plain() -> dict[str, Any]:
        body: dict[str, Any] = (await client.get("/key")).json()
        assert "offered_scheme" not in body
        assert "does not accept" not in body["detail"]
        assert any(PROXY in h for h in body["hints"])
        return body

    async def wrong() -> dict[str, Any]:
        body: dict[str, Any] = (await client.get("/key", headers={"Authorization": BASIC})).json()
        assert body["offered_scheme"] == "Basic"
        assert not any(PROXY in h for h in body["hints"])
        return body

    order = [wrong, plain] if first == "wrong-scheme" else [plain, wrong]
    for _ in range(2):
        for case in order:
            await case()


@pytest.mark.parametrize(("value", "offered"), [
    ("Digest username=\"bob\", nonce=\"abc\"", "Digest"),
    ("Negotiate YIIabc", "Negotiate"),
    ("AWS4-HMAC-SHA256 Credential=AKIA/x", "AWS4-HMAC-SHA256"),
])
async def test_an_unknown_authorization_scheme_is_named(
        client: httpx.AsyncClient, value: str, offered: str) -> None:
    body = (await client.get("/any", headers={"Authorization": value})).json()
    assert body["reason"] == "credentials_missing"
    assert body["offered_scheme"] == offered
    assert value.split(" ", 1)[1] not in body["detail"]
    assert not any(PROXY in h for h in body["hints"])


@pytest.mark.parametrize("value", [
    "sk_live_0123456789abcdef",  # a bare token: the "scheme" would be the secret
    "x" * 40 + " rest",  # longer than a scheme name
    "Bé rest",  # not a token
    "Digest",  # a scheme without credentials
    "Bearer\x7f rest",
])
async def test_an_unsafe_scheme_word_is_never_echoed(client: httpx.AsyncClient,
                                                     value: str) -> None:
    r = await client.get("/any", headers=[(b"authorization", value.encode("latin-1"))])
    body = r.json()
    assert (r.status_code, body["reason"]) == (401, "credentials_missing")
    assert "offered_scheme" not in body
    assert value.split(" ")[0] not in r.text


async def test_a_malformed_accepted_scheme_is_not_called_another_scheme(
        client: httpx.AsyncClient) -> None:
    """``Basic`` is accepted on /any: a header its authenticator does not take for its own
    is not reported as a scheme this route does not accept."""
    body = (await client.get("/basic", headers={"Authorization": "basic"})).json()
    assert "offered_scheme" not in body


async def test_explain_suggests_the_accepted_scheme(client: httpx.AsyncClient) -> None:
    r = await client.get("/key", headers={"Authorization": BASIC})
    problem = Problem.from_response(r)
    assert problem.offered_scheme == "Basic"
    steps = " ".join(next_steps(problem))
    assert "-u user:password" not in steps
    assert "X-API-Key: <key>" in steps
    assert PROXY not in steps
    # a plain credentials_missing still suggests every scheme the route accepts
    plain = Problem.from_response(await client.get("/basic"))
    assert plain.offered_scheme is None
    assert "-u user:password" in " ".join(next_steps(plain))


async def test_explain_prints_the_offered_scheme(client: httpx.AsyncClient) -> None:
    import io

    from rich.console import Console

    from authguard.client.explain import _render, explain_response

    r = await client.get("/bearer", headers={"X-API-Key": "k-alice"})
    data = explain_response(r)
    assert data["offered_scheme"] == "ApiKey"
    out = io.StringIO()
    _render(data, Console(file=out, width=200))
    text = out.getvalue()
    assert "ApiKey" in text and "not accepted" in text
    assert "Authorization: Bearer <token>" in text
    assert "-u user:password" not in text


def test_the_client_reads_only_a_scheme_name() -> None:
    for sent, read in [("Basic", "Basic"), ("Basic xyz", None), ("x" * 33, None), (3, None)]:
        problem = Problem.parse(401, {"Content-Type": "application/problem+json"},
                                b'{"reason":"credentials_missing","offered_scheme":'
                                + (f'"{sent}"' if isinstance(sent, str) else str(sent)).encode()
                                + b"}")
        assert problem.offered_scheme == read


async def test_a_scheme_name_that_is_not_a_token_is_not_sent() -> None:
    """An authenticator of one's own may call its scheme anything: a name that is not a
    short token is not sent as ``offered_scheme`` (the body stays schema-valid)."""
    from starlette.requests import HTTPConnection

    from authguard import Challenge, Reason

    class Odd:
        scheme = "Odd scheme/2"

        def has_credentials(self, conn: HTTPConnection) -> bool:
            return "x-odd" in conn.headers

        def account(self, conn: HTTPConnection) -> str | None:
            return None

        def challenge(self, reason: Reason | None = None,
                      params: dict[str, str] | None = None) -> Challenge:
            return Challenge("Odd", {"realm": "t"})

        async def authenticate(self, conn: HTTPConnection) -> Identity | None:
            return Identity(subject="odd", scheme="Odd scheme/2")

    alice = Identity(subject="alice", scheme="ApiKey")
    guard = AuthGuard(authenticators=[
        APIKeyAuthenticator(store=StaticAPIKeys({hash_api_key("k"): alice}), realm="t"),
        Odd()])
    app = Starlette(routes=[protect(Authenticated("ApiKey"))(Route("/key", _ok))],
                    middleware=[Middleware(AuthGuardMiddleware, guard=guard)])
    async with asgi_client(app) as c:
        body = (await c.get("/key", headers={"X-Odd": "1"})).json()
    assert body["reason"] == "credentials_missing"
    assert "offered_scheme" not in body


async def test_an_allowed_request_never_asks_the_other_schemes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Which other scheme was offered is worked out only on the way to a refusal: an
    allowed request (even one that also carries Basic credentials) costs nothing more."""
    calls: list[str] = []
    for cls in (BasicAuthenticator, BearerAuthenticator):
        original = cls.has_credentials

        def spy(self: Any, conn: Any, _original: Any = original,
                _name: str = cls.__name__) -> bool:
            calls.append(_name)
            return bool(_original(self, conn))

        monkeypatch.setattr(cls, "has_credentials", spy)
    async with asgi_client(_app()) as c:
        for headers in ({"X-API-Key": "k-alice"},
                        {"X-API-Key": "k-alice", "Authorization": BASIC}):
            assert (await c.get("/key", headers=headers)).status_code == 200
        assert calls == []
        refused = await c.get("/key", headers={"Authorization": BASIC})
        assert refused.json()["offered_scheme"] == "Basic"
        assert calls  # the same spies do see the refusal's look-up
