"""OAuth 2.0 Protected Resource Metadata (RFC 9728).

:class:`ProtectedResource` describes "this API as an OAuth protected resource": its
canonical resource identifier (RFC 9728 §1.2, the RFC 8707 audience of its tokens), the
authorization servers that issue those tokens, the scopes it understands. From it come:

* the metadata document (§2) and its well-known URLs (§3.1: ``/.well-known/
  oauth-protected-resource`` inserted between the host and the resource's path, plus the
  root form);
* the ``resource_metadata`` parameter of every Bearer challenge (§5.1), an absolute URL
  built from the configuration alone — never from a request's ``Host``;
* the Starlette routes that serve the document: public, cacheable, readable from any
  origin (:meth:`ProtectedResource.routes`, :func:`install_metadata`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any, Literal
from urllib.parse import urlsplit

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..challenges import checked_setting
from ..errors import ConfigurationError
from ..policy import Public, protect

__all__ = ["MetadataSigner", "ProtectedResource", "install_metadata"]

WELL_KNOWN = "/.well-known/oauth-protected-resource"
_BEARER_METHODS = frozenset({"header", "body", "query"})
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_LOOPBACK_NAMES = frozenset({"localhost"})
BearerMethod = Literal["header", "body", "query"]


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def checked_url(value: str, setting: str, *, path_allowed: bool = True,
                query_allowed: bool = False) -> str:
    """``value`` if it is an absolute ``https`` URL (``http`` only for a loopback host)
    without fragment or user info; else a :class:`ConfigurationError` naming ``setting``."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{setting}: an absolute URL is needed")
    checked_setting(value, setting)
    parts = urlsplit(value)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigurationError(f"{setting}: {value!r} is not an absolute http(s) URL")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigurationError(
            f"{setting}: {value!r} must use https (http is accepted only for loopback hosts)")
    if "#" in value:
        raise ConfigurationError(f"{setting}: {value!r} must not have a fragment")
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(f"{setting}: {value!r} must not carry user information")
    if parts.query and not query_allowed:
        raise ConfigurationError(f"{setting}: {value!r} must not have a query component")
    if not path_allowed and parts.path not in ("", "/"):
        raise ConfigurationError(f"{setting}: {value!r} must not have a path")
    return value


@dataclass(frozen=True, kw_only=True)
class MetadataSigner:
    """Signs the metadata document into ``signed_metadata`` (RFC 9728 §2.2).

    Attributes:
        key: The private key (PEM) or, for HMAC algorithms, the shared secret.
        algorithm: The JWS algorithm (``RS256``, ``ES256``, ``EdDSA``…; never ``none``).
        issuer: The ``iss`` claim: the party attesting to the metadata.
        kid: The ``kid`` header, if the verifier looks keys up by id.
    """

    key: str | bytes = field(repr=False)
    algorithm: str
    issuer: str
    kid: str | None = None

    def __post_init__(self) -> None:
        if self.algorithm.lower() == "none":
            raise ConfigurationError("signer.algorithm: 'none' is never accepted")
        if not self.issuer:
            raise ConfigurationError("signer.issuer: signed metadata must name its issuer "
                                     "(RFC 9728 §2.2)")

    def sign(self, claims: Mapping[str, Any]) -> str:
        """The JWT whose claims are ``claims`` plus ``iss``."""
        headers = {"kid": self.kid} if self.kid else None
        try:
            return jwt.encode({**claims, "iss": self.issuer}, self.key,
                              algorithm=self.algorithm, headers=headers)
        except (ValueError, TypeError, NotImplementedError, jwt.PyJWTError) as exc:
            raise ConfigurationError(
                f"signer.key: cannot sign with {self.algorithm}: {type(exc).__name__}") from None


