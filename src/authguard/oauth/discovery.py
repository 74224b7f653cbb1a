"""Keys of an issuer found from its metadata (RFC 8414, OpenID Connect Discovery 1.0).

:class:`IssuerKeys` is a :class:`~authguard.KeySource` configured with nothing but an
issuer identifier. On first use it reads the authorization server's metadata from

1. ``/.well-known/oauth-authorization-server`` inserted between the host and the
   issuer's path (RFC 8414 §3.1), then
2. ``<issuer>/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0 §4; RFC
   8414 §5 keeps it for compatibility),

checks that the document's ``issuer`` equals the configured issuer *exactly* (RFC 8414
§3.3: no normalisation — a trailing slash makes another issuer), and serves the keys of
its ``jwks_uri`` through :class:`~authguard.JWKSKeys` (cached, refreshed on an unknown
``kid`` at most once per ``min_refresh_interval``, used while stale if the issuer is
down). While the issuer cannot be reached and no usable key is cached, ``keys_for``
raises :class:`~authguard.AuthUnavailable`: the client gets 503 with ``Retry-After``,
never a 401; the next attempt after ``min_refresh_interval`` tries again, so the service
recovers without a restart.

Algorithms are the configured ones, narrowed by what the metadata announces: its
``access_token_signing_alg_values_supported`` (published by some servers; no RFC
registers it yet), else ``id_token_signing_alg_values_supported`` (OpenID). A token
signed with an algorithm the issuer does not announce is refused even if some key
verifies it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread

from ..authenticators.keys import JWKSKeys, JWTKey
from ..errors import AuthUnavailable, ConfigurationError
from .metadata import checked_url

__all__ = ["IssuerKeys", "metadata_urls"]

log = logging.getLogger("authguard")

#: Metadata members that list the algorithms the issuer signs with, the first found used.
ALGORITHMS_MEMBERS = ("access_token_signing_alg_values_supported",
                      "id_token_signing_alg_values_supported")


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be, in the order they are tried.

    RFC 8414 §3.1 inserts the well-known suffix between the host and the path (a
    terminating ``/`` is removed first); OpenID Connect Discovery appends it to the issuer.
    """
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    urls = [f"{origin}/.well-known/oauth-authorization-server{path}",
            f"{issuer.rstrip('/')}/.well-known/openid-configuration"]
    return list(dict.fromkeys(urls))


class _NotHere(Exception):
    """The URL answered, but holds no metadata (404, another status)."""


def _http_get(url: str, timeout: float, max_bytes: int) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data: bytes = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:  # the server answered: not a network failure
        exc.close()
        raise _NotHere(f"HTTP {exc.code}") from None
    if len(data) > max_bytes:
        raise ValueError("metadata document too large")
    return data


