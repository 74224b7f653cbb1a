"""The middleware decides the usual case (no address policy, https rule or brute-force
guard) without its general decision routine: both must give the same answer, byte for byte
apart from the request id."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    AllOf,
    APIKeyAuthenticator,
    AuthContext,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    AuthState,
    BasicAuthenticator,
    HasRoles,
    HasScopes,
    Identity,
    NetworkPolicy,
    PBKDF2Hasher,
    Permission,
    StaticAPIKeys,
    StaticPasswords,
    hash_api_key,
    protect,
)
from helpers import asgi_client

ALICE = Identity(subject="alice", scheme="ApiKey", roles=frozenset({"user"}),
                 scopes=frozenset({"reports:read"}))


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def _who(request: Request) -> JSONResponse:
    state = request.scope["authguard"]
    return JSONResponse({
        "user": request.user.display_name if request.user.is_authenticated else None,
        "scopes": request.auth.scopes,
        "state_is_auth": state is request.auth,
        "auth_context": isinstance(request.auth, AuthContext),
        "state": isinstance(state, AuthState),
        "identity": state.identity.subject if state.identity else None,
    })


def _app(*, general: bool) -> Starlette:
    passwords = StaticPasswords.from_plaintext({"bob": ("builder", ["admin"])},
                                               hasher=PBKDF2Hasher(iterations=1000))
    guard = AuthGuard(
        authenticators=[
            BasicAuthenticator(verifier=passwords, realm="t"),
            APIKeyAuthenticator(store=StaticAPIKeys({hash_api_key("k-alice"): ALICE}),
                                realm="t"),
        ],
        # An address policy that lets everyone in still sends every request through the
        # general routine.
        network=NetworkPolicy(allow=["0.0.0.0/0", "::/0"]) if general else None,
        max_credentials_bytes=256,
    )

    async def is_alice(request: Any, identity: Identity | None) -> bool:
        return identity is not None and identity.subject == "alice"

    return Starlette(
        routes=[
            # One endpoint function for every route: the policies go on the Route objects.
            protect(Authenticated())(Route("/any", _who)),
            protect(Authenticated("ApiKey"))(Route("/key", _who)),
            protect(HasRoles("admin"))(Route("/admin", _who)),
            protect(AllOf(Authenticated(), HasScopes("reports:read")))(Route("/reports", _who)),
            protect(HasRoles("admin", "user", any=True))(Route("/either", _who)),
            protect(Permission(is_alice))(Route("/alice", _who)),
        ],
        middleware=[Middleware(AuthGuardMiddleware, guard=guard)],
    )


REQUESTS: list[tuple[str, dict[str, str]]] = [
    (path, headers)
    for path in ("/any", "/key", "/admin", "/reports", "/either", "/alice")
    for headers in (
        {},
        {"X-API-Key": "k-alice"},
        {"X-API-Key": "wrong"},
        {"X-API-Key": "k\x7f"},
        {"X-API-Key": "x" * 300},
        {"Authorization": _basic("bob", "builder")},
        {"Authorization": _basic("bob", "nope")},
        {"Authorization": "Basic !!!"},
        {"Authorization": _basic("bob", "builder"), "X-API-Key": "k-alice"},
    )
]


def _comparable(response: Any) -> tuple[int, list[tuple[str, str]], Any]:
    headers = [(k, v) for k, v in response.headers.multi_items() if k != "x-request-id"]
    body: Any = response.content
    if response.headers.get("content-type", "").startswith("application/"):
        body = response.json()
        if isinstance(body, dict):
            body.pop("request_id", None)
    return response.status_code, headers, body


@pytest.mark.parametrize(("path", "headers"), REQUESTS)
async def test_usual_and_general_decisions_agree(path: str, headers: dict[str, str]) -> None:
    async with asgi_client(_app(general=False)) as fast, \
            asgi_client(_app(general=True)) as general:
        a = await fast.get(path, headers=headers)
        b = await general.get(path, headers=headers)
    assert _comparable(a) == _comparable(b)


async def test_the_usual_cases_answer_as_documented() -> None:
    async with asgi_client(_app(general=False)) as c:
        allowed = await c.get("/reports", headers={"X-API-Key": "k-alice"})
        missing = await c.get("/any")
        wrong_scheme = await c.get("/key", headers={"Authorization": _basic("bob", "builder")})
        no_role = await c.get("/admin", headers={"X-API-Key": "k-alice"})
        permission = await c.get("/alice", headers={"Authorization": _basic("bob", "builder")})
        too_long = await c.get("/any", headers={"X-API-Key": "x" * 300})
    assert allowed.status_code == 200
    assert allowed.json() == {"user": "alice", "scopes": ["reports:read", "authenticated"],
                              "state_is_auth": True, "auth_context": True, "state": True,
                              "identity": "alice"}
    assert (missing.status_code, missing.json()["reason"]) == (401, "credentials_missing")
    assert (wrong_scheme.status_code, wrong_scheme.json()["reason"]) == (
        401, "credentials_missing")
    assert (no_role.status_code, no_role.json()["reason"]) == (403, "forbidden")
    assert (permission.status_code, permission.json()["reason"]) == (403, "forbidden")
    assert (too_long.status_code, too_long.json()["reason"]) == (401, "credentials_malformed")


def test_protecting_one_function_twice_warns() -> None:
    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({})

    protect(Authenticated())(endpoint)
    protect(Authenticated())(endpoint)  # the same policy again: nothing to say
    with pytest.warns(UserWarning, match=r"already had the policy 'authenticated', now "
                                         r"replaced by 'roles admin'.*protect the Route"):
        protect(HasRoles("admin"))(endpoint)


def test_a_subclass_replaces_its_parents_policy_quietly() -> None:
    from starlette.endpoints import HTTPEndpoint

    @protect(Authenticated())
    class Parent(HTTPEndpoint):
        pass

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")

        @protect(HasRoles("admin"))
        class Child(Parent):
            pass

    assert Child.__authguard_policy__.requirement == HasRoles("admin")  # type: ignore[attr-defined]
