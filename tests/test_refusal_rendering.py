"""Details of every refusal: ``X-Content-Type-Options``, ``Vary`` naming the credential
fields the answer depends on, ``instance`` as a URI reference, and a challenge's error
code only on the scheme the client used."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

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
    HasScopes,
    Identity,
    JWTKey,
    PBKDF2Hasher,
    StaticAPIKeys,
    StaticPasswords,
    StepUp,
    hash_api_key,
    problem_schema,
    protect,
)
from authguard.challenges import parse_www_authenticate
from helpers import asgi_client

SECRET = "rendering-tests-secret-0123456789abcdef"
ALICE = Identity(subject="alice", scheme="ApiKey")


async def _ok(request: Request) -> JSONResponse:
    return JSONResponse({})


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _token(**claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": "jo", "aud": "api", "iat": now - 5, "exp": now + 600, **claims}
    return "Bearer " + pyjwt.encode(payload, SECRET, algorithm="HS256")


def _app() -> Starlette:
    passwords = StaticPasswords.from_plaintext({"bob": ("builder", [])},
                                               hasher=PBKDF2Hasher(iterations=1000))
    guard = AuthGuard(
        authenticators=[
            BasicAuthenticator(verifier=passwords, realm="t"),
            BearerAuthenticator(key=JWTKey.hs256(SECRET), audience="api", realm="t"),
            APIKeyAuthenticator(store=StaticAPIKeys({hash_api_key("k-alice"): ALICE}),
                                header="X-Service-Key", realm="t"),
        ],
        deny_by_default=True,
        login_url="/login",
    )
    return Starlette(
        routes=[
            protect(Authenticated())(Route("/any", _ok)),
            protect(Authenticated("Basic"))(Route("/basic-only", _ok)),
            protect(HasScopes("reports:read"))(Route("/reports", _ok)),
            protect(StepUp("mfa", max_age=300))(Route("/step-up", _ok)),
        ],
        middleware=[Middleware(AuthGuardMiddleware, guard=guard)],
    )


@pytest.mark.parametrize(("path", "headers", "status"), [
    ("/any", {}, 401),
    ("/reports", {"Authorization": _basic("bob", "builder")}, 403),
    ("/any", {"Accept": "text/html"}, 303),
])
async def test_refusals_tell_browsers_not_to_sniff(path: str, headers: dict[str, str],
                                                   status: int) -> None:
    async with asgi_client(_app()) as client:
        response = await client.get(path, headers=headers)
    assert response.status_code == status
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_vary_names_the_credential_fields_the_route_reads() -> None:
    async with asgi_client(_app()) as client:
        any_scheme = await client.get("/any")
        bad_key = await client.get("/any", headers={"X-Service-Key": "wrong"})
        basic_only = await client.get("/basic-only")

    def vary(response: Any) -> list[str]:
        return [v.strip().lower() for v in response.headers["vary"].split(",")]

    assert vary(any_scheme) == ["authorization", "cookie", "x-service-key"]
    assert vary(bad_key) == ["authorization", "cookie", "x-service-key"]
    assert vary(basic_only) == ["authorization", "cookie"]  # no API key read there


# RFC 3986 §4.1 relative-ref made of a path: pchar, "/" and valid percent escapes only.
_PATH_REFERENCE = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")


@pytest.mark.parametrize(("raw", "instance"), [
    ("/no%20such%22", "/no%20such%22"),
    ("/a%2Fb", "/a%2Fb"),
    ("/any", "/any"),
    ("/caf%C3%A9/%3Cx%3E", "/caf%C3%A9/%3Cx%3E"),
])
async def test_instance_is_the_path_as_sent_a_uri_reference(raw: str, instance: str) -> None:
    async with asgi_client(_app()) as client:
        response = await client.get(raw)
    assert response.status_code == 401
    body = response.json()
    assert body["instance"] == instance
    assert _PATH_REFERENCE.fullmatch(body["instance"])


def test_the_schema_declares_instance_a_uri_reference() -> None:
    assert problem_schema()["properties"]["instance"]["format"] == "uri-reference"


def _challenges(response: Any) -> list[Any]:
    return [c for line in response.headers.get_list("www-authenticate")
            for c in parse_www_authenticate(line)]


async def test_a_basic_client_gets_no_bearer_error_code() -> None:
    """RFC 6750 §3.1 / RFC 9470 §3: the error code is about the token presented; a client
    that signed in with Basic never presented one."""
    async with asgi_client(_app()) as client:
        step_up = await client.get("/step-up", headers={"Authorization": _basic("bob",
                                                                                "builder")})
        scope = await client.get("/reports", headers={"Authorization": _basic("bob",
                                                                              "builder")})
    assert (step_up.status_code, step_up.json()["reason"]) == (401, "step_up_required")
    assert step_up.headers.get_list("www-authenticate")
    assert all("error" not in c.params for c in _challenges(step_up))
    assert (scope.status_code, scope.json()["reason"]) == (403, "insufficient_scope")
    assert all("error" not in c.params for c in _challenges(scope))


async def test_a_bearer_client_still_gets_its_error_code() -> None:
    async with asgi_client(_app()) as client:
        step_up = await client.get("/step-up", headers={"Authorization": _token()})
        scope = await client.get("/reports", headers={"Authorization": _token()})
    (challenge,) = _challenges(step_up)
    assert challenge.scheme == "Bearer"
    assert challenge.params["error"] == "insufficient_user_authentication"
    (challenge,) = _challenges(scope)
    assert challenge.params["error"] == "insufficient_scope"
    assert challenge.params["scope"] == "reports:read"
