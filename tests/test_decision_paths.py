"""One routine decides every request: its answers are compared, byte for byte apart from
the request id, with the answers recorded before it replaced two routines (one for the
usual case, one general)."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from authguard import (
    AllOf,
    Anyone,
    APIKeyAuthenticator,
    AuthContext,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    AuthState,
    AuthUnavailable,
    BasicAuthenticator,
    BearerAuthenticator,
    Challenge,
    HasRoles,
    HasScopes,
    Identity,
    JWTKey,
    NetworkPolicy,
    PBKDF2Hasher,
    Permission,
    Reason,
    Refusal,
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


class Ticket:
    """An authenticator of one's own (``X-Ticket``) whose refusals name no scheme: the
    middleware names it."""

    scheme = "Ticket"

    def has_credentials(self, conn: HTTPConnection) -> bool:
        return "x-ticket" in conn.headers

    def account(self, conn: HTTPConnection) -> str | None:
        return None

    def challenge(self, reason: Reason | None = None,
                  params: dict[str, str] | None = None) -> Challenge:
        return Challenge("Ticket", {"realm": "t"})

    async def authenticate(self, conn: HTTPConnection) -> Identity | None:
        ticket = conn.headers.get("x-ticket")
        if ticket is None:
            return None
        if ticket == "down":
            raise AuthUnavailable("the ticket office is closed", retry_after=7)
        if ticket != "good":
            raise Refusal(Reason.CREDENTIALS_INVALID)  # no scheme given
        return Identity(subject="tim", scheme="Ticket", roles=frozenset({"user"}))


SECRET = "decision-paths-secret-0123456789abcdef"


def _token(**claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": "jo", "aud": "api", "iat": now - 5, "exp": now + 600,
               "scope": "reports:read", **claims}
    return "Bearer " + pyjwt.encode(payload, SECRET, algorithm="HS256")


def _app(*, general: bool) -> Starlette:
    passwords = StaticPasswords.from_plaintext({"bob": ("builder", ["admin"])},
                                               hasher=PBKDF2Hasher(iterations=1000))
    guard = AuthGuard(
        authenticators=[
            BasicAuthenticator(verifier=passwords, realm="t"),
            APIKeyAuthenticator(store=StaticAPIKeys({hash_api_key("k-alice"): ALICE}),
                                realm="t"),
            BearerAuthenticator(key=JWTKey.hs256(SECRET), audience="api", realm="t"),
            Ticket(),
        ],
        # An address policy that lets everyone in still sends every request through the
        # general routine.
        network=NetworkPolicy(allow=["0.0.0.0/0", "::/0"]) if general else None,
        max_credentials_bytes=256,
    )

    async def is_alice(request: Any, identity: Identity | None) -> bool:
        return identity is not None and identity.subject == "alice"

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.user.display_name)
        await websocket.close()

    return Starlette(
        routes=[
            # One endpoint function for every route: the policies go on the Route objects.
            protect(Authenticated())(Route("/any", _who)),
            protect(Authenticated("ApiKey"))(Route("/key", _who)),
            protect(HasRoles("admin"))(Route("/admin", _who)),
            protect(AllOf(Authenticated(), HasScopes("reports:read")))(Route("/reports", _who)),
            protect(HasRoles("admin", "user", any=True))(Route("/either", _who)),
            protect(Permission(is_alice))(Route("/alice", _who)),
            protect(Anyone())(Route("/anyone", _who)),
            protect(Authenticated())(WebSocketRoute("/ws", socket)),
        ],
        middleware=[Middleware(AuthGuardMiddleware, guard=guard)],
    )


HEADERS: list[dict[str, str]] = [
    {},
    {"X-API-Key": "k-alice"},
    {"X-API-Key": "wrong"},
    {"X-API-Key": "k\x7f"},
    {"X-API-Key": "x" * 300},
    {"X-API-Key": "k-alice", "x-api-key": "k-alice"},
    {"Authorization": _basic("bob", "builder")},
    {"Authorization": _basic("bob", "nope")},
    {"Authorization": "Basic !!!"},
    {"Authorization": _basic("bob", "builder"), "X-API-Key": "k-alice"},
    {"Authorization": _token()},
    {"Authorization": _token(exp=int(time.time()) - 60)},
    {"Authorization": _token(nbf=int(time.time()) + 600)},
    {"Authorization": _token(aud="elsewhere")},
    {"Authorization": _token()[:-4] + "AAAA"},
    {"Authorization": "Bearer not-a-jwt"},
    {"X-Ticket": "good"},
    {"X-Ticket": "bad"},
    {"X-Ticket": "down"},
]
PATHS = ("/any", "/key", "/admin", "/reports", "/either", "/alice", "/anyone")
REQUESTS: list[tuple[str, dict[str, str]]] = [(p, h) for p in PATHS for h in HEADERS]


GOLDEN = Path(__file__).parent / "data" / "decision_golden.json"
"""Every answer of ``REQUESTS`` (and of the websocket cases), recorded from the release
before the decision was rewritten as one routine; refusals must stay byte for byte the
same (status, header lines in order, body apart from the request id)."""


def _comparable(response: Any) -> tuple[int, list[tuple[str, str]], Any]:
    """Status, header lines and body, without what differs between runs: the request id,
    and the seconds a not-yet-valid token is ahead (the body's length follows them)."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k != "x-request-id"]
    body: Any = response.content
    if response.headers.get("content-type", "").startswith("application/"):
        assert int(response.headers["content-length"]) == len(body)
        body = response.json()
        if isinstance(body, dict):
            body.pop("request_id", None)
            if "clock_skew_seconds" in body:
                body["clock_skew_seconds"] = "N"
                body["detail"] = re.sub(r"\d+ s ", "N s ", body["detail"])
                headers = [(k, v) for k, v in headers if k != "content-length"]
    return response.status_code, headers, body


def _golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("general", [False, True], ids=["usual", "address-policy"])
async def test_every_answer_is_the_recorded_one(general: bool) -> None:
    """The usual configuration and one with an address policy (which lets everyone in)
    give the recorded answers, byte for byte apart from the request id."""
    golden = _golden()["http"]
    assert len(golden) == len(REQUESTS)
    async with asgi_client(_app(general=general)) as client:
        for (path, headers), want in zip(REQUESTS, golden, strict=True):
            assert (want["path"], want["headers_index"]) == (path, HEADERS.index(headers))
            status, lines, body = _comparable(await client.get(path, headers=headers))
            assert (status, [list(h) for h in lines], body) == (
                want["status"], want["response_headers"], want["body"]), (path, headers)


async def _socket(app: Starlette, headers: list[tuple[bytes, bytes]]) -> list[Any]:
    sent: list[Any] = []
    incoming = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]

    async def receive() -> Any:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Any) -> None:
        if message["type"] == "websocket.http.response.body" or "headers" not in message:
            sent.append(message)
        else:
            sent.append({**message, "headers": [h for h in message["headers"]
                                                 if h[0] != b"x-request-id"]})

    scope = {"type": "websocket", "path": "/ws", "raw_path": b"/ws", "root_path": "",
             "query_string": b"", "scheme": "ws", "headers": [(b"host", b"t"), *headers],
             "server": ("t", 80), "client": ("127.0.0.1", 1), "subprotocols": [],
             "asgi": {"version": "3.0", "spec_version": "2.4"},
             "extensions": {"websocket.http.response": {}}}
    await app(scope, receive, send)
    return [{k: v for k, v in m.items() if k != "body"} if b"request_id" in m.get("body", b"")
            else m for m in sent]


