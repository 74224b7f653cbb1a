"""The authguard example app (see README.md beside this file for its contract).

Run it with ``uvicorn app:app --app-dir examples/fastapi_app``.
"""

from __future__ import annotations

import sys
from html import escape
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.cors import CORSMiddleware

sys.path.insert(0, str(Path(__file__).resolve().parent))

import demo_metrics
from settings import load
from stores import make_stores

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    BearerAuthenticator,
    BruteForceGuard,
    DPoPAuthenticator,
    DPoPNonces,
    HasRoles,
    HasScopes,
    Identity,
    JWTKey,
    NetworkPolicy,
    PBKDF2Hasher,
    Public,
    Reason,
    Refusal,
    SessionAuthenticator,
    StaticAPIKeys,
    StaticPasswords,
    StepUp,
    hash_api_key,
    protect,
)
from authguard.middleware import local_path
from authguard.problems import EXPOSE_HEADERS

settings = load()

# -- identities ---------------------------------------------------------------------------
# Demo passwords are hashed once at start-up; a real app keeps only the hashes.
_hasher = PBKDF2Hasher(iterations=100_000)
passwords = StaticPasswords.from_plaintext(
    {
        "alice": ("wonderland", ["user"]),
        "bob": ("builder", ["user", "admin"]),
        "carol": ("rainbow", ["user"]),
    },
    hasher=_hasher,
)
api_keys = StaticAPIKeys({
    hash_api_key("demo-key-alice-0123456789"): Identity(
        subject="alice", scheme="ApiKey", roles=frozenset({"user"})),
    hash_api_key("demo-key-bob-0123456789"): Identity(
        subject="bob", scheme="ApiKey", roles=frozenset({"user", "admin"})),
})

# Stores: in memory, or shared through Redis on replicas (AUTHGUARD_REDIS_URL).
stores = make_stores(settings)
revocations = stores.revocations
sessions = stores.sessions

basic = BasicAuthenticator(verifier=passwords, realm="authguard-demo")
bearer = BearerAuthenticator(
    key=JWTKey.hs256(settings.jwt_secret),
    issuer=settings.jwt_issuer,
    audience=settings.jwt_audience,
    revocations=revocations,
    realm="authguard-demo",
)
# DPoP (RFC 9449): the same tokens, bound to the client's key (cnf.jkt), with a proof per
# request. Proof ids are remembered in the single-use store (Redis on replicas), and
# AUTHGUARD_DEMO_DPOP_NONCE=1 makes proofs carry a server nonce (the same on every
# replica: an HMAC of the time under a shared secret).
dpop = DPoPAuthenticator(
    tokens=bearer,
    replays=stores.nonces,
    nonces=DPoPNonces(settings.dpop_nonce_secret) if settings.dpop_nonce else None,
    realm="authguard-demo",
)
apikey = APIKeyAuthenticator(store=api_keys, realm="authguard-demo")
session = SessionAuthenticator(
    secret_keys=[settings.session_secret],
    store=sessions,
    revocations=revocations,
    allowed_origins=[settings.cors_origin],
    login_url="/login",
    realm="authguard-demo",
    # The login form signs users in with their roles only: a session carries no scopes and
    # no acr, so OpenAPI does not offer the cookie on /reports or /step-up.
    claims=["roles"],
)
brute_force = BruteForceGuard(
    per_pair=settings.failure_limit, per_account=settings.failure_limit,
    per_client=settings.failure_limit * 20, window=300, store=stores.attempts,
)

# Metrics at GET /metrics and the systemic-cause detector (demo_metrics.py).
observability, metrics_registry = demo_metrics.make()
guard = AuthGuard(
    authenticators=[basic, bearer, apikey, session, dpop],
    brute_force=brute_force,
    # Behind reverse proxies (AUTHGUARD_DEMO_TRUSTED_PROXIES): the client is the right-most
    # X-Forwarded-For (or Forwarded) hop that is not one of them, its scheme theirs.
    network=(NetworkPolicy(trusted_proxies=settings.trusted_proxies, use_forwarded=True,
                           forwarded_header=settings.forwarded_header)
             if settings.trusted_proxies else None),
    require_https=settings.require_https,
    observability=observability,
)

