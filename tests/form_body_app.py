"""A Bearer route that takes form-body tokens, for tests under uvicorn
(test_bearer_form_body.py): it answers the subject and the size of the body it read."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BearerAuthenticator,
    JWTKey,
    protect,
)

SECRET = "form-body-test-secret-0123456789abcdef-0123"
AUD = "form-api"


@protect(Authenticated())
async def submit(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"sub": request.user.subject, "size": len(body)})


bearer = BearerAuthenticator(key=JWTKey.hs256(SECRET), audience=AUD, allow_form_body=True,
                             max_form_bytes=4096)
app = Starlette(routes=[Route("/submit", submit, methods=["POST"])])
app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[bearer]))
