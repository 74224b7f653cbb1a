"""An API protected as an OAuth 2.1 resource server (the docs' "Protecting an MCP server")."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import AuthGuard, AuthGuardMiddleware, BearerAuthenticator, HasScopes, protect
from authguard.oauth import IssuerKeys, ProtectedResource, install_metadata

# --8<-- [start:config]
ISSUER = os.environ.get("API_ISSUER", "https://auth.example.com")  # exactly as in `iss`
RESOURCE = os.environ.get("API_RESOURCE", "https://api.example.com/mcp")  # canonical URI

resource = ProtectedResource(
    resource=RESOURCE,                      # tokens' `aud` must include it (RFC 8707)
    authorization_servers=[ISSUER],         # where clients get tokens
    scopes_supported=["notes:read", "notes:write"],
    challenge_scopes=["notes:read"],        # what a 401 tells the client to ask for
)
bearer = BearerAuthenticator(
    keys=IssuerKeys(ISSUER),                # RFC 8414 metadata → jwks_uri, rotation
    issuer=ISSUER,
    audience=RESOURCE,
    resource=resource,                      # every challenge: resource_metadata="…"
)
# --8<-- [end:config]


async def read_notes(request: Request) -> JSONResponse:
    return JSONResponse({"notes": [], "subject": request.user.subject})


async def write_note(request: Request) -> JSONResponse:
    return JSONResponse({"saved": True}, status_code=201)


# --8<-- [start:app]
app = Starlette(routes=[
    protect(HasScopes("notes:read"))(Route("/mcp/notes", read_notes)),
    protect(HasScopes("notes:write"))(Route("/mcp/notes", write_note, methods=["POST"])),
])
install_metadata(app, resource)  # /.well-known/oauth-protected-resource/mcp, public
app.add_middleware(AuthGuardMiddleware,
                   guard=AuthGuard(authenticators=[bearer], deny_by_default=True))
# --8<-- [end:app]
