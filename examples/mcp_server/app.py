"""An MCP server protected by authguard as an OAuth 2.1 resource server.

    uvicorn app:app --app-dir examples/mcp_server --port 8001

* ``POST/GET /mcp`` — the MCP server (streamable HTTP; tools ``add`` and ``whoami``),
  needing a token with scope ``mcp:tools``;
* ``GET /admin/stats`` — plain JSON, needing scope ``mcp:admin``;
* ``GET /.well-known/oauth-protected-resource/mcp`` (and the root form) — the RFC 9728
  document, public.

Tokens are RS256 JWTs of ``AUTHGUARD_MCP_ISSUER``, whose keys are found from its RFC 8414
metadata; their ``aud`` must include ``AUTHGUARD_MCP_RESOURCE``.
"""

from __future__ import annotations

import os

from mcp.server.mcpserver import Context, MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authguard import AuthGuard, AuthGuardMiddleware, BearerAuthenticator, HasScopes, protect
from authguard.oauth import IssuerKeys, ProtectedResource, install_metadata

ISSUER = os.environ.get("AUTHGUARD_MCP_ISSUER", "http://127.0.0.1:9000")
RESOURCE = os.environ.get("AUTHGUARD_MCP_RESOURCE", "http://127.0.0.1:8001/mcp")

resource = ProtectedResource(
    resource=RESOURCE,
    authorization_servers=[ISSUER],
    scopes_supported=["mcp:tools", "mcp:admin"],
    challenge_scopes=["mcp:tools"],
    resource_name="authguard MCP example",
)

server = MCPServer("authguard-mcp-example")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@server.tool()
def whoami(ctx: Context) -> str:
    """The subject of the access token that made this call."""
    request = ctx.request_context.request
    user = request.scope.get("user") if isinstance(request, Request) else None
    return str(getattr(user, "subject", "anonymous"))


async def admin_stats(request: Request) -> Response:
    """Numbers only an administrator sees."""
    return JSONResponse({"tools": 2, "subject": request.user.subject})


app = server.streamable_http_app(stateless_http=True, json_response=True)
for route in app.router.routes:
    if getattr(route, "path", None) == "/mcp":
        protect(HasScopes("mcp:tools"))(route)
app.router.routes.append(
    protect(HasScopes("mcp:admin"))(Route("/admin/stats", admin_stats, methods=["GET"])))
install_metadata(app, resource)

bearer = BearerAuthenticator(
    keys=IssuerKeys(ISSUER, algorithms=["RS256", "ES256"]),
    issuer=ISSUER,
    audience=RESOURCE,
    resource=resource,
)
guard = AuthGuard(authenticators=[bearer], deny_by_default=True)
app.add_middleware(AuthGuardMiddleware, guard=guard)