class IssuerKeys:
    """Verification keys of one issuer, found by discovery.

    Args:
        issuer: The issuer identifier, exactly as tokens carry it in ``iss``.
        algorithms: Algorithms accepted (narrowed by the issuer's metadata); asymmetric
            only — shared secrets are never taken from a JWKS.
        refresh_interval: Seconds after which the key set is fetched again.
        min_refresh_interval: An unknown ``kid`` (or a failed discovery) triggers a fetch at
            most this often.
        max_stale: How long cached keys keep being used while the issuer is unreachable.
        timeout: Seconds allowed for one fetch.
        retry_after: Sent with the 503 while no key can be had.
        max_bytes: Largest document read.
        fetch: Replace the HTTP fetch (``url, timeout -> bytes``, run in a thread; raise on
            failure).
        clock: Current time, in seconds.
    """

    def __init__(
        self,
        issuer: str,
        *,
        algorithms: Sequence[str] = ("RS256", "PS256", "ES256", "EdDSA"),
        refresh_interval: float = 600.0,
        min_refresh_interval: float = 30.0,
        max_stale: float = 86_400.0,
        timeout: float = 3.0,
        retry_after: int = 30,
        max_bytes: int = 1_000_000,
        fetch: Callable[[str, float], bytes] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        checked_url(issuer, "issuer")
        if not algorithms:
            raise ConfigurationError("algorithms: at least one is needed")
        # Validates the algorithms and intervals once, the way the key set will use them.
        JWKSKeys(issuer, algorithms=algorithms, refresh_interval=refresh_interval,
                 min_refresh_interval=min_refresh_interval)
        if retry_after < 1:
            raise ConfigurationError("retry_after: at least one second")
        self.issuer = issuer
        self.algorithms = frozenset(algorithms)
        self.refresh_interval = refresh_interval
        self.min_refresh_interval = min_refresh_interval
        self.max_stale = max_stale
        self.timeout = timeout
        self.retry_after = retry_after
        self.max_bytes = max_bytes
        self._fetch = fetch or (lambda url, t: _http_get(url, t, max_bytes))
        self._clock = clock
        self._jwks: JWKSKeys | None = None
        self._metadata: dict[str, Any] | None = None
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The issuer's metadata document, once discovered."""
        return self._metadata

    async def keys_for(self, kid: str | None, algorithm: str) -> Sequence[JWTKey]:
        """Keys of the issuer for ``kid`` and ``algorithm``; 503 while none can be had."""
        if algorithm not in self.algorithms:
            return []
        jwks = self._jwks
        if jwks is None:
            jwks = await self._discover()
        return await jwks.keys_for(kid, algorithm)

    async def refresh(self) -> bool:
        """Discover (if not yet done) and fetch the key set now; ``True`` on success."""
        try:
            jwks = self._jwks or await self._discover()
        except AuthUnavailable:
            return False
        return await jwks.refresh()

    async def _discover(self) -> JWKSKeys:
        async with self._lock:
            if self._jwks is not None:
                return self._jwks
            if self._clock() - self._attempted_at < self.min_refresh_interval:
                raise self._unavailable("discovery failed recently")
            self._attempted_at = self._clock()
            metadata = await anyio.to_thread.run_sync(self._find_metadata)
            jwks = self._jwks_from(metadata)
            self._metadata = metadata
            self._jwks = jwks
            return jwks

    def _find_metadata(self) -> dict[str, Any]:
        """The first metadata document found (runs in a thread)."""
        failures: list[str] = []
        for url in metadata_urls(self.issuer):
            try:
                document = json.loads(self._fetch(url, self.timeout))
            except _NotHere as exc:
                failures.append(f"{url}: {exc}")
                continue
            except Exception as exc:  # network, JSON: this URL gives nothing usable
                failures.append(f"{url}: {type(exc).__name__}")
                continue
            if not isinstance(document, dict):
                failures.append(f"{url}: not a JSON object")
                continue
            if document.get("issuer") != self.issuer:
                # RFC 8414 §3.3: MUST be identical; the document is not used.
                log.error("authguard: the metadata at %s names the issuer %r, not %r "
                          "(issuer strings are compared exactly)", url,
                          str(document.get("issuer"))[:200], self.issuer)
                failures.append(f"{url}: issuer mismatch")
                continue
            return document
        log.warning("authguard: no metadata for issuer %s: %s", self.issuer,
                    "; ".join(failures))
        raise self._unavailable("no usable metadata")

    def _jwks_from(self, metadata: dict[str, Any]) -> JWKSKeys:
        jwks_uri = metadata.get("jwks_uri")
        try:
            if not isinstance(jwks_uri, str):
                raise ConfigurationError("jwks_uri: missing")
            checked_url(jwks_uri, "jwks_uri", query_allowed=True)
        except ConfigurationError:
            log.error("authguard: the metadata of issuer %s has no usable jwks_uri",
                      self.issuer)
            raise self._unavailable("no jwks_uri") from None
        algorithms = self.algorithms
        announced = next((metadata[m] for m in ALGORITHMS_MEMBERS if m in metadata), None)
        if isinstance(announced, list):
            algorithms = algorithms & {a for a in announced if isinstance(a, str)}
        if not algorithms:
            log.error("authguard: issuer %s signs with none of the accepted algorithms",
                      self.issuer)
            raise self._unavailable("no common algorithm")
        self.algorithms = frozenset(algorithms)
        return JWKSKeys(
            jwks_uri, algorithms=sorted(algorithms),
            refresh_interval=self.refresh_interval,
            min_refresh_interval=self.min_refresh_interval, max_stale=self.max_stale,
            timeout=self.timeout, retry_after=self.retry_after, max_bytes=self.max_bytes,
            fetch=self._fetch, clock=self._clock)

    def _unavailable(self, why: str) -> AuthUnavailable:
        return AuthUnavailable(f"issuer {self.issuer}: {why}", retry_after=self.retry_after)