@dataclass(frozen=True, kw_only=True, eq=False)
class ProtectedResource:
    """This API as an OAuth 2.0 protected resource (RFC 9728). Validated at construction.

    Attributes:
        resource: The canonical resource identifier (RFC 9728 §1.2): an absolute ``https``
            URL (``http`` only on loopback) without query or fragment, e.g.
            ``https://api.example.com/mcp``. Tokens must name it in ``aud`` (RFC 8707), and
            the document's ``resource`` is exactly this string.
        authorization_servers: Issuer identifiers (RFC 8414) of the authorization servers
            that issue tokens for this resource, exactly as they write ``iss``.
        scopes_supported: Scopes this resource understands (RFC 6749 §3.3 scope-tokens).
        challenge_scopes: Scopes named in a 401 challenge (``scope="…"``): what a client
            should ask for to use the resource at all. They must be in ``scopes_supported``
            when that is given. A 403 ``insufficient_scope`` names the route's own scopes.
        bearer_methods_supported: How tokens may be sent: ``header``, ``body``, ``query``.
        resource_name: A human-readable name.
        resource_documentation: A URL of human-readable documentation.
        resource_policy_uri: A URL of the resource's data policy.
        resource_tos_uri: A URL of the resource's terms of service.
        jwks_uri: A URL of the resource's own public keys (for signed requests or responses).
        extra: More members for the document (registered or private names); they may not
            replace the members above.
        signer: When given, the document also carries ``signed_metadata`` (§2.2).
        max_age: Seconds a client or cache may keep the document (``Cache-Control``).
    """

    resource: str
    authorization_servers: Sequence[str] = ()
    scopes_supported: Sequence[str] = ()
    challenge_scopes: Sequence[str] = ()
    bearer_methods_supported: Sequence[BearerMethod] = ("header",)
    resource_name: str | None = None
    resource_documentation: str | None = None
    resource_policy_uri: str | None = None
    resource_tos_uri: str | None = None
    jwks_uri: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    signer: MetadataSigner | None = None
    max_age: int = 3600
    #: The absolute URL of the path-inserted metadata document (§3.1).
    metadata_url: str = field(init=False)
    #: The well-known paths served: the path-inserted form first, then the root form.
    metadata_paths: tuple[str, ...] = field(init=False)
    _body: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        checked_url(self.resource, "resource")
        if isinstance(self.authorization_servers, str):
            raise ConfigurationError("authorization_servers: a list of issuer URLs is needed")
        for issuer in self.authorization_servers:
            checked_url(issuer, "authorization_servers")
        if isinstance(self.scopes_supported, str) or isinstance(self.challenge_scopes, str):
            raise ConfigurationError("scopes_supported/challenge_scopes: lists of scopes, "
                                     "not one string")
        for name, scopes in (("scopes_supported", self.scopes_supported),
                             ("challenge_scopes", self.challenge_scopes)):
            for scope in scopes:
                if not isinstance(scope, str) or not _SCOPE_TOKEN.fullmatch(scope):
                    raise ConfigurationError(f"{name}: {scope!r} is not a scope token "
                                             "(RFC 6749 §3.3)")
        missing = [s for s in self.challenge_scopes if self.scopes_supported
                   and s not in self.scopes_supported]
        if missing:
            raise ConfigurationError(f"challenge_scopes: {missing} not in scopes_supported")
        for method in self.bearer_methods_supported:
            if method not in _BEARER_METHODS:
                raise ConfigurationError(f"bearer_methods_supported: {method!r} is not one "
                                         "of header, body, query (RFC 9728 §2)")
        for name in ("resource_documentation", "resource_policy_uri", "resource_tos_uri",
                     "jwks_uri"):
            value = getattr(self, name)
            if value is not None:
                checked_url(value, name, query_allowed=True)
        if self.resource_name is not None and not self.resource_name.strip():
            raise ConfigurationError("resource_name: must not be empty")
        if isinstance(self.max_age, bool) or not isinstance(self.max_age, int) or not (
                0 <= self.max_age <= 31_536_000):
            raise ConfigurationError("max_age: seconds between 0 and one year")
        parts = urlsplit(self.resource)
        origin = f"{parts.scheme}://{parts.netloc}"
        # §3.1: a terminating slash after the host is removed before inserting.
        path = parts.path.rstrip("/") if parts.path != "/" else ""
        paths = (WELL_KNOWN + path,) if not path else (WELL_KNOWN + path, WELL_KNOWN)
        object.__setattr__(self, "metadata_paths", paths)
        object.__setattr__(self, "metadata_url", origin + paths[0])
        document = self.document()  # a signer's or an extra member's mistake raises here
        try:
            body = json.dumps(document, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"extra: not JSON ({exc})") from None
        object.__setattr__(self, "_body", body.encode("utf-8"))

    # -- the document ------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """The metadata document (RFC 9728 §2), as a JSON-ready dict."""
        doc: dict[str, Any] = {"resource": self.resource}
        if self.authorization_servers:
            doc["authorization_servers"] = list(self.authorization_servers)
        if self.jwks_uri is not None:
            doc["jwks_uri"] = self.jwks_uri
        if self.scopes_supported:
            doc["scopes_supported"] = list(self.scopes_supported)
        doc["bearer_methods_supported"] = list(self.bearer_methods_supported)
        for name in ("resource_name", "resource_documentation", "resource_policy_uri",
                     "resource_tos_uri"):
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        for name, value in self.extra.items():
            if name in doc or name == "signed_metadata":
                raise ConfigurationError(f"extra: {name!r} would replace a configured member")
            doc[name] = value
        if self.signer is not None:
            doc["signed_metadata"] = self.signer.sign(doc)
        return doc

    @property
    def body(self) -> bytes:
        """The document as served (UTF-8 JSON), encoded once."""
        return self._body

    def challenge_params(self) -> dict[str, str]:
        """Parameters every Bearer challenge of this resource carries (RFC 9728 §5.1)."""
        return {"resource_metadata": self.metadata_url}

    # -- serving -----------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {
            "Cache-Control": f"public, max-age={self.max_age}",
            "Access-Control-Allow-Origin": "*",
            "X-Content-Type-Options": "nosniff",
        }

    async def _serve(self, request: Request) -> Response:
        if request.method == "OPTIONS":  # a CORS preflight (custom headers, e.g. MCP's)
            return Response(status_code=204, headers={
                **self._headers(),
                "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                "Access-Control-Allow-Headers": "*",
                "Access-Control-Max-Age": "86400",
            })
        return Response(self._body, media_type="application/json", headers=self._headers())

    def routes(self) -> list[BaseRoute]:
        """Starlette routes serving the document at its well-known paths, public by
        policy; add them to a Starlette or FastAPI app's routes."""
        return [protect(Public)(Route(path, self._serve, methods=["GET", "HEAD", "OPTIONS"],
                                      include_in_schema=False))
                for path in self.metadata_paths]


def install_metadata(app: Any, resource: ProtectedResource) -> None:
    """Serve ``resource``'s metadata document from ``app`` (Starlette or FastAPI).

    The routes go first, so that no catch-all route of the app shadows them. Call it
    before the app starts serving.
    """
    router = getattr(app, "router", app)
    routes = getattr(router, "routes", None)
    if not isinstance(routes, list):
        raise ConfigurationError("app: not a Starlette or FastAPI application (no routes)")
    routes[:0] = resource.routes()
