"""The official MCP Python client against examples/mcp_server under real uvicorn.

Everything the client knows it learns from authguard's 401: the ``resource_metadata`` URL,
the RFC 9728 document, the authorization server's RFC 8414 metadata; then it registers,
authorizes (code + PKCE, ``resource=``), gets a token, initializes, lists tools and calls
``add(2, 3)``. A token for ``mcp:tools`` only gets 403 ``insufficient_scope`` on
``/admin/stats``; the client re-authorizes with the union of scopes and gets 200.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import AuthGuard, AuthGuardMiddleware, HasScopes, parse_www_authenticate, protect
from authguard.oauth import IntrospectionAuthenticator
from helpers import IN_CI, asgi_client, free_port, http_client, uvicorn_server
from oauth_issuer import WRONG_AUDIENCE_REASONS

try:
    import httpx2
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import (
        AuthorizationCodeResult,
        OAuthClientInformationFull,
        OAuthClientMetadata,
        OAuthToken,
    )
except ImportError:  # pragma: no cover - the mcp extra is part of dev
    if IN_CI:
        raise
    pytest.skip("the mcp extra is not installed (pip install -e '.[mcp]')",
                allow_module_level=True)

MCP_DIR = Path(__file__).resolve().parent.parent / "examples" / "mcp_server"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def mcp_servers() -> Iterator[tuple[str, str]]:
    """The development authorization server and the example, each on a free port."""
    as_port, rs_port = free_port(), free_port()
    env = {"AUTHGUARD_MCP_ISSUER": f"http://127.0.0.1:{as_port}",
           "AUTHGUARD_MCP_RESOURCE": f"http://127.0.0.1:{rs_port}/mcp"}
    with uvicorn_server("auth_server:app", app_dir=MCP_DIR, env=env, port=as_port) as issuer, \
            uvicorn_server("app:app", app_dir=MCP_DIR, env=env, port=rs_port) as base:
        yield issuer, base


class MemoryStorage:
    """The client's token storage."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class HeadlessBrowser:
    """Plays the user's browser: follows the authorization URL, keeps code and state."""

    def __init__(self) -> None:
        self.result: AuthorizationCodeResult | None = None
        self.visits: list[str] = []

    async def redirect(self, url: str) -> None:
        self.visits.append(url)
        async with httpx2.AsyncClient(follow_redirects=False) as client:
            response = await client.get(url)
        assert response.status_code in (302, 303, 307), response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        self.result = AuthorizationCodeResult(code=query["code"][0],
                                              state=query.get("state", [None])[0])

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        return self.result


def oauth_provider(resource: str, browser: HeadlessBrowser,
                   storage: MemoryStorage) -> OAuthClientProvider:
    return OAuthClientProvider(
        server_url=resource,
        client_metadata=OAuthClientMetadata(
            client_name="authguard test", redirect_uris=["http://127.0.0.1:1/callback"],
            grant_types=["authorization_code", "refresh_token"], response_types=["code"]),
        storage=storage,
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
    )


def test_the_401_names_the_metadata_and_the_scope(mcp_servers: tuple[str, str]) -> None:
    issuer, base = mcp_servers
    with http_client(base) as client:
        refused = client.post("/mcp", json={})
        assert refused.status_code == 401
        (challenge,) = parse_www_authenticate(refused.headers["www-authenticate"])
        assert challenge.scheme == "Bearer"
        url = challenge.params["resource_metadata"]
        assert url == f"{base}/.well-known/oauth-protected-resource/mcp"
        assert challenge.params["scope"] == "mcp:tools"
        document = client.get(url).json()
    assert document["resource"] == f"{base}/mcp"
    assert document["authorization_servers"] == [issuer]