app = FastAPI(title="authguard example app", version="0.1.0")
app.add_middleware(AuthGuardMiddleware, guard=guard)
demo_metrics.setup(app, metrics_registry)
# Added last, so it is outermost: refusals rendered by authguard get CORS headers too.
app.add_middleware(
    CORSMiddleware,
    allow_origins=[settings.cors_origin],
    allow_methods=["*"],
    allow_headers=["*"],
    allow_credentials=True,
    # CORSMiddleware replaces authguard's Access-Control-Expose-Headers with this list:
    # the same one, so that browser code reads Date (clock skew), Retry-After, receipts…
    expose_headers=EXPOSE_HEADERS.split(", "),
)


# --8<-- [start:validation]
@app.exception_handler(RequestValidationError)
async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 without the ``input`` it echoes (a password, say) or its ``ctx``."""
    errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)
# --8<-- [end:validation]


def _describe(identity: Identity) -> dict[str, Any]:
    return {
        "subject": identity.subject,
        "scheme": identity.scheme,
        "scopes": sorted(identity.scopes),
        "roles": sorted(identity.roles),
    }


@app.get("/public")
@protect(Public)
async def public() -> dict[str, str]:
    """Open to everyone; no authenticator runs."""
    return {"message": "hello, world"}


@app.get("/me")
@protect(Authenticated())
async def me(request: Request) -> dict[str, Any]:
    """Who you are, by any of the configured schemes."""
    return _describe(request.user)


@app.get("/dpop/me")
@protect(Authenticated("DPoP"))
async def dpop_me(request: Request) -> dict[str, Any]:
    """Who you are, by a DPoP-bound token with its proof only (a Bearer token: 401)."""
    return _describe(request.user)


@app.get("/admin")
@protect(HasRoles("admin"))
async def admin(request: Request) -> dict[str, Any]:
    """Administrators only."""
    return {"admin": True, **_describe(request.user)}


@app.get("/reports")
@protect(HasScopes("reports:read"))
async def reports(request: Request) -> dict[str, Any]:
    """Needs a Bearer token with the scope ``reports:read``."""
    return {"reports": ["q1", "q2"], **_describe(request.user)}


@app.get("/step-up")
@protect(StepUp("mfa", max_age=300))
async def step_up(request: Request) -> dict[str, Any]:
    """Needs ``acr=mfa`` and a sign-in within the last 300 seconds (RFC 9470)."""
    return {"step_up": True, **_describe(request.user)}


# -- sessions: the login form, login, logout ------------------------------------------------
_LOGIN_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in</h1>
<form id="login" data-next="{next}">
  <label>User name <input name="username" autocomplete="username" required></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"
    required></label>
  <button type="submit">Sign in</button>
</form>
<p id="error" role="alert"></p>
<script>
document.getElementById("login").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const form = event.target;
  const response = await fetch("/login", {{
    method: "POST",
    headers: {{"Content-Type": "application/json"}},
    body: JSON.stringify({{username: form.username.value, password: form.password.value}}),
  }});
  if (response.ok) {{
    window.location.assign(form.dataset.next);
  }} else {{
    const problem = await response.json();
    const sentences = {{
      credentials_invalid: "The user name or password is wrong. Please try again.",
      too_many_attempts: "Too many failed attempts. Please wait a few minutes and try again.",
    }};
    document.getElementById("error").textContent =
      sentences[problem.reason] || problem.detail || "Signing in failed. Please try again.";
  }}
}});
</script>
</body></html>
"""


@app.get("/login", response_class=HTMLResponse)
@protect(Public)
async def login_form(next: str = "/account") -> HTMLResponse:
    """The HTML login form; it posts JSON to ``POST /login`` and then goes to ``next``."""
    target = local_path(next) or "/account"
    return HTMLResponse(_LOGIN_FORM.format(next=escape(target, quote=True)))


