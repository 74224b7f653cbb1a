"""The applications measured: bare Starlette/FastAPI, authguard, and the peers.

Every case is one job done three ways, each the way its users would write it:

* authguard: ``AuthGuardMiddleware`` with one authenticator and a per-route policy;
* Starlette: ``AuthenticationMiddleware`` with an equivalent ``AuthenticationBackend``
  (pyjwt, itsdangerous, a dict of key hashes) and ``@requires`` on the endpoint;
* FastAPI: ``HTTPBearer`` / ``APIKeyHeader`` / ``HTTPBasic`` / ``APIKeyCookie``
  dependencies doing the same checks.

Keys, tokens and passwords are made once per process (``Material``). The ``load_*``
factories are what the uvicorn runs import (``uvicorn benchmarks.apps:load_bare --factory``).
"""

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import (
    APIKeyCookie,
    APIKeyHeader,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    SimpleUser,
    requires,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import authguard
from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    HasRoles,
    Identity,
    Public,
    StaticAPIKeys,
    StaticPasswords,
    hash_api_key,
    protect,
)
from authguard.passwords import Argon2Hasher, PasswordHasher
from authguard.payments import (
    Entitlement,
    EntitlementVerifier,
    MemoryEntitlementStore,
    Payment,
    Price,
    ReceiptVerifier,
)
from authguard.stores.memory import MemoryNonceStore

ASGIApp = Callable[..., Any]

ISSUER = "https://issuer.bench"
AUDIENCE = "bench-api"
HS_SECRET = "benchmark-hs256-secret-of-at-least-32-bytes!"
SESSION_KEY = "benchmark-session-key-of-at-least-32-bytes!!"
API_KEY = "bench-key-0123456789abcdef0123456789abcdef"
BASIC_USER, BASIC_PASSWORD = "alice", "correct horse battery staple"
ALGORITHMS = ("HS256", "RS256", "ES256", "EdDSA")

HAS_BEARER = hasattr(authguard, "BearerAuthenticator")
HAS_SESSION = hasattr(authguard, "SessionAuthenticator")
HAS_DPOP = hasattr(authguard, "DPoPAuthenticator")


# -- keys, tokens, passwords -----------------------------------------------------------

@dataclass
class Material:
    """Signing keys, their public halves, and tokens for each algorithm."""

    argon2: PasswordHasher
    private: dict[str, Any] = field(default_factory=dict)
    public: dict[str, Any] = field(default_factory=dict)  # what a peer passes to jwt.decode
    public_pem: dict[str, bytes] = field(default_factory=dict)
    valid: dict[str, str] = field(default_factory=dict)
    expired: dict[str, str] = field(default_factory=dict)
    bad_signature: dict[str, str] = field(default_factory=dict)
    argon2_hash: str = ""

    @classmethod
    def make(cls, argon2: PasswordHasher | None = None) -> "Material":
        m = cls(argon2=argon2 or Argon2Hasher())
        m.private["HS256"] = m.public["HS256"] = HS_SECRET
        m.private["RS256"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        m.private["ES256"] = ec.generate_private_key(ec.SECP256R1())
        m.private["EdDSA"] = ed25519.Ed25519PrivateKey.generate()
        for alg in ("RS256", "ES256", "EdDSA"):
            m.public[alg] = m.private[alg].public_key()
            m.public_pem[alg] = m.public[alg].public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        for alg in ALGORITHMS:
            m.valid[alg] = m.token(alg)
            m.expired[alg] = m.token(alg, lifetime=-60)
            head, body, sig = m.valid[alg].split(".")
            flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
            m.bad_signature[alg] = f"{head}.{body}.{flipped}"
        m.argon2_hash = m.argon2.hash(BASIC_PASSWORD)
        return m

    def token(self, alg: str, *, lifetime: int = 3600, sub: str = "alice",
              **claims: Any) -> str:
        now = int(time.time())
        payload = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now - 5,
                   "exp": now + lifetime, "scope": "reports:read", "roles": ["user"],
                   **claims}
        return jwt.encode(payload, self.private[alg], algorithm=alg)

    def session_cookie(self) -> str:
        """The Starlette/FastAPI peers' signed cookie for user alice."""
        return _peer_serializer().dumps({"user": "alice"})


def _peer_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(SESSION_KEY, salt="peer.session")


def basic_header(user: str = BASIC_USER, password: str = BASIC_PASSWORD) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


# -- endpoints shared by everyone ------------------------------------------------------

async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def paid(request: Request) -> Response:
    return PlainTextResponse("paid content")


def _starlette(routes: list[Route], middleware: list[Middleware] | None = None) -> Starlette:
    return Starlette(routes=routes, middleware=middleware or [])


