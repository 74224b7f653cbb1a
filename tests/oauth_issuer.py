"""A loopback OAuth issuer for tests: RFC 8414 / OpenID metadata and a JWKS, served by
uvicorn in a thread, that a test can change, stop and start again on the same port."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from helpers import free_port

#: Reasons a token for another audience or from another issuer may be refused with.
WRONG_AUDIENCE_REASONS = {"token_wrong_audience", "credentials_invalid"}


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


class LoopbackIssuer:
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
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

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

    def start(self) -> None:
        app = Starlette(routes=[Route("/{path:path}", self._serve)])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the loopback issuer did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> LoopbackIssuer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Clock:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