async def check_password(request: Request, username: str, password: str, *,
                         scheme: str | None) -> Identity:
    """The user's identity, behind the brute-force guard (``POST /login``, ``/token``).

    These are the passwords of Basic: guesses here and there count together (scheme
    ``Basic``); ``scheme`` names the refusal's challenge."""
    attempt = await brute_force.allowed(request, scheme="Basic", account=username,
                                        now=guard.clock(), network=guard.network)
    if attempt.retry_after is not None:
        raise Refusal(Reason.TOO_MANY_ATTEMPTS,
                      headers={"Retry-After": str(attempt.retry_after)})
    identity = await passwords.verify(username, password)
    if identity is None:
        await brute_force.failed(attempt, guard.clock())
        raise Refusal(Reason.CREDENTIALS_INVALID, scheme=scheme)
    await brute_force.succeeded(attempt)
    return identity


# The refusals this public route raises itself are documented like the middleware's.
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_NOT_JSON = {400: {"description": "The body is not UTF-8, or nested too deeply (FastAPI "
                                  "answers before validation); JSON that does not parse or "
                                  "validate is a 422 that never echoes the input"}}


@app.post("/login", responses={
    **_NOT_JSON,
    401: {"description": "credentials_invalid: wrong user name or password",
          "content": _PROBLEM},
    429: {"description": "too_many_attempts: wait Retry-After seconds", "content": _PROBLEM},
})
@protect(Public)
async def login(
    request: Request,
    username: str = Body(max_length=256),
    password: str = Body(max_length=1024),
) -> JSONResponse:
    """Check the password and start a session (a new session id every time)."""
    identity = await check_password(request, username, password, scheme="Cookie")
    response = JSONResponse({"subject": identity.subject})
    await session.login(request, response, identity.subject, roles=sorted(identity.roles))
    return response


@app.post("/logout")
@protect(Authenticated("Cookie"))
async def logout(request: Request) -> JSONResponse:
    """End the session on the server (a copied cookie stops working) and clear the cookie."""
    response = JSONResponse({"signed_out": True})
    await session.logout(request, response)
    return response


class RevokeToken(BaseModel):
    """Revoke one token by its ``jti``."""

    model_config = ConfigDict(extra="forbid")
    jti: str = Field(min_length=1, max_length=256)


class RevokeSubject(BaseModel):
    """Revoke every credential of ``subject`` issued until now."""

    model_config = ConfigDict(extra="forbid")
    subject: str = Field(min_length=1, max_length=256)


@app.post("/admin/revoke", responses=_NOT_JSON)
@protect(HasRoles("admin"))
async def revoke(body: RevokeToken | RevokeSubject) -> dict[str, Any]:
    """Revoke one token (``jti``) or every earlier credential of a subject (exactly one;
    the OpenAPI schema says so, and anything else is FastAPI's 422)."""
    now = guard.clock()
    if isinstance(body, RevokeToken):
        await revocations.revoke_token(body.jti, expires_at=now + 86_400)
        return {"revoked": {"jti": body.jti}}
    subject = body.subject
    # Tokens issued before now, and every session of the subject, stop working.
    await revocations.revoke_subject(subject, not_before=now, ttl=86_400)
    await session.end_sessions(subject)
    return {"revoked": {"subject": subject}}


# -- framework integration: OpenAPI security schemes and refusals, WS /ws ------------------
import demo_integration  # noqa: E402

demo_integration.setup(app, guard)

# -- POST /token: the OAuth2 password flow (Swagger UI's Authorize runs it) ---------------
import demo_token  # noqa: E402

demo_token.setup(app, settings, check_password, guard.clock)

# -- GET /: the routes and what to try --------------------------------------------------
import demo_index  # noqa: E402

demo_index.setup(app)

# -- 402: /premium (plans), /paid/quote (pay per request), /billing/pay -----------------
import demo_payments  # noqa: E402

demo_payments.setup(app, guard, nonces=stores.nonces)