SOCKET_HEADERS: list[list[tuple[bytes, bytes]]] = [
    [], [(b"x-api-key", b"k-alice")], [(b"x-api-key", b"wrong")], [(b"x-ticket", b"bad")]]


@pytest.mark.parametrize("general", [False, True], ids=["usual", "address-policy"])
@pytest.mark.parametrize("index", range(len(SOCKET_HEADERS)))
async def test_websockets_answer_as_recorded(index: int, general: bool) -> None:
    headers = SOCKET_HEADERS[index]
    sent = await _socket(_app(general=general), headers)
    assert repr(sent) == _golden()["websocket"][index]
    assert sent[0]["type"] == ("websocket.accept" if headers == [(b"x-api-key", b"k-alice")]
                               else "websocket.http.response.start")


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


async def test_the_root_path_is_part_of_a_routes_key() -> None:
    """``root_path="/a", path="/a/r"`` is the route ``/r``; ``root_path="", path="/a/a/r"``
    is the route ``/a/a/r``: one joined string would give both the first one's policy."""
    guard = AuthGuard(authenticators=[
        APIKeyAuthenticator(store=StaticAPIKeys({hash_api_key("k-alice"): ALICE}))])
    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({})

    app = Starlette(routes=[protect(Authenticated())(Route("/r", ok)),
                            protect(None)(Route("/a/a/r", ok))],
                    middleware=[Middleware(AuthGuardMiddleware, guard=guard)])

    async def status(root_path: str, path: str) -> int:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app({"type": "http", "method": "GET", "path": path, "root_path": root_path,
                   "raw_path": path.encode(), "query_string": b"", "scheme": "http",
                   "headers": [(b"host", b"t")], "server": ("t", 80),
                   "client": ("127.0.0.1", 1), "http_version": "1.1",
                   "asgi": {"version": "3.0"}}, receive, send)
        return int(sent[0]["status"])

    assert await status("", "/a/a/r") == 200  # public
    assert await status("/a", "/a/r") == 401  # /r, protected: not the public answer


async def test_anonymous_requests_do_not_share_their_auth() -> None:
    """An app that changes ``request.auth.scopes`` on a public route changes only that
    request's: a later anonymous request is not let through Starlette's ``@requires``."""
    from starlette.authentication import requires

    async def poison(request: Request) -> JSONResponse:
        request.auth.scopes.append("admin")
        return JSONResponse(request.auth.scopes)

    @requires("admin")
    async def admin(request: Request) -> JSONResponse:
        return JSONResponse({"secret": True})

    guard = AuthGuard(authenticators=[APIKeyAuthenticator(store=StaticAPIKeys({}))])
    app = Starlette(routes=[protect(None)(Route("/poison", poison, methods=["GET", "OPTIONS"])),
                            protect(None)(Route("/admin", admin))],
                    middleware=[Middleware(AuthGuardMiddleware, guard=guard)])
    async with asgi_client(app) as c:
        assert (await c.get("/admin")).status_code == 403
        assert (await c.get("/poison")).json() == ["admin"]
        assert (await c.get("/admin")).status_code == 403
        preflight = await c.options("/poison", headers={
            "Origin": "https://a.example", "Access-Control-Request-Method": "GET"})
        assert preflight.json() == ["admin"]  # no CORS middleware: the app answers it
        assert (await c.get("/admin")).status_code == 403
