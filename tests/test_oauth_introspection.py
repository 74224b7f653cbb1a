"""RFC 7662 introspection against a real loopback endpoint: answers, cache, outages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    AuthGuard,
    AuthGuardMiddleware,
    BearerAuthenticator,
    BearerIssuers,
    ConfigurationError,
    HasScopes,
    IssuerKeys,
    parse_www_authenticate,
    protect,
)
from authguard.oauth import IntrospectionAuthenticator, ProtectedResource
from helpers import asgi_client
from oauth_issuer import WRONG_AUDIENCE_REASONS, Clock, LoopbackIntrospection, LoopbackIssuer

RESOURCE = "https://api.example.test/mcp"
METADATA_URL = "https://api.example.test/.well-known/oauth-protected-resource/mcp"
PR = ProtectedResource(resource=RESOURCE, authorization_servers=["https://as.example.test"],
                       scopes_supported=["read", "write"], challenge_scopes=["read"])


@pytest.fixture
def endpoint() -> Iterator[LoopbackIntrospection]:
    with LoopbackIntrospection() as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def authn(endpoint: LoopbackIntrospection, clock: Clock
                ) -> AsyncIterator[IntrospectionAuthenticator]:
    authenticator = IntrospectionAuthenticator(
        endpoint=endpoint.endpoint, client_id=endpoint.client_id,
        client_secret=endpoint.client_secret, resource=PR, clock=clock,
        max_cache_ttl=120, inactive_ttl=5, retry_after=9)
    yield authenticator
    await authenticator.aclose()


async def whoami(request: Request) -> JSONResponse:
    user = request.user
    return JSONResponse({"subject": user.subject, "cnf": user.claims.get("cnf")})


def make_app(authenticator: IntrospectionAuthenticator) -> Starlette:
    app = Starlette(routes=[
        protect(HasScopes("read"))(Route("/read", whoami)),
        protect(HasScopes("write"))(Route("/write", whoami)),
    ])
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[authenticator]))
    return app


def active(clock: Clock, **more: Any) -> dict[str, Any]:
    return {"active": True, "sub": "alice", "aud": [RESOURCE, "https://other.test"],
            "scope": "read", "exp": int(clock.now) + 600, "client_id": "app",
            "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}, **more}


async def call(app: Starlette, token: str, path: str = "/read") -> Any:
    async with asgi_client(app) as client:
        return await client.get(path, headers={"Authorization": f"Bearer {token}"})


async def test_active_token_is_accepted_and_remembered(
        authn: IntrospectionAuthenticator, endpoint: LoopbackIntrospection,
        clock: Clock) -> None:
    endpoint.answers["tok-1"] = active(clock)
    app = make_app(authn)
    response = await call(app, "tok-1")
    assert response.status_code == 200
    assert response.json() == {"subject": "alice",
                               "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}
    assert (await call(app, "tok-1")).status_code == 200
    assert len(endpoint.requests) == 1  # the second was a cache hit
    form, header = endpoint.requests[0]
    assert form == {"token": "tok-1", "token_type_hint": "access_token"}
    assert header is not None and header.startswith("Basic ")


async def test_client_secret_post(endpoint: LoopbackIntrospection, clock: Clock) -> None:
    authenticator = IntrospectionAuthenticator(
        endpoint=endpoint.endpoint, client_id=endpoint.client_id,
        client_secret=endpoint.client_secret, client_auth="client_secret_post",
        resource=PR, clock=clock)
    endpoint.answers["tok-2"] = active(clock)
    try:
        assert (await call(make_app(authenticator), "tok-2")).status_code == 200
    finally:
        await authenticator.aclose()
    form, header = endpoint.requests[0]
    assert header is None
    assert form["client_id"] == endpoint.client_id
    assert form["client_secret"] == endpoint.client_secret


async def test_inactive_is_401_and_remembered_only_briefly(
        authn: IntrospectionAuthenticator, endpoint: LoopbackIntrospection,
        clock: Clock) -> None:
    app = make_app(authn)
    response = await call(app, "unknown-token")
    assert response.status_code == 401
    assert response.json()["reason"] == "credentials_invalid"
    (challenge,) = parse_www_authenticate(response.headers["www-authenticate"])
    assert challenge.params["error"] == "invalid_token"
    assert challenge.params["resource_metadata"] == METADATA_URL
    await call(app, "unknown-token")
    assert len(endpoint.requests) == 1
    clock.advance(6)  # past inactive_ttl: asked again (it may be active by now)
    endpoint.answers["unknown-token"] = active(clock)
    assert (await call(app, "unknown-token")).status_code == 200
    assert len(endpoint.requests) == 2


async def test_expired_tokens(authn: IntrospectionAuthenticator,
                              endpoint: LoopbackIntrospection, clock: Clock) -> None:
    app = make_app(authn)
    endpoint.answers["old"] = active(clock, exp=int(clock.now) - 10)
    response = await call(app, "old")
    assert (response.status_code, response.json()["reason"]) == (401, "token_expired")
    # An inactive answer that says why.
    endpoint.answers["gone"] = {"active": False, "exp": int(clock.now) - 10}
    response = await call(app, "gone")
    assert response.json()["reason"] == "token_expired"
    # A remembered answer is never used past the token's exp.
    endpoint.answers["short"] = active(clock, exp=int(clock.now) + 10)
    assert (await call(app, "short")).status_code == 200
    clock.advance(11)
    response = await call(app, "short")
    assert (response.status_code, response.json()["reason"]) == (401, "token_expired")
    assert [f["token"] for f, _ in endpoint.requests].count("short") == 2


async def test_cache_is_bounded_by_max_cache_ttl(
        authn: IntrospectionAuthenticator, endpoint: LoopbackIntrospection,
        clock: Clock) -> None:
    endpoint.answers["long"] = active(clock, exp=int(clock.now) + 86_400)
    app = make_app(authn)
    await call(app, "long")
    clock.advance(119)
    await call(app, "long")
    assert len(endpoint.requests) == 1
    clock.advance(2)  # past max_cache_ttl (120 s)
    endpoint.answers["long"] = {"active": False}  # revoked meanwhile
    assert (await call(app, "long")).status_code == 401
    assert len(endpoint.requests) == 2


async def test_audience_and_scope_are_checked(
        authn: IntrospectionAuthenticator, endpoint: LoopbackIntrospection,
        clock: Clock) -> None:
    app = make_app(authn)
    endpoint.answers["elsewhere"] = active(clock, aud="https://other.test")
    response = await call(app, "elsewhere")
    assert response.status_code == 401
    assert response.json()["reason"] in WRONG_AUDIENCE_REASONS
    endpoint.answers["no-aud"] = {k: v for k, v in active(clock).items() if k != "aud"}
    assert (await call(app, "no-aud")).status_code == 401
    endpoint.answers["reader"] = active(clock)
    response = await call(app, "reader", "/write")
    assert response.status_code == 403
    (challenge,) = parse_www_authenticate(response.headers["www-authenticate"])
    assert challenge.params["error"] == "insufficient_scope"
    assert challenge.params["scope"] == "write"
    assert challenge.params["resource_metadata"] == METADATA_URL


@pytest.mark.parametrize("mode", ["garbage", "error"])
async def test_endpoint_answering_garbage_is_503(
        authn: IntrospectionAuthenticator, endpoint: LoopbackIntrospection,
        mode: str) -> None:
    endpoint.mode = mode
    response = await call(make_app(authn), "tok")
    assert (response.status_code, response.json()["reason"]) == (503, "auth_unavailable")
    assert response.headers["retry-after"] == "9"


async def test_answers_that_are_not_rfc_7662_are_503(
        authn: IntrospectionAuthenticator, endpoint: LoopbackIntrospection) -> None:
    endpoint.answers["a"] = {"active": "true"}  # not a boolean
    endpoint.answers["b"] = {"sub": "alice"}
    app = make_app(authn)
    for token in ("a", "b"):
        assert (await call(app, token)).status_code == 503


async def test_wrong_client_credentials_are_503_and_not_logged(
        endpoint: LoopbackIntrospection, caplog: pytest.LogCaptureFixture) -> None:
    secret = "a-wrong-secret-that-must-not-be-logged"
    authenticator = IntrospectionAuthenticator(
        endpoint=endpoint.endpoint, client_id=endpoint.client_id, client_secret=secret,
        resource=PR)
    caplog.set_level(logging.DEBUG)
    try:
        response = await call(make_app(authenticator), "tok-secret-xyz")
    finally:
        await authenticator.aclose()
    assert response.status_code == 503
    assert secret not in caplog.text and "tok-secret-xyz" not in caplog.text
    assert secret not in response.text


async def test_endpoint_down_then_back(endpoint: LoopbackIntrospection, clock: Clock) -> None:
    authenticator = IntrospectionAuthenticator(
        endpoint=endpoint.endpoint, client_id=endpoint.client_id,
        client_secret=endpoint.client_secret, resource=PR, clock=clock, timeout=2)
    app = make_app(authenticator)
    endpoint.answers["tok"] = active(clock)
    try:
        endpoint.stop()
        response = await call(app, "tok")
        assert (response.status_code, response.json()["reason"]) == (503, "auth_unavailable")
        assert "retry-after" in response.headers
        assert "www-authenticate" not in response.headers
        endpoint.start()
        assert (await call(app, "tok")).status_code == 200
    finally:
        await authenticator.aclose()


async def test_malformed_token_is_refused_without_asking(
        authn: IntrospectionAuthenticator, endpoint: LoopbackIntrospection) -> None:
    response = await call(make_app(authn), "a,b")
    assert (response.status_code, response.json()["reason"]) == (401, "credentials_malformed")
    assert endpoint.requests == []


def test_configuration_mistakes_name_the_setting() -> None:
    good: dict[str, Any] = {"endpoint": "https://as.example/introspect", "client_id": "rs",
                            "client_secret": "s3cret-s3cret", "audience": RESOURCE}
    for change, named in [({"endpoint": "http://as.example/introspect"}, "endpoint"),
                          ({"client_secret": ""}, "client_secret"),
                          ({"audience": None}, "audience"),
                          ({"inactive_ttl": 3600}, "inactive_ttl"),
                          ({"client_auth": "private_key_jwt"}, "client_auth")]:
        with pytest.raises(ConfigurationError, match=named):
            IntrospectionAuthenticator(**{**good, **change})


async def test_jwts_and_opaque_tokens_behind_one_bearer(
        authn: IntrospectionAuthenticator, endpoint: LoopbackIntrospection,
        clock: Clock) -> None:
    with LoopbackIssuer() as issuer:
        jwt_bearer = BearerAuthenticator(keys=IssuerKeys(issuer.issuer), issuer=issuer.issuer,
                                         audience=RESOURCE, resource=PR)
        app = Starlette(routes=[protect(HasScopes("read"))(Route("/read", whoami))])
        app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(
            authenticators=[BearerIssuers([jwt_bearer], opaque=authn)]))
        endpoint.answers["opaque-1"] = active(clock, sub="bob")
        assert (await call(app, "opaque-1")).json()["subject"] == "bob"
        assert (await call(app, issuer.sign(issuer.claims(RESOURCE)))).json()[
            "subject"] == "alice"
        assert len(endpoint.requests) == 1  # the JWT never went to introspection
        refused = await call(app, "opaque-unknown")
        assert refused.status_code == 401
        (challenge,) = parse_www_authenticate(refused.headers["www-authenticate"])
        assert challenge.params["resource_metadata"] == METADATA_URL


async def test_concurrent_requests_with_one_token_ask_once(
        authn: IntrospectionAuthenticator, endpoint: LoopbackIntrospection,
        clock: Clock) -> None:
    endpoint.answers["busy"] = active(clock)
    app = make_app(authn)
    async with asgi_client(app) as client:
        responses = await asyncio.gather(*(
            client.get("/read", headers={"Authorization": "Bearer busy"}) for _ in range(8)))
        assert [r.status_code for r in responses] == [200] * 8
        assert len(endpoint.requests) == 1
        endpoint.mode = "error"  # an error reaches every waiter, and is not remembered
        responses = await asyncio.gather(*(
            client.get("/read", headers={"Authorization": "Bearer other"}) for _ in range(4)))
        assert [r.status_code for r in responses] == [503] * 4
        assert len(endpoint.requests) == 2
        endpoint.mode = "json"
        endpoint.answers["other"] = active(clock)
        assert (await client.get("/read", headers={"Authorization": "Bearer other"})
                ).status_code == 200
