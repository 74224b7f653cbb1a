"""A small app for the observability tests: Bearer (HS256) and Basic, a path-template
route; with ``OBS_APP_LOG_STDOUT=1``, the ``authguard`` logger writes to stdout as plain
text (``uvicorn obs_app:app --app-dir tests`` runs it)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    BearerAuthenticator,
    BruteForceGuard,
    JWTKey,
    NetworkPolicy,
    PBKDF2Hasher,
    StaticPasswords,
    protect,
)
from authguard.authenticators.keys import KeySource, StaticKeys
from authguard.observability import Observability

SECRET = "obs-test-secret-0123456789abcdef-0123456789"
ISSUER = "https://issuer.example.test"
AUDIENCE = "obs-api"
KID = "key-1"
PASSWORD = "correct-horse-battery-staple"


@protect(Authenticated())
async def item(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def make_app(observability: Observability | None = None, *,
             clock: Callable[[], float] | None = None, trusted_proxies: tuple[str, ...] = (),
             brute_force: BruteForceGuard | None = None,
             keys: KeySource | None = None) -> Starlette:
    """The app, with ``observability`` and (for tests) the guard's clock injected."""
    users = StaticPasswords.from_plaintext({"alice": (PASSWORD, [])},
                                           hasher=PBKDF2Hasher(iterations=1000))
    extra = {"clock": clock} if clock is not None else {}
    source = keys if keys is not None else StaticKeys([JWTKey.hs256(SECRET, kid=KID)])
    bearer = BearerAuthenticator(keys=source, issuer=ISSUER, audience=AUDIENCE)
    guard = AuthGuard(
        authenticators=[bearer, BasicAuthenticator(verifier=users)],
        network=NetworkPolicy(trusted_proxies=list(trusted_proxies)) if trusted_proxies
        else None,
        brute_force=brute_force, observability=observability, **extra)
    routes = [Route("/items/{item_id}", item), Route("/x/{rest:path}", item),
              Mount("/api", routes=[Route("/things/{thing_id:int}", item)])]
    return Starlette(routes=routes, middleware=[Middleware(AuthGuardMiddleware, guard=guard)])


app = make_app()

if os.environ.get("OBS_APP_LOG_STDOUT") == "1":  # served by a test: log refusals to stdout
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("LOG %(levelname)s %(message)s"))
    logger = logging.getLogger("authguard")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
