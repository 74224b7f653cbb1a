"""Verification keys for JWTs: each key bound to exactly one algorithm.

* :class:`JWTKey` — one prepared key (an HMAC secret, a PEM, or a JWK) and its algorithm;
* :class:`StaticKeys` — a fixed set (rotation: list the old and the new key);
* :class:`JWKSKeys` — a JWKS document fetched from a URL, cached, looked up by ``kid``,
  refreshed on an unknown ``kid`` at most once per ``min_refresh_interval`` and in the
  background before it goes stale.

A token's header never makes the server fetch or open anything: ``jku``, ``x5u``,
``x5c`` and ``jwk`` are ignored, and ``kid`` is only ever a dictionary key.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import anyio.to_thread
import jwt
from jwt.algorithms import get_default_algorithms

from ..errors import AuthUnavailable, ConfigurationError

__all__ = ["JWKSKeys", "JWTKey", "KeySource", "StaticKeys"]

log = logging.getLogger("authguard")

#: Algorithms authguard accepts; ``none`` is never one of them.
SUPPORTED_ALGORITHMS = frozenset({
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA",
})
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_EC_ALG = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}


def _check_algorithm(algorithm: str) -> None:
    if algorithm.lower() == "none":
        raise ConfigurationError("algorithm: 'none' is never accepted (unsigned tokens)")
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise ConfigurationError(
            f"algorithm: {algorithm!r} is not supported; use one of "
            + ", ".join(sorted(SUPPORTED_ALGORITHMS)))


@dataclass(frozen=True, slots=True)
class JWTKey:
    """One verification key, prepared once, usable with exactly one algorithm.

    Build it with :meth:`hmac`, :meth:`from_pem` or :meth:`from_jwk`.

    Attributes:
        algorithm: The only algorithm this key verifies (no HS/RS confusion).
        kid: Key id, matched against the token header's ``kid``.
        key: The prepared ``jwt.PyJWK``.
    """

    algorithm: str
    kid: str | None
    key: jwt.PyJWK = field(repr=False, compare=False)

    @classmethod
    def hmac(cls, secret: str | bytes, algorithm: str = "HS256", *,
             kid: str | None = None) -> JWTKey:
        """A shared secret for ``HS256``/``HS384``/``HS512``; at least as long as the hash."""
        _check_algorithm(algorithm)
        if algorithm not in _HMAC_MIN_BYTES:
            raise ConfigurationError(f"algorithm: {algorithm!r} is not an HMAC algorithm")
        raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        need = _HMAC_MIN_BYTES[algorithm]
        if len(raw) < need:
            raise ConfigurationError(
                f"secret: an {algorithm} secret needs at least {need} bytes (got {len(raw)})")
        k = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        jwk = {"kty": "oct", "k": k, "alg": algorithm}
        return cls(algorithm, kid, jwt.PyJWK(jwk, algorithm))

    @classmethod
    def hs256(cls, secret: str | bytes, *, kid: str | None = None) -> JWTKey:
        """Shorthand for ``JWTKey.hmac(secret, "HS256")``."""
        return cls.hmac(secret, "HS256", kid=kid)

    @classmethod
    def from_pem(cls, pem: str | bytes, algorithm: str, *, kid: str | None = None) -> JWTKey:
        """A public key (or a private key, of which only the public half is kept) in PEM."""
        _check_algorithm(algorithm)
        if algorithm in _HMAC_MIN_BYTES:
            raise ConfigurationError("algorithm: use JWTKey.hmac() for HMAC secrets")
        impl = get_default_algorithms()[algorithm]
        try:
            prepared: Any = impl.prepare_key(pem)
        except Exception as exc:
            raise ConfigurationError(f"pem: not a key for {algorithm}: {exc}") from None
        if hasattr(prepared, "public_key"):
            prepared = prepared.public_key()
        jwk = json.loads(impl.to_jwk(prepared))
        jwk["alg"] = algorithm
        if kid is not None:
            jwk["kid"] = kid
        return cls(algorithm, kid, jwt.PyJWK(jwk, algorithm))

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any], algorithm: str | None = None) -> JWTKey:
        """A key from a JWK; the algorithm is ``algorithm``, the JWK's ``alg``, or derived
        from its key type (RSA → RS256, EC → by curve, OKP → EdDSA)."""
        alg = algorithm or jwk.get("alg") or _derive_algorithm(jwk)
        if not isinstance(alg, str):
            raise ConfigurationError("jwk: no usable 'alg'")
        _check_algorithm(alg)
        if jwk.get("kty") == "oct" and algorithm is None:
            raise ConfigurationError("jwk: symmetric keys must be given explicitly (hmac)")
        try:
            key = jwt.PyJWK(dict(jwk), alg)
        except Exception as exc:
            raise ConfigurationError(f"jwk: unusable key: {exc}") from None
        kid = jwk.get("kid")
        return cls(alg, kid if isinstance(kid, str) else None, key)


def _derive_algorithm(jwk: Mapping[str, Any]) -> str | None:
    kty = jwk.get("kty")
    if kty == "RSA":
        return "RS256"
    if kty == "EC":
        return _EC_ALG.get(str(jwk.get("crv")))
    if kty == "OKP" and jwk.get("crv") in ("Ed25519", "Ed448"):
        return "EdDSA"
    return None


@runtime_checkable
class KeySource(Protocol):
    """Where a Bearer authenticator finds the keys for a token."""

    async def keys_for(self, kid: str | None, algorithm: str) -> Sequence[JWTKey]:
        """Keys that may have signed a token with this ``kid`` and ``alg`` (maybe none).

        Raises :class:`~authguard.AuthUnavailable` when the keys cannot be had right now.
        """
        ...


class StaticKeys:
    """A fixed set of keys. For rotation, list the new and the old key side by side."""

    def __init__(self, keys: Sequence[JWTKey]) -> None:
        if not keys:
            raise ConfigurationError("keys: at least one key is needed")
        self.keys = tuple(keys)

    async def keys_for(self, kid: str | None, algorithm: str) -> Sequence[JWTKey]:
        """Keys with this algorithm whose ``kid`` matches (a key without ``kid`` matches any)."""
        return [k for k in self.keys
                if k.algorithm == algorithm and (kid is None or k.kid is None or k.kid == kid)]


@dataclass
class _Cache:
    keys: dict[str, JWTKey] = field(default_factory=dict)
    anonymous: list[JWTKey] = field(default_factory=list)
    fetched_at: float = 0.0


class JWKSKeys:
    """Keys from a JWKS URL, cached and refreshed.

    Args:
        url: The JWKS document (``https://`` in production; ``http://`` is allowed for
            loopback tests).
        algorithms: Algorithms accepted from this source (keys whose ``alg`` is not listed
            are ignored; symmetric keys are never taken from a JWKS).
        refresh_interval: Seconds after which the document is fetched again; a refresh
            starts in the background after 80% of it.
        min_refresh_interval: An unknown ``kid`` triggers a fetch at most this often.
        max_stale: How long cached keys keep being used while the URL is unreachable.
        timeout: Seconds allowed for one fetch.
        retry_after: Sent with the 503 when no key can be had.
        max_bytes: Largest JWKS document read.
        fetch: Replace the HTTP fetch (a callable ``url, timeout -> bytes``, run in a thread).
        clock: Current time, in seconds.
    """

    def __init__(
        self,
        url: str,
        *,
        algorithms: Sequence[str] = ("RS256", "ES256", "EdDSA"),
        refresh_interval: float = 600.0,
        min_refresh_interval: float = 30.0,
        max_stale: float = 86_400.0,
        timeout: float = 3.0,
        retry_after: int = 30,
        max_bytes: int = 1_000_000,
        fetch: Callable[[str, float], bytes] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ConfigurationError(f"url: {url!r} is not an http(s) URL")
        for alg in algorithms:
            _check_algorithm(alg)
            if alg in _HMAC_MIN_BYTES:
                raise ConfigurationError("algorithms: symmetric algorithms are not taken "
                                         "from a JWKS")
        if min_refresh_interval <= 0 or refresh_interval < min_refresh_interval:
            raise ConfigurationError("refresh_interval: must be ≥ min_refresh_interval > 0")
        self.url = url
        self.algorithms = frozenset(algorithms)
        self.refresh_interval = refresh_interval
        self.min_refresh_interval = min_refresh_interval
        self.max_stale = max_stale
        self.timeout = timeout
        self.retry_after = retry_after
        self.max_bytes = max_bytes
        self._fetch = fetch or self._http_get
        self._clock = clock
        self._cache = _Cache()
        self._attempted_at = float("-inf")
        self._last_ok = False
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[bool] | None = None

    # -- fetching ------------------------------------------------------------------------

    def _http_get(self, url: str, timeout: float) -> bytes:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data: bytes = response.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            raise ValueError("JWKS document too large")
        return data

    def _parse(self, data: bytes) -> _Cache:
        document = json.loads(data)
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ValueError("JWKS document has no 'keys' list")
        cache = _Cache()
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            if entry.get("kty") == "oct":
                continue
            try:
                key = JWTKey.from_jwk(entry)
            except ConfigurationError:
                continue
            if key.algorithm not in self.algorithms:
                continue
            if key.kid is None:
                cache.anonymous.append(key)
            else:
                cache.keys[key.kid] = key
        return cache

    async def refresh(self) -> bool:
        """Fetch the document now; ``True`` if it was fetched and parsed."""
        async with self._lock:
            return await self._refresh_locked()

    async def _refresh_locked(self) -> bool:
        now = self._attempted_at = self._clock()
        try:
            data = await anyio.to_thread.run_sync(self._fetch, self.url, self.timeout)
            fresh = self._parse(data)
        except Exception as exc:  # network, HTTP, JSON: all mean "could not refresh"
            log.warning("authguard: JWKS %s could not be fetched: %s", self.url,
                        type(exc).__name__)
            self._last_ok = False
            return False
        fresh.fetched_at = now
        self._cache = fresh
        self._last_ok = True
        return True

    def _start_background_refresh(self) -> None:
        if self._background is not None and not self._background.done():
            return
        self._background = asyncio.get_running_loop().create_task(self.refresh())

    # -- lookup --------------------------------------------------------------------------

    def _lookup(self, kid: str | None, algorithm: str) -> list[JWTKey]:
        cache = self._cache
        if kid is not None:
            key = cache.keys.get(kid)
            found = [key] if key is not None else []
        else:
            found = [*cache.keys.values(), *cache.anonymous]
        return [k for k in found if k.algorithm == algorithm]

    async def keys_for(self, kid: str | None, algorithm: str) -> Sequence[JWTKey]:
        """The keys for ``kid``, refreshing when unknown or stale; 503 when none can be had."""
        if algorithm not in self.algorithms:
            return []
        cache = self._cache
        now = self._clock()
        age = now - cache.fetched_at
        if cache.fetched_at > 0 and age < self.refresh_interval:
            if age > 0.8 * self.refresh_interval:
                self._start_background_refresh()
            found = self._lookup(kid, algorithm)
            if found or now - self._attempted_at < self.min_refresh_interval:
                return found
        async with self._lock:
            if self._cache is cache and (
                self._clock() - self._attempted_at >= self.min_refresh_interval
            ):
                await self._refresh_locked()
            now = self._clock()
            found = self._lookup(kid, algorithm)
            usable = self._cache.fetched_at > 0 and (
                now - self._cache.fetched_at < self.refresh_interval + self.max_stale)
            if found and usable:
                return found
            if usable and self._last_ok:
                return []  # the document was fetched and has no such key: a bad token
            raise AuthUnavailable(f"JWKS {self.url} unreachable and no usable cached key",
                                  retry_after=self.retry_after)