def bare_starlette() -> Starlette:
    """The reference: no middleware, the same routes in the same order as the authguard
    and Starlette apps (the router tries them in turn: a later route costs more)."""
    return _starlette([Route("/public", ok), Route("/private", ok), Route("/admin", ok),
                       Route("/paid", ok), Route("/", ok)])


# -- authguard -----------------------------------------------------------------------

# A real payment requirement: a "pro" plan from the entitlement store, or a receipt for
# one request (the IETF Payment scheme). The benchmark's API-key identity ("svc") has no
# plan and sends no receipt: it is answered 402 with both offers and a fresh challenge.
PLANS = MemoryEntitlementStore({"someone-else": Entitlement(plan="pro")})
PAYMENT = Payment(Price(Decimal("0.01"), "USD", "One request"), verifiers=[
    EntitlementVerifier(PLANS, plans=["pro"], checkout="/pricing"),
    ReceiptVerifier(secret=b"bench-receipts-secret-0123456789", nonces=MemoryNonceStore(),
                    realm="bench", recipient="shop", ttl=60)])


@protect(Public)
async def ag_public(request: Request) -> Response:
    return PlainTextResponse("ok")


@protect(Authenticated())
async def ag_private(request: Request) -> Response:
    return PlainTextResponse("ok")


@protect(HasRoles("admin"))
async def ag_admin(request: Request) -> Response:
    return PlainTextResponse("ok")


@protect(Authenticated() & PAYMENT)
async def ag_paid(request: Request) -> Response:
    return PlainTextResponse("paid content")


def authguard_app(authenticator: Any) -> Starlette:
    """One authenticator, the four kinds of route."""
    guard = AuthGuard(authenticators=[authenticator])
    return _starlette(
        [Route("/public", ag_public), Route("/private", ag_private),
         Route("/admin", ag_admin), Route("/paid", ag_paid)],
        [Middleware(AuthGuardMiddleware, guard=guard)],
    )


def api_key_authenticator() -> APIKeyAuthenticator:
    ident = Identity(subject="svc", scheme="ApiKey", roles=frozenset({"user"}))
    return APIKeyAuthenticator(store=StaticAPIKeys({hash_api_key(API_KEY): ident}))


class PlainVerifier:
    """A verifier without a slow hash: constant-time comparison with a stored secret."""

    def __init__(self, passwords: dict[str, str]) -> None:
        self._passwords = {u: p.encode() for u, p in passwords.items()}

    async def verify(self, username: str, password: str) -> Identity | None:
        want = self._passwords.get(username, b"\x00" * 16)
        good = hmac.compare_digest(want, password.encode())
        if good and username in self._passwords:
            return Identity(subject=username, scheme="Basic", roles=frozenset({"user"}))
        return None


def basic_plain_authenticator() -> BasicAuthenticator:
    return BasicAuthenticator(verifier=PlainVerifier({BASIC_USER: BASIC_PASSWORD}))


def basic_argon2_authenticator(m: Material, *, cache: bool) -> BasicAuthenticator:
    users = StaticPasswords({BASIC_USER: m.argon2_hash}, hasher=m.argon2)
    return BasicAuthenticator(verifier=users, cache_ttl=30 if cache else 0)


def bearer_authenticator(m: Material, alg: str, *, cache: bool) -> Any:
    from authguard import JWTKey

    key = (JWTKey.hs256(HS_SECRET) if alg == "HS256"
           else JWTKey.from_pem(m.public_pem[alg], alg))
    return authguard.BearerAuthenticator(  # type: ignore[attr-defined]
        key=key, issuer=ISSUER, audience=AUDIENCE, cache_size=10_000 if cache else 0)


class _EveryProofIsNew:
    """A replay store that accepts every ``jti``: the benchmark sends one proof again and
    again, so the cost measured is the proof's checks, not the store (one dict write in
    memory, one round trip to Redis)."""

    async def consume(self, nonce: str, ttl: float) -> bool:
        return True


def dpop_case(m: Material, *, cache: bool) -> tuple[Any, str, str]:
    """A DPoP authenticator over an HS256 Bearer verifier (so the row's extra cost over
    ``JWT HS256`` is the DPoP proof: an ES256 signature per request), a bound token and a
    proof for ``GET http://bench.local/private``, with the clock at the proof's ``iat``."""
    from authguard.client import DPoPKey

    key = DPoPKey(m.private["ES256"])
    token = m.token("HS256", cnf={"jkt": key.jkt})
    now = time.time()
    proof = key.proof("GET", "http://bench.local/private", access_token=token, now=now)
    dpop = authguard.DPoPAuthenticator(  # type: ignore[attr-defined]
        tokens=bearer_authenticator(m, "HS256", cache=cache), replays=_EveryProofIsNew(),
        clock=lambda: now)
    return dpop, token, proof


