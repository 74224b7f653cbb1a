"""``AuthGuard``: the configuration shared by the middleware and the framework integrations."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .authenticators.base import Authenticator, capabilities
from .bruteforce import BruteForceGuard
from .errors import ConfigurationError
from .net import NetworkPolicy
from .policy import Anyone, DenyAll, Policy, Requirement
from .reasons import DEFAULT_TYPE_BASE

if TYPE_CHECKING:
    from .observability import Observability

__all__ = ["AuthGuard"]

log = logging.getLogger("authguard")
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2: a header name


@dataclass(frozen=True, kw_only=True, eq=False)
class AuthGuard:
    """Everything the middleware decides with. Validated at construction.

    Attributes:
        authenticators: Tried in order; the first that finds its own credentials decides.
        rules: Path-prefix policies, e.g. ``{"/admin": HasRoles("admin")}``; the longest
            matching prefix applies to routes that declare no policy of their own.
        default: Policy of routes that declare none and match no rule. The default checks
            credentials when they are sent but requires none (like Starlette's
            ``AuthenticationMiddleware``).
        deny_by_default: Refuse every route without an explicit policy (401/403); such
            routes are named in a warning at start-up.
        type_base: Base URI of the problem ``type`` members.
        login_url: Default login page for browser navigations refused with 401.
        network: Client address policy and trusted proxies.
        require_https: Refuse credentials sent over plain http (403 ``insecure_transport``).
        brute_force: The failed-attempt guard (``None`` disables it).
        send_date: Add a ``Date`` header to refusals (for servers that do not; uvicorn does).
        request_id_header: Header carrying the request id (reused when it is a safe token).
        max_credentials_bytes: Longest ``Authorization`` field, cookie (name=value pair),
            API-key header or websocket subprotocol list read, in bytes. Longer ones are
            refused (401 ``credentials_malformed``) before any authenticator parses or
            decodes them.
        clock: Source of the current time, in seconds since the epoch (for tests).
        observability: Events, metrics and the systemic-cause detector
            (:class:`~authguard.observability.Observability`); ``None`` logs each refusal
            and does nothing else.
    """

    authenticators: Sequence[Authenticator]
    rules: Mapping[str, Requirement | Policy | None] = field(default_factory=dict)
    default: Policy = field(default_factory=lambda: Policy(Anyone()))
    deny_by_default: bool = False
    type_base: str = DEFAULT_TYPE_BASE
    login_url: str | None = None
    network: NetworkPolicy | None = None
    require_https: bool = False
    brute_force: BruteForceGuard | None = None
    send_date: bool = False
    request_id_header: str = "x-request-id"
    max_credentials_bytes: int = 8192
    clock: Callable[[], float] = time.time
    observability: Observability | None = None
    by_scheme: Mapping[str, Authenticator] = field(init=False, repr=False)
    credential_headers: frozenset[bytes] = field(init=False, repr=False)
    path_rules: tuple[tuple[str, Policy], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.authenticators:
            raise ConfigurationError("authenticators: at least one is needed")
        by_scheme: dict[str, Authenticator] = {}
        for a in self.authenticators:
            if not isinstance(a, Authenticator):
                raise ConfigurationError(f"authenticators: {a!r} is not an Authenticator")
            key = a.scheme.lower()
            if key in by_scheme:
                raise ConfigurationError(f"authenticators: scheme {a.scheme!r} configured twice")
            by_scheme[key] = a
        object.__setattr__(self, "by_scheme", by_scheme)
        if self.max_credentials_bytes < 256:
            raise ConfigurationError("max_credentials_bytes: must be at least 256")
        names = {b"authorization", b"cookie", b"sec-websocket-protocol"}
        for a in self.authenticators:  # e.g. APIKeyAuthenticator's X-API-Key
            names.update(h.lower().encode("latin-1", "replace")
                         for h in capabilities(a).credential_headers)
        object.__setattr__(self, "credential_headers", frozenset(names))
        rules = []
        for prefix, value in self.rules.items():
            if not prefix.startswith("/"):
                raise ConfigurationError(f"rules: path prefix {prefix!r} must start with '/'")
            policy = value if isinstance(value, Policy) else Policy(value)
            rules.append((prefix, policy))
        rules.sort(key=lambda r: len(r[0]), reverse=True)
        object.__setattr__(self, "path_rules", tuple(rules))
        if self.deny_by_default:
            object.__setattr__(self, "default", Policy(DenyAll()))
        if self.login_url is not None and (
            not self.login_url.startswith("/") or self.login_url.startswith("//")
            or not self.login_url.isascii() or not self.login_url.isprintable()
            or " " in self.login_url or "\\" in self.login_url
        ):
            raise ConfigurationError(
                "login_url: must be a local path starting with '/' (printable ASCII, no "
                "spaces or backslashes; percent-encode the rest)")
        if self.observability is not None:
            self.observability.bind(self)
        if not _TOKEN_RE.fullmatch(self.request_id_header):
            raise ConfigurationError(
                f"request_id_header: {self.request_id_header!r} is not a header name")

    def authenticator(self, scheme: str) -> Authenticator | None:
        """The authenticator for ``scheme`` (case-insensitive)."""
        return self.by_scheme.get(scheme.lower())

    def accepted(self, policy: Policy) -> list[Authenticator]:
        """Authenticators a route with ``policy`` accepts, in configured order."""
        schemes = policy.schemes()
        if schemes is None:
            return list(self.authenticators)
        wanted = {s.lower() for s in schemes}
        return [a for a in self.authenticators if a.scheme.lower() in wanted]

    def rule_for(self, path: str) -> Policy | None:
        """The policy of the longest path rule matching ``path``."""
        for prefix, policy in self.path_rules:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return policy
        return None
