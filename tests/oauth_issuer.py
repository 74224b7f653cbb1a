"""A loopback OAuth issuer for tests: RFC 8414 / OpenID metadata and a JWKS, served by
uvicorn in a thread, that a test can change, stop and start again on the same port."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Self

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from helpers import free_port

#: Reasons a token for another audience or from another issuer may be refused with.
WRONG_AUDIENCE_REASONS = {"token_wrong_audience"}


@dataclass
class SigningKey:
    """A private key, its ``kid`` and algorithm."""

    private: Any
    kid: str
    alg: str

    @classmethod
    def rsa(cls, kid: str | None = None) -> SigningKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048),
                   kid or secrets.token_hex(4), "RS256")

    @classmethod
    def ec(cls, kid: str | None = None) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()), kid or secrets.token_hex(4),
                   "ES256")

    def jwk(self) -> dict[str, Any]:
        impl = jwt.get_algorithm_by_name(self.alg)
        data: dict[str, Any] = json.loads(impl.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}


class ThreadServer:
    """An ASGI app under uvicorn in a thread on a fixed loopback port; restartable."""

    port: int

    def app(self) -> Starlette:
        raise NotImplementedError

    def start(self) -> None:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="off")
        self._server: uvicorn.Server | None = uvicorn.Server(config)
        self._thread: threading.Thread | None = threading.Thread(
            target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the loopback server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        server, thread = getattr(self, "_server", None), getattr(self, "_thread", None)
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LoopbackIssuer(ThreadServer):
    """An authorization server's metadata and keys on 127.0.0.1.

    Attributes:
        path: The issuer's path (``""`` for a root issuer).
        keys: Keys signing tokens; ``published`` of them are in the JWKS.
        overrides: Members replacing those of the metadata document.
        openid_only: Serve only ``/.well-known/openid-configuration``.
        hits: Requests per path.
    """

    def __init__(self, *, path: str = "", openid_only: bool = False) -> None:
        self.port = free_port()
        self.path = path
        self.openid_only = openid_only
        self.keys = [SigningKey.rsa()]
        self.published: list[SigningKey] = list(self.keys)
        self.overrides: dict[str, Any] = {}
        self.hits: Counter[str] = Counter()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"http://127.0.0.1:{self.port}/keys",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            **self.overrides,
        }

    async def _serve(self, request: Request) -> Response:
        path = request.url.path
        self.hits[path] = self.hits[path] + 1
        oauth = "/.well-known/oauth-authorization-server" + self.path
        openid = self.path + "/.well-known/openid-configuration"
        if (path == oauth and not self.openid_only) or path == openid:
            return JSONResponse(self.metadata())
        if path == "/keys":
            return JSONResponse({"keys": [k.jwk() for k in self.published]})
        return Response("not found", status_code=404)

    def sign(self, claims: dict[str, Any], key: SigningKey | None = None,
             **header: Any) -> str:
        """A JWT with these claims, signed by ``key`` (the first key by default)."""
        key = key or self.keys[0]
        return jwt.encode(claims, key.private, algorithm=key.alg,
                          headers={"kid": key.kid, **header})

    def claims(self, audience: str, **more: Any) -> dict[str, Any]:
        """Usual claims of a token of this issuer for ``audience``."""
        now = int(time.time())
        return {"iss": self.issuer, "sub": "alice", "aud": audience, "iat": now,
                "exp": now + 600, "scope": "read", **more}

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._serve)])


class LoopbackIntrospection(ThreadServer):
    """An RFC 7662 introspection endpoint on 127.0.0.1.

    Attributes:
        answers: The answer per token (``{"active": false}`` for others).
        mode: ``json`` (the answers), ``garbage`` (200, not JSON), ``error`` (HTTP 500).
        requests: Each request's form and ``Authorization`` header.
    """

    client_id = "resource-server"
    client_secret = "introspection-test-secret-0123456789"

    def __init__(self) -> None:
        self.port = free_port()
        self.answers: dict[str, dict[str, Any]] = {}
        self.mode = "json"
        self.requests: list[tuple[dict[str, str], str | None]] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/introspect"

    async def _introspect(self, request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        header = request.headers.get("authorization")
        self.requests.append((form, header))
        basic = "Basic " + base64.b64encode(
            f"{self.client_id}:{self.client_secret}".encode()).decode()
        posted = (form.get("client_id"), form.get("client_secret")) == (
            self.client_id, self.client_secret)
        if header != basic and not posted:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if self.mode == "garbage":
            return Response("<html>maintenance</html>", media_type="text/html")
        if self.mode == "error":
            return Response("boom", status_code=500)
        return JSONResponse(self.answers.get(form.get("token", ""), {"active": False}))

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/introspect", self._introspect, methods=["POST"])])


class Clock:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