def session_authenticator() -> Any:
    return authguard.SessionAuthenticator(secret_keys=[SESSION_KEY])  # type: ignore[attr-defined]


async def session_login(authenticator: Any) -> str:
    """Log alice in through the authenticator's own API; the cookie's value."""
    conn = HTTPConnection({"type": "http", "method": "POST", "path": "/login", "headers": [],
                           "query_string": b"", "scheme": "http",
                           "server": ("bench", 80)})
    response = Response()
    await authenticator.login(conn, response, "alice", roles=["user"])
    for name, value in response.raw_headers:
        if name == b"set-cookie":
            cookie = value.decode("latin-1").split(";", 1)[0]
            return cookie.split("=", 1)[1]
    raise RuntimeError("login set no cookie")


# -- the floor: a hand-written pure ASGI middleware -------------------------------------

class HandWrittenAPIKey:
    """The least any API-key check can cost: one pure ASGI middleware, a header scan and a
    dict lookup by hash, a bare 401 otherwise. No policies, no problem body, no challenge."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.keys = {hash_api_key(API_KEY): "svc"}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] != "/public":
            for name, value in scope["headers"]:
                if name == b"x-api-key":
                    user = self.keys.get(hashlib.sha256(value).hexdigest())
                    if user is not None:
                        scope["user"] = user
                        await self.app(scope, receive, send)
                        return
                    break
            await PlainTextResponse("Unauthorized", 401)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def hand_written_app() -> Starlette:
    return _starlette([Route("/public", ok), Route("/private", ok), Route("/admin", ok),
                       Route("/paid", ok)], [Middleware(HandWrittenAPIKey)])


# -- Starlette's AuthenticationMiddleware with equivalent backends ---------------------

class APIKeyBackend(AuthenticationBackend):
    def __init__(self) -> None:
        self.keys = {hash_api_key(API_KEY): "svc"}

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        key = conn.headers.get("x-api-key")
        if key is None:
            return None
        user = self.keys.get(hashlib.sha256(key.encode()).hexdigest())
        if user is None:
            raise AuthenticationError("invalid API key")
        return AuthCredentials(["authenticated", "user"]), SimpleUser(user)


class BasicBackend(AuthenticationBackend):
    def __init__(self, check: Callable[[str, str], bool]) -> None:
        self.check = check

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        auth = conn.headers.get("authorization")
        if auth is None:
            return None
        scheme, _, credentials = auth.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(credentials).decode().partition(":")
        except ValueError:
            raise AuthenticationError("invalid basic auth credentials") from None
        if not self.check(user, password):
            raise AuthenticationError("invalid credentials")
        return AuthCredentials(["authenticated", "user"]), SimpleUser(user)


class JWTBackend(AuthenticationBackend):
    def __init__(self, key: Any, alg: str) -> None:
        self.key = key
        self.alg = alg

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        auth = conn.headers.get("authorization")
        if auth is None:
            return None
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            claims = jwt.decode(token, self.key, algorithms=[self.alg], audience=AUDIENCE,
                                issuer=ISSUER)
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(str(exc)) from None
        return AuthCredentials(["authenticated", *claims.get("roles", [])]), \
            SimpleUser(claims["sub"])


class SessionBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        user = conn.session.get("user")
        if user is None:
            return None
        return AuthCredentials(["authenticated", "user"]), SimpleUser(user)


@requires("authenticated")
async def st_private(request: Request) -> Response:
    return PlainTextResponse("ok")


@requires("admin")
async def st_admin(request: Request) -> Response:
    return PlainTextResponse("ok")


@requires("authenticated")
async def st_paid(request: Request) -> Response:
    return JSONResponse({"title": "Payment Required", "status": 402}, status_code=402)


def starlette_app(backend: AuthenticationBackend, *, sessions: bool = False) -> Starlette:
    middleware = [Middleware(AuthenticationMiddleware, backend=backend)]
    if sessions:
        middleware.insert(0, Middleware(SessionMiddleware, secret_key=SESSION_KEY))
    return _starlette(
        [Route("/public", ok), Route("/private", st_private), Route("/admin", st_admin),
         Route("/paid", st_paid)],
        middleware,
    )


def argon2_check(m: Material) -> Callable[[str, str], bool]:
    """What a Starlette backend typically does: verify right there, in the event loop."""
    def check(user: str, password: str) -> bool:
        return user == BASIC_USER and m.argon2.verify(m.argon2_hash, password)
    return check


def plain_check(user: str, password: str) -> bool:
    return user == BASIC_USER and hmac.compare_digest(password.encode(),
                                                      BASIC_PASSWORD.encode())


# -- FastAPI dependencies ----------------------------------------------------------------

def bare_fastapi() -> Any:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/")
    @app.get("/public")
    @app.get("/private")
    async def root() -> Response:
        return PlainTextResponse("ok")

    return app


def fastapi_app(kind: str, m: Material, alg: str = "HS256") -> Any:
    """``kind``: apikey, basic_plain, basic_argon2, jwt, session."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    unauthorized = {"WWW-Authenticate": "Bearer"}

    if kind == "apikey":
        keys = {hash_api_key(API_KEY): "svc"}
        header = APIKeyHeader(name="X-API-Key")

        async def current(key: Annotated[str, Depends(header)]) -> dict[str, Any]:
            user = keys.get(hashlib.sha256(key.encode()).hexdigest())
            if user is None:
                raise HTTPException(401, "invalid API key")
            return {"sub": user, "roles": ["user"]}
    elif kind in ("basic_plain", "basic_argon2"):
        basic = HTTPBasic()
        check = plain_check if kind == "basic_plain" else argon2_check(m)

        # a plain ``def``: FastAPI runs it in its thread pool
        def current_basic(creds: Annotated[HTTPBasicCredentials, Depends(basic)],
                          ) -> dict[str, Any]:
            if not check(creds.username, creds.password):
                raise HTTPException(401, "invalid credentials",
                                    {"WWW-Authenticate": "Basic"})
            return {"sub": creds.username, "roles": ["user"]}

        current = current_basic  # type: ignore[assignment]
    elif kind == "jwt":
        bearer = HTTPBearer()
        key = m.public[alg]

        async def current(  # type: ignore[misc]
            creds: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
        ) -> dict[str, Any]:
            try:
                claims: dict[str, Any] = jwt.decode(
                    creds.credentials, key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER)
            except jwt.InvalidTokenError:
                raise HTTPException(401, "invalid token", unauthorized) from None
            return claims
    elif kind == "session":
        cookie = APIKeyCookie(name="session")
        serializer = _peer_serializer()

        async def current(  # type: ignore[misc]
            value: Annotated[str, Depends(cookie)],
        ) -> dict[str, Any]:
            try:
                data = serializer.loads(value, max_age=8 * 3600)
            except BadData:
                raise HTTPException(401, "invalid session") from None
            return {"sub": data["user"], "roles": ["user"]}
    else:  # pragma: no cover
        raise ValueError(kind)

    @app.get("/public")
    async def public() -> Response:
        return PlainTextResponse("ok")

    user_dep = Annotated[dict[str, Any], Depends(current)]

    @app.get("/private")
    async def private(user: user_dep) -> Response:
        return PlainTextResponse("ok")

    @app.get("/admin")
    async def admin(user: user_dep) -> Response:
        if "admin" not in user.get("roles", []):
            raise HTTPException(403, "forbidden")
        return PlainTextResponse("ok")

    @app.get("/paid")
    async def paid_route(user: user_dep) -> Response:
        return JSONResponse({"title": "Payment Required", "status": 402}, status_code=402)

    return app


