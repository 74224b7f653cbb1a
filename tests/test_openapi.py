"""OpenAPI: one security scheme per authenticator, security per operation, refusals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest
from fastapi import Depends, FastAPI, Security
from starlette.requests import HTTPConnection

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    Challenge,
    HasRoles,
    Identity,
    PBKDF2Hasher,
    Public,
    Reason,
    StaticAPIKeys,
    StaticPasswords,
    problem_schema,
    protect,
)
from authguard.fastapi import CurrentIdentity, install, require

PROBLEM = "application/problem+json"


@dataclass(frozen=True, kw_only=True)
class FakeToken:
    """Stands in for an authenticator of another scheme (only its shape matters here)."""

    name: str
    cookie_name: str | None = None
    realm: str = "t"

    @property
    def scheme(self) -> str:
        return self.name

    def has_credentials(self, conn: HTTPConnection) -> bool:
        return False

    def account(self, conn: HTTPConnection) -> str | None:
        return None

    def challenge(self, reason: Reason | None = None,
                  params: dict[str, str] | None = None) -> Challenge:
        return Challenge(self.name, {"realm": self.realm})

    async def authenticate(self, conn: HTTPConnection) -> Identity | None:
        return None


def build() -> FastAPI:
    passwords = StaticPasswords.from_plaintext({"a": ("b", [])},
                                               hasher=PBKDF2Hasher(iterations=1000))
    guard = AuthGuard(authenticators=[
        BasicAuthenticator(verifier=passwords, realm="t"),
        FakeToken(name="Bearer"),
        APIKeyAuthenticator(store=StaticAPIKeys({}), header="X-API-Key", query_param="key",
                            cookie="apikey"),
        FakeToken(name="Cookie", cookie_name="sid"),
    ], rules={"/ruled": HasRoles("ops")})
    app = FastAPI()
    app.add_middleware(AuthGuardMiddleware, guard=guard)
    install(app, guard)

    @app.get("/public")
    @protect(Public)
    async def public() -> dict[str, str]:
        return {}

    @app.get("/optional")
    async def optional() -> dict[str, str]:
        return {}

    @app.get("/me")
    async def me(who: CurrentIdentity) -> dict[str, str]:
        return {}

    @app.get("/bearer-only", dependencies=[Depends(require(Authenticated("Bearer")))])
    async def bearer_only() -> dict[str, str]:
        return {}

    @app.get("/reports",
             dependencies=[Security(require(Authenticated()), scopes=["reports:read"])])
    async def reports() -> dict[str, str]:
        return {}

    @app.delete("/items/{item_id}",
                dependencies=[Depends(require(HasRoles("admin"), conceal=True))])
    async def delete_item(item_id: int) -> dict[str, str]:
        return {}

    @app.get("/ruled/x")
    async def ruled() -> dict[str, str]:
        return {}

    return app


@pytest.fixture
def doc() -> dict[str, Any]:
    return build().openapi()


def test_security_schemes(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert all(s.pop("description") for s in schemes.values())
    assert schemes == {
        "Basic": {"type": "http", "scheme": "basic"},
        "Bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "ApiKeyQuery": {"type": "apiKey", "in": "query", "name": "key"},
        "ApiKeyCookie": {"type": "apiKey", "in": "cookie", "name": "apikey"},
        "Cookie": {"type": "apiKey", "in": "cookie", "name": "sid"},
    }


ALL = [{"Basic": []}, {"Bearer": []}, {"ApiKey": []}, {"ApiKeyQuery": []},
       {"ApiKeyCookie": []}, {"Cookie": []}]


def op(doc: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    found: dict[str, Any] = doc["paths"][path][method]
    return found


def test_public_operation_has_no_security(doc: dict[str, Any]) -> None:
    o = op(doc, "/public")
    assert "security" not in o
    assert set(o["responses"]) == {"200"}


def test_optional_credentials(doc: dict[str, Any]) -> None:
    """The guard's default (credentials checked when sent) is an optional requirement."""
    o = op(doc, "/optional")
    assert o["security"] == [{}, *ALL]


