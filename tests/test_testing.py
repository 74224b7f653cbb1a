"""authguard.testing, and FastAPI's dependency_overrides on authguard's dependencies."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Security

from authguard import (
    AuthGuard,
    AuthGuardMiddleware,
    BearerAuthenticator,
    ConfigurationError,
    HasRoles,
    Identity,
    JWTKey,
    SessionAuthenticator,
    protect,
)
from authguard.fastapi import CurrentIdentity, current_identity, optional_identity, require
from authguard.testing import (
    TokenFactory,
    bearer_headers,
    force_identity,
    log_in,
    make_identity,
    session_cookie,
)
from helpers import asgi_client

SECRET = "test-secret-0123456789abcdef-0123456789abcdef"
bearer = BearerAuthenticator(key=JWTKey.hs256(SECRET), audience="api", issuer="https://iss")
session = SessionAuthenticator(secret_keys=["s" * 40])
require_admin = require(HasRoles("admin"))


def make_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[bearer, session]))

    @app.get("/me")
    async def me(who: CurrentIdentity) -> dict[str, Any]:
        return {"subject": who.subject, "roles": sorted(who.roles)}

    @app.get("/admin")
    @protect(HasRoles("admin"))
    async def admin(who: CurrentIdentity) -> dict[str, str]:
        return {"admin": who.subject}

    @app.get("/admin-dep")
    async def admin_dep(who: Annotated[Identity, Depends(require_admin)]) -> dict[str, str]:
        return {"admin": who.subject}

    @app.get("/reports")
    async def reports(who: Annotated[Identity, Security(require(None),
                                                            scopes=["reports:read"])]
                      ) -> dict[str, str]:
        return {"reports": who.subject}

    @app.get("/maybe")
    async def maybe(who: Annotated[Identity | None, Depends(optional_identity)]
                    ) -> dict[str, Any]:
        return {"subject": who.subject if who else None}

    return app


async def test_dependency_override_of_current_identity_is_honoured() -> None:
    app = make_app()
    alice = make_identity("alice", roles=["user"])
    app.dependency_overrides[current_identity] = lambda: alice
    async with asgi_client(app) as client:
        r = await client.get("/me")
        assert r.status_code == 200, r.text
        assert r.json() == {"subject": "alice", "roles": ["user"]}
        # the routes' requirements still apply to the forced identity
        assert (await client.get("/admin")).json()["reason"] == "forbidden"
    app.dependency_overrides.clear()
    async with asgi_client(app) as client:
        assert (await client.get("/me")).json()["reason"] == "credentials_missing"


async def test_async_override_and_scopes() -> None:
    app = make_app()

    async def carol() -> Identity:
        return make_identity("carol", scopes=["reports:read"])

    app.dependency_overrides[current_identity] = carol
    async with asgi_client(app) as client:
        assert (await client.get("/reports")).json() == {"reports": "carol"}
    app.dependency_overrides[current_identity] = lambda: make_identity("dave")
    async with asgi_client(app) as client:
        r = await client.get("/reports")
        assert r.status_code == 403
        assert r.json()["reason"] == "insufficient_scope"


async def test_overriding_a_require_dependency_replaces_its_check() -> None:
    app = make_app()
    app.dependency_overrides[require_admin] = lambda: make_identity("root")
    async with asgi_client(app) as client:
        assert (await client.get("/admin-dep")).json() == {"admin": "root"}
        # only the routes that use the overridden dependency
        assert (await client.get("/me")).json()["reason"] == "credentials_missing"
        assert (await client.get("/admin")).status_code == 401


async def test_unrelated_overrides_change_nothing() -> None:
    app = make_app()

    def unrelated() -> int:
        return 1

    app.dependency_overrides[unrelated] = lambda: 2
    async with asgi_client(app) as client:
        assert (await client.get("/me")).json()["reason"] == "credentials_missing"


async def test_an_override_that_cannot_be_called_says_so() -> None:
    app = make_app()
    app.dependency_overrides[current_identity] = lambda request: None
    async with asgi_client(app) as client:
        with pytest.raises(ConfigurationError, match=r"dependency_overrides\[current"):
            await client.get("/me")
    app.dependency_overrides[current_identity] = lambda: "alice"
    async with asgi_client(app) as client:
        with pytest.raises(ConfigurationError, match="not an authguard"):
            await client.get("/me")


async def test_force_identity_restores_overrides() -> None:
    app = make_app()
    with force_identity(app, make_identity("bob", roles=["admin"])):
        async with asgi_client(app) as client:
            assert (await client.get("/admin")).json() == {"admin": "bob"}
            assert (await client.get("/maybe")).json() == {"subject": "bob"}
    assert app.dependency_overrides == {}
    with force_identity(app, None):
        async with asgi_client(app) as client:
            assert (await client.get("/me")).status_code == 401
            assert (await client.get("/maybe")).json() == {"subject": None}


async def test_token_factory_mints_accepted_and_refused_tokens() -> None:
    tokens = TokenFactory(bearer)
    async with asgi_client(make_app()) as client:
        r = await client.get("/me", headers=bearer_headers(tokens.token("alice",
                                                                         roles=["admin"])))
        assert r.json() == {"subject": "alice", "roles": ["admin"]}
        token = tokens.token(scopes=["reports:read"])
        r = await client.get("/reports", headers=bearer_headers(token))
        assert r.status_code == 200
        r = await client.get("/me", headers=bearer_headers(tokens.expired()))
        assert r.json()["reason"] == "token_expired"
        r = await client.get("/me", headers=bearer_headers(tokens.not_yet_valid()))
        assert r.json()["reason"] == "token_not_yet_valid"
        r = await client.get("/me", headers=bearer_headers(tokens.wrong_audience()))
        assert r.status_code == 401
        assert r.json()["reason"] in ("credentials_invalid", "token_wrong_audience")


async def test_token_factory_needs_a_private_key_for_public_keys() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    es = BearerAuthenticator(key=JWTKey.from_pem(pem, "ES256"), audience="api")
    with pytest.raises(ConfigurationError, match="signing_key"):
        TokenFactory(es)
    token = TokenFactory(es, signing_key=pem, algorithm="ES256").token("erin")
    app = FastAPI()
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[es]))

    @app.get("/me")
    async def me(who: CurrentIdentity) -> dict[str, str]:
        return {"subject": who.subject}

    async with asgi_client(app) as client:
        r = await client.get("/me", headers=bearer_headers(token))
        assert r.json() == {"subject": "erin"}


async def test_log_in_sets_a_working_session_cookie() -> None:
    async with asgi_client(make_app()) as client:
        await log_in(client, session, "carol", roles=["admin"])
        assert (await client.get("/admin")).json() == {"admin": "carol"}


async def test_session_cookie_in_async_tests() -> None:
    import httpx

    name, value = await session_cookie(session, "dora")
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t",
                                 cookies={name: value}) as client:
        assert (await client.get("/me")).json() == {"subject": "dora", "roles": []}