# -- uvicorn factories (separate processes: material comes from the environment) --------

def load_bare() -> Starlette:
    return bare_starlette()


def load_authguard_jwt() -> Starlette:
    from authguard import JWTKey

    bearer = authguard.BearerAuthenticator(  # type: ignore[attr-defined]
        key=JWTKey.hs256(HS_SECRET), issuer=ISSUER, audience=AUDIENCE)
    return authguard_app(bearer)


def load_floor_jwt() -> Starlette:
    """The floor under uvicorn: a hand-written pure ASGI middleware with a token cache."""
    from .targets import HandWrittenJWT, _floor

    app: Starlette = _floor(HandWrittenJWT, cache=True)
    return app


def load_starlette_jwt() -> Starlette:
    return starlette_app(JWTBackend(HS_SECRET, "HS256"))


def _argon2_material() -> Material:
    m = Material(argon2=Argon2Hasher())
    m.argon2_hash = m.argon2.hash(BASIC_PASSWORD)
    return m


def load_authguard_argon2() -> Starlette:
    """``/private``: Basic with argon2, no cache (every request hashes); ``/public``."""
    return authguard_app(basic_argon2_authenticator(_argon2_material(), cache=False))


def load_starlette_argon2() -> Starlette:
    """The peer: argon2 verified inside the backend, on the event loop."""
    return starlette_app(BasicBackend(argon2_check(_argon2_material())))


def quick_argon2() -> PasswordHasher:
    """Cheap argon2 parameters for smoke runs (never for the published numbers)."""
    return Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)