async def test_official_client_completes_the_flow_and_steps_up(
        mcp_servers: tuple[str, str]) -> None:
    issuer, base = mcp_servers
    browser, storage = HeadlessBrowser(), MemoryStorage()
    auth = oauth_provider(f"{base}/mcp", browser, storage)
    seen: list[tuple[int, str]] = []

    async def record(response: httpx2.Response) -> None:
        seen.append((response.status_code, str(response.request.url)))

    async with httpx2.AsyncClient(auth=auth, event_hooks={"response": [record]},
                                  timeout=30) as http:
        async with streamable_http_client(f"{base}/mcp", http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                assert {t.name for t in tools.tools} == {"add", "whoami"}
                result = await session.call_tool("add", {"a": 2, "b": 3})
                assert not result.is_error
                assert result.structured_content == {"result": 5}
                me = await session.call_tool("whoami", {})
                assert me.content[0].text == "demo-user"  # type: ignore[union-attr]
        # What the client went through: the 401 from authguard, then the metadata.
        assert seen[0] == (401, f"{base}/mcp")
        assert (200, f"{base}/.well-known/oauth-protected-resource/mcp") in seen
        assert (200, f"{issuer}/.well-known/oauth-authorization-server") in seen
        assert storage.tokens is not None and storage.tokens.scope == "mcp:tools"
        assert "resource=" in browser.visits[0]

        # Step-up: the mcp:tools token is refused on /admin/stats with the scope it needs.
        seen.clear()
        stats = await http.get(f"{base}/admin/stats")
        assert stats.status_code == 200, stats.text
        assert stats.json()["subject"] == "demo-user"
        assert seen[0][0] == 403
        assert storage.tokens.scope is not None
        assert set(storage.tokens.scope.split()) == {"mcp:tools", "mcp:admin"}
        assert len(browser.visits) == 2
        assert "mcp%3Atools+mcp%3Aadmin" in browser.visits[1] or \
            "mcp:tools mcp:admin" in browser.visits[1]


def test_step_up_refusal_carries_scope_and_metadata(mcp_servers: tuple[str, str]) -> None:
    """The 403 itself, read by a plain client with a token for mcp:tools only."""
    issuer, base = mcp_servers
    token = _token_for(issuer, base, scope="mcp:tools")
    with http_client(base, headers={"Authorization": f"Bearer {token}"}) as client:
        refused = client.get("/admin/stats")
        assert refused.status_code == 403
        assert refused.json()["reason"] == "insufficient_scope"
        (challenge,) = parse_www_authenticate(refused.headers["www-authenticate"])
        assert challenge.params["error"] == "insufficient_scope"
        assert challenge.params["scope"] == "mcp:admin"
        assert challenge.params["resource_metadata"] == (
            f"{base}/.well-known/oauth-protected-resource/mcp")


def test_a_token_for_another_resource_is_refused(mcp_servers: tuple[str, str]) -> None:
    """RFC 8707: the authorization server put another resource in ``aud``."""
    issuer, base = mcp_servers
    token = _token_for(issuer, base, scope="mcp:tools", resource="http://127.0.0.1:1/other")
    with http_client(base, headers={"Authorization": f"Bearer {token}"}) as client:
        refused = client.get("/admin/stats")
    assert refused.status_code == 401
    assert refused.json()["reason"] in WRONG_AUDIENCE_REASONS
    (challenge,) = parse_www_authenticate(refused.headers["www-authenticate"])
    assert challenge.params["error"] == "invalid_token"


def _token_for(issuer: str, base: str, *, scope: str, resource: str | None = None) -> str:
    """A token from the development authorization server, by the code flow done by hand."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = "http://127.0.0.1:1/callback"
    with httpx.Client(base_url=issuer, timeout=10) as client:
        reg = client.post("/register", json={
            "redirect_uris": [redirect], "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_post", "scope": scope})
        assert reg.status_code == 201, reg.text
        info = reg.json()
        auth = client.get("/authorize", params={
            "response_type": "code", "client_id": info["client_id"], "redirect_uri": redirect,
            "code_challenge": challenge, "code_challenge_method": "S256", "state": "s",
            "scope": scope, "resource": resource or f"{base}/mcp"})
        assert auth.status_code in (302, 303, 307), auth.text
        code = parse_qs(urlsplit(auth.headers["location"]).query)["code"][0]
        tok = client.post("/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "code_verifier": verifier, "client_id": info["client_id"],
            "client_secret": info["client_secret"], "resource": resource or f"{base}/mcp"})
        assert tok.status_code == 200, tok.text
        access: str = tok.json()["access_token"]
        return access




async def test_development_server_introspection(mcp_servers: tuple[str, str]) -> None:
    """The example's authorization server answers RFC 7662 for its own tokens."""
    async def who(request: Request) -> JSONResponse:
        return JSONResponse({"subject": request.user.subject})

    issuer, base = mcp_servers
    token = _token_for(issuer, base, scope="mcp:tools")
    authenticator = IntrospectionAuthenticator(
        endpoint=f"{issuer}/introspect", client_id="mcp-resource-server",
        client_secret="demo-introspection-secret-0123456789", audience=f"{base}/mcp",
        issuer=issuer)
    app = Starlette(routes=[protect(HasScopes("mcp:tools"))(Route("/who", who))])
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[authenticator]))
    try:
        async with asgi_client(app) as client:
            ok = await client.get("/who", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200 and ok.json()["subject"] == "demo-user"
            bad = await client.get("/who", headers={"Authorization": "Bearer nope"})
            assert bad.status_code == 401
    finally:
        await authenticator.aclose()
