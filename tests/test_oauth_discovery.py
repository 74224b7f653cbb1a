"""Issuer discovery (RFC 8414), key rotation and outages, against a real loopback issuer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    AuthGuard,
    AuthGuardMiddleware,
    BearerAuthenticator,
    ConfigurationError,
    HasScopes,
    parse_www_authenticate,
    protect,
)
from authguard.oauth import BearerIssuers, IssuerKeys, ProtectedResource, metadata_urls
from helpers import asgi_client
from oauth_issuer import WRONG_AUDIENCE_REASONS, Clock, LoopbackIssuer, SigningKey

RESOURCE = "https://api.example.test/mcp"
METADATA_URL = "https://api.example.test/.well-known/oauth-protected-resource/mcp"


@pytest.fixture
def issuer() -> Iterator[LoopbackIssuer]:
    with LoopbackIssuer() as server:
        yield server


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"subject": request.user.subject})


def make_app(*authenticators: object) -> Starlette:
    app = Starlette(routes=[protect(HasScopes("read"))(Route("/data", whoami))])
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=authenticators))  # type: ignore[arg-type]
    return app


def bearer_for(server: LoopbackIssuer, clock: Clock | None = None, **kw: object
               ) -> BearerAuthenticator:
    resource = ProtectedResource(resource=RESOURCE, authorization_servers=[server.issuer])
    keys = IssuerKeys(server.issuer, clock=clock or Clock(), min_refresh_interval=30,
                      retry_after=7)
    return BearerAuthenticator(keys=keys, issuer=server.issuer, audience=RESOURCE,
                               resource=resource, **kw)  # type: ignore[arg-type]


async def get(app: Starlette, token: str) -> tuple[int, dict[str, object], object]:
    async with asgi_client(app) as client:
        response = await client.get("/data", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json(), response


def test_metadata_urls_follow_rfc_8414_then_openid() -> None:
    assert metadata_urls("https://as.example") == [
        "https://as.example/.well-known/oauth-authorization-server",
        "https://as.example/.well-known/openid-configuration"]
    assert metadata_urls("https://as.example/tenant/1/") == [
        "https://as.example/.well-known/oauth-authorization-server/tenant/1",
        "https://as.example/tenant/1/.well-known/openid-configuration"]


async def test_keys_are_found_from_the_issuer_alone(issuer: LoopbackIssuer) -> None:
    app = make_app(bearer_for(issuer))
    status, body, _ = await get(app, issuer.sign(issuer.claims(RESOURCE)))
    assert (status, body) == (200, {"subject": "alice"})
    assert issuer.hits["/.well-known/oauth-authorization-server"] == 1
    assert issuer.hits["/keys"] == 1


async def test_issuer_with_a_path_uses_the_path_inserted_url() -> None:
    with LoopbackIssuer(path="/tenant-a") as server:
        app = make_app(bearer_for(server))
        status, _, _ = await get(app, server.sign(server.claims(RESOURCE)))
        assert status == 200
        assert server.hits["/.well-known/oauth-authorization-server/tenant-a"] == 1


async def test_openid_configuration_is_the_fallback() -> None:
    with LoopbackIssuer(openid_only=True) as server:
        app = make_app(bearer_for(server))
        status, _, _ = await get(app, server.sign(server.claims(RESOURCE)))
        assert status == 200
        assert server.hits["/.well-known/oauth-authorization-server"] == 1  # a 404
        assert server.hits["/.well-known/openid-configuration"] == 1


async def test_metadata_naming_another_issuer_is_not_used(issuer: LoopbackIssuer) -> None:
    issuer.overrides["issuer"] = issuer.issuer + "/"  # a trailing slash is another issuer
    app = make_app(bearer_for(issuer))
    status, body, response = await get(app, issuer.sign(issuer.claims(RESOURCE)))
    assert status == 503 and body["reason"] == "auth_unavailable"
    assert response.headers["retry-after"] == "7"  # type: ignore[attr-defined]
    assert issuer.hits["/keys"] == 0


async def test_wrong_audience_and_wrong_issuer_are_refused(issuer: LoopbackIssuer) -> None:
    app = make_app(bearer_for(issuer))
    for claims in (issuer.claims("https://other.example/api"),
                   issuer.claims(RESOURCE, iss="https://evil.example")):
        status, body, response = await get(app, issuer.sign(claims))
        assert status == 401
        assert body["reason"] in WRONG_AUDIENCE_REASONS
        (challenge,) = parse_www_authenticate(
            response.headers["www-authenticate"])  # type: ignore[attr-defined]
        assert challenge.params["error"] == "invalid_token"
        assert challenge.params["resource_metadata"] == METADATA_URL


async def test_an_algorithm_the_metadata_does_not_announce_is_refused(
        issuer: LoopbackIssuer) -> None:
    es = SigningKey.ec()
    issuer.published.append(es)  # the JWKS has an ES256 key, the metadata says RS256
    token = issuer.sign(issuer.claims(RESOURCE), key=es)
    status, body, _ = await get(make_app(bearer_for(issuer)), token)
    assert (status, body["reason"]) == (401, "credentials_invalid")
    # The same token is good where the metadata announces ES256: the metadata decided.
    issuer.overrides["id_token_signing_alg_values_supported"] = ["RS256", "ES256"]
    status, _, _ = await get(make_app(bearer_for(issuer)), token)
    assert status == 200
    # A member for access tokens, where published, says more than the ID tokens' one.
    issuer.overrides["access_token_signing_alg_values_supported"] = ["RS256"]
    status, _, _ = await get(make_app(bearer_for(issuer)), token)
    assert status == 401


async def test_unknown_kid_refreshes_once_then_refuses_then_rotation_works(
        issuer: LoopbackIssuer) -> None:
    clock = Clock()
    app = make_app(bearer_for(issuer, clock))
    assert (await get(app, issuer.sign(issuer.claims(RESOURCE))))[0] == 200
    assert issuer.hits["/keys"] == 1
    new = SigningKey.rsa()
    token = issuer.sign(issuer.claims(RESOURCE), key=new)
    clock.advance(31)  # past min_refresh_interval since the first fetch
    status, body, _ = await get(app, token)
    assert (status, body["reason"]) == (401, "credentials_invalid")
    assert issuer.hits["/keys"] == 2  # refreshed once for the unknown kid
    status, _, _ = await get(app, issuer.sign(issuer.claims(RESOURCE), key=SigningKey.rsa()))
    assert status == 401
    assert issuer.hits["/keys"] == 2  # rate-limited: no fetch per bad token
    issuer.published.append(new)  # the issuer rotates
    clock.advance(31)
    assert (await get(app, token))[0] == 200
    assert issuer.hits["/keys"] == 3


async def test_expired_token(issuer: LoopbackIssuer) -> None:
    claims = issuer.claims(RESOURCE, exp=1_000_000, iat=999_000)
    status, body, _ = await get(make_app(bearer_for(issuer)), issuer.sign(claims))
    assert (status, body["reason"]) == (401, "token_expired")


async def test_issuer_down_gives_503_then_recovers_without_restart() -> None:
    clock = Clock()
    server = LoopbackIssuer()
    app = make_app(bearer_for(server, clock))
    token = server.sign(server.claims(RESOURCE))
    status, body, response = await get(app, token)  # never started: unreachable
    assert (status, body["reason"]) == (503, "auth_unavailable")
    assert response.headers["retry-after"] == "7"  # type: ignore[attr-defined]
    assert "www-authenticate" not in response.headers  # type: ignore[operator]
    with server:
        status, _, _ = await get(app, token)
        assert status == 503  # within the retry interval: no storm of fetches
        clock.advance(31)
        status, _, _ = await get(app, token)
        assert status == 200  # recovered, same process
    # Down again: the cached keys keep working.
    clock.advance(31)
    assert (await get(app, token))[0] == 200


async def test_key_set_unreachable_after_discovery_is_503(issuer: LoopbackIssuer) -> None:
    issuer.overrides["jwks_uri"] = "http://127.0.0.1:9/keys"  # nothing listens there
    status, body, _ = await get(make_app(bearer_for(issuer)), issuer.sign(
        issuer.claims(RESOURCE)))
    assert (status, body["reason"]) == (503, "auth_unavailable")


async def test_several_issuers_each_with_its_own_audience() -> None:
    with LoopbackIssuer() as a, LoopbackIssuer(path="/b") as b:
        other_resource = "https://api.example.test/reports"
        first = bearer_for(a)
        second = BearerAuthenticator(keys=IssuerKeys(b.issuer), issuer=b.issuer,
                                     audience=other_resource)
        app = make_app(BearerIssuers([first, second]))
        assert (await get(app, a.sign(a.claims(RESOURCE))))[0] == 200
        assert (await get(app, b.sign(b.claims(other_resource))))[0] == 200
        # Each issuer's audience rule holds for its own tokens only.
        for token in (a.sign(a.claims(other_resource)), b.sign(b.claims(RESOURCE))):
            status, body, _ = await get(app, token)
            assert status == 401 and body["reason"] in WRONG_AUDIENCE_REASONS
        # A token naming issuer A but signed by B's key: A's keys decide, and refuse.
        forged = b.sign(a.claims(RESOURCE))
        assert (await get(app, forged))[0] == 401
        # An issuer nobody trusts.
        status, body, _ = await get(app, b.sign(b.claims(RESOURCE, iss="https://x.test")))
        assert status == 401 and body["reason"] in WRONG_AUDIENCE_REASONS


def test_configuration_mistakes_name_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="issuer"):
        IssuerKeys("http://as.example.com")  # plain http, not loopback
    with pytest.raises(ConfigurationError, match="algorithms"):
        IssuerKeys("https://as.example.com", algorithms=["HS256"])
    with pytest.raises(ConfigurationError, match="algorithm"):
        IssuerKeys("https://as.example.com", algorithms=["none"])
    first = BearerAuthenticator(keys=IssuerKeys("https://a.example"), audience="x")
    with pytest.raises(ConfigurationError, match="issuer"):
        BearerIssuers([first])
