"""DPoP: a Starlette API that takes DPoP-bound tokens (RFC 9449) beside Bearer tokens."""

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BearerAuthenticator,
    DPoPAuthenticator,
    DPoPNonces,
    HasScopes,
    JWTKey,
    protect,
)
from authguard.stores import MemoryNonceStore

SECRET = "docs-example-secret-0123456789abcdef-0123"  # noqa: S105 - read yours from settings
NONCE_SECRET = "docs-example-nonce-secret-0123456789abcd"  # noqa: S105 - the same on replicas

# --8<-- [start:config]
bearer = BearerAuthenticator(key=JWTKey.hs256(SECRET), issuer="https://issuer.example",
                             audience="my-api")
dpop = DPoPAuthenticator(
    tokens=bearer,                      # the token is checked as a Bearer token would be
    algorithms=["ES256", "EdDSA"],      # proof algorithms, advertised in algs="…"
    replays=MemoryNonceStore(),         # used proof ids; the Redis store on replicas
    nonces=DPoPNonces(NONCE_SECRET),    # proofs must carry this server's nonce
    origin="https://api.example.com",   # the URL clients use (htu), behind a proxy
)
guard = AuthGuard(authenticators=[bearer, dpop])
# --8<-- [end:config]


# --8<-- [start:routes]
@protect(HasScopes("reports:read"))     # Bearer or DPoP
async def reports(request: Request) -> JSONResponse:
    return JSONResponse({"subject": request.user.subject, "scheme": request.user.scheme})


@protect(Authenticated("DPoP"))         # DPoP only: a Bearer token gets 401 and a DPoP challenge
async def payouts(request: Request) -> JSONResponse:
    return JSONResponse({"subject": request.user.subject})
# --8<-- [end:routes]


app = Starlette(
    routes=[Route("/reports", reports), Route("/payouts", payouts)],
    middleware=[Middleware(AuthGuardMiddleware, guard=guard)],
)