def test_authenticated_operations(doc: dict[str, Any]) -> None:
    o = op(doc, "/bearer-only")
    assert o["security"] == [{"Bearer": []}]
    # 400: RFC 6750 §3.1 invalid_request (a token sent by more than one method); 503: an
    # authenticator of one's own (FakeToken) may find its backend down (AuthUnavailable)
    assert set(o["responses"]) == {"200", "400", "401", "503"}
    r401 = o["responses"]["401"]
    assert r401["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "WWW-Authenticate" in r401["headers"]


def test_scopes_on_bearer(doc: dict[str, Any]) -> None:
    o = op(doc, "/reports")
    assert {"Bearer": ["reports:read"]} in o["security"]
    # static passwords grant no scopes: Basic alone can never pass (OpenAPI 3.1 §4.8.30)
    assert {"Basic": []} not in o["security"]
    assert set(o["responses"]) >= {"401", "403"}
    examples = o["responses"]["403"]["content"][PROBLEM]["examples"]
    assert {e["value"]["status"] for e in examples.values()} == {403}
    assert "insufficient_scope" in examples
    r401 = o["responses"]["401"]["content"][PROBLEM]["examples"]
    assert {e["value"]["status"] for e in r401.values()} == {401}
    assert {"token_expired", "credentials_missing"} <= set(r401)
    assert doc["components"]["schemas"]["Problem"]["title"] == "Problem"
    assert "allOf" not in doc["components"]["schemas"]["Problem"]
    assert "insufficient_scope" in o["responses"]["403"]["description"]


def test_concealed_and_rules(doc: dict[str, Any]) -> None:
    o = op(doc, "/items/{item_id}", "delete")
    assert set(o["responses"]) >= {"401", "404"} and "403" not in o["responses"]
    o = op(doc, "/ruled/x")
    assert set(o["responses"]) >= {"401", "403"}
    assert o["x-authguard-policy"] == "roles ops"


def test_problem_schema_component(doc: dict[str, Any]) -> None:
    component = doc["components"]["schemas"]["Problem"]
    assert "$id" not in component and "$schema" not in component
    shipped = problem_schema()
    assert component["properties"] == shipped["properties"]
    jsonschema.Draft202012Validator.check_schema(component)


def test_schema_is_cached_and_stable() -> None:
    app = build()
    first = app.openapi()
    assert app.openapi() is first
    # ``who: CurrentIdentity`` refuses anonymous calls: documented as required, with 401
    me = first["paths"]["/me"]["get"]
    assert me["security"] == ALL
    assert "401" in me["responses"]


def _offered(app: FastAPI, path: str) -> set[str]:
    return {name for alt in app.openapi()["paths"][path]["get"]["security"] for name in alt}


def test_alternatives_follow_what_each_scheme_can_carry() -> None:
    """A scheme whose identities cannot meet the route (no scopes, no acr) is not offered;
    one whose identities can is (API keys with scopes, a session with an acr)."""
    from authguard import SessionAuthenticator, StepUp
    from authguard.composition import AnyOf
    from authguard.requirements import HasScopes

    hasher = PBKDF2Hasher(iterations=1_000)
    basic = BasicAuthenticator(verifier=StaticPasswords.from_plaintext(
        {"u": ("p", ["admin"])}, hasher=hasher))
    plain_keys = APIKeyAuthenticator(store=StaticAPIKeys(
        {"h1": Identity(subject="k", scheme="ApiKey", roles=frozenset({"admin"}))}))
    session = SessionAuthenticator(secret_keys=["s" * 32], claims=["roles", "acr"])

    def build(keys: APIKeyAuthenticator) -> FastAPI:
        app = FastAPI()
        guard = AuthGuard(authenticators=[basic, keys, session])
        app.add_middleware(AuthGuardMiddleware, guard=guard)

        @app.get("/scoped")
        @protect(HasScopes("read"))
        async def scoped() -> dict[str, str]:
            return {}

        @app.get("/mfa")
        @protect(StepUp("mfa", max_age=60))
        async def mfa() -> dict[str, str]:
            return {}

        @app.get("/either")
        @protect(AnyOf(HasScopes("read"), HasRoles("admin")))
        async def either() -> dict[str, str]:
            return {}

        install(app, guard)
        return app

    app = build(plain_keys)
    assert _offered(app, "/scoped") == set()
    assert _offered(app, "/mfa") == {"Cookie"}
    assert _offered(app, "/either") == {"Basic", "ApiKey", "Cookie"}
    scoped_keys = APIKeyAuthenticator(store=StaticAPIKeys(
        {"h2": Identity(subject="k", scheme="ApiKey", scopes=frozenset({"read"}))}))
    assert _offered(build(scoped_keys), "/scoped") == {"ApiKey"}


async def test_session_login_refuses_what_its_claims_do_not_name() -> None:
    from authguard import ConfigurationError, SessionAuthenticator
    from authguard.testing import session_cookie

    session = SessionAuthenticator(secret_keys=["s" * 32], claims=["roles"])
    with pytest.raises(ConfigurationError, match="scopes"):
        await session_cookie(session, "alice", scopes=["read"])
    name, value = await session_cookie(session, "alice", roles=["user"])
    assert name == session.cookie_name and value
    assert session.identity_claims == {"roles", "auth_time"}
    with pytest.raises(ConfigurationError, match="claims"):
        SessionAuthenticator(secret_keys=["s" * 32], claims=["roles", "email"])


def test_503_documented_where_a_backend_can_be_unreachable() -> None:
    """In-memory stores never fail; a store of your own (Redis, a database) may: then the
    route documents 503 with an ``auth_unavailable`` example of its own status."""
    from authguard import APIKeyStore

    class DatabaseKeys:  # stands in for a lookup over the network
        async def lookup(self, key_hash: str) -> Identity | None:
            return None

    def build(store: APIKeyStore) -> dict[str, Any]:
        app = FastAPI()
        guard = AuthGuard(authenticators=[APIKeyAuthenticator(store=store)])
        app.add_middleware(AuthGuardMiddleware, guard=guard)

        @app.get("/me")
        @protect(Authenticated())
        async def me() -> dict[str, str]:
            return {}

        install(app, guard)
        return app.openapi()["paths"]["/me"]["get"]["responses"]

    assert "503" not in build(StaticAPIKeys({}))
    responses = build(DatabaseKeys())
    examples = responses["503"]["content"][PROBLEM]["examples"]
    assert list(examples) == ["auth_unavailable"]
    assert examples["auth_unavailable"]["value"]["status"] == 503
    assert "Retry-After" in responses["503"]["headers"]
