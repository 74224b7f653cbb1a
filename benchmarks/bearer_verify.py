"""What ``BearerAuthenticator.authenticate()`` costs by itself, next to a bare ``jwt.decode``.

    python -m benchmarks.bearer_verify [--rounds 7]

Per call, in microseconds (median of the rounds, rounds interleaved): a token seen for the
first time (a fresh token each call), a repeated token (a cache hit), and a bare
``jwt.decode()`` of the same tokens with the same checks (the floor a hand-written
middleware pays). Then the cost of one eviction step in a full cache (10 000 entries).
No server, no middleware: only the authenticator, so the figures move with its code alone.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.requests import HTTPConnection

from authguard import BearerAuthenticator, JWTKey

AUDIENCE = "https://api.example.test"
ISSUER = "https://issuer.example.test"
SECRET = "bench-secret-0123456789abcdef-0123456789"


def _pem(private: Any) -> bytes:
    return private.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _conn(token: str) -> HTTPConnection:
    return HTTPConnection({"type": "http", "method": "GET", "path": "/", "query_string": b"",
                           "headers": [(b"authorization", b"Bearer " + token.encode())]})


def _mint(key: Any, alg: str, n: int) -> list[str]:
    now = int(time.time())
    return [jwt.encode({"sub": "ann", "aud": AUDIENCE, "iss": ISSUER, "iat": now,
                        "exp": now + 3600, "scope": "a b", "jti": uuid.uuid4().hex}, key, alg)
            for _ in range(n)]


async def _per_call(auth: BearerAuthenticator, conns: list[HTTPConnection]) -> float:
    start = time.perf_counter()
    for conn in conns:
        await auth.authenticate(conn)
    return (time.perf_counter() - start) / len(conns) * 1e6


def _bare(tokens: list[str], key: Any, alg: str) -> float:
    start = time.perf_counter()
    for token in tokens:
        jwt.decode(token, key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER)
    return (time.perf_counter() - start) / len(tokens) * 1e6


async def main(rounds: int) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    cases: list[tuple[str, JWTKey, Any, Any, int]] = [
        ("HS256", JWTKey.hs256(SECRET), SECRET, SECRET, 2000),
        ("RS256", JWTKey.from_pem(_pem(rsa_key), "RS256"), rsa_key, rsa_key.public_key(), 500),
        ("ES256", JWTKey.from_pem(_pem(ec_key), "ES256"), ec_key, ec_key.public_key(), 500),
    ]
    print("| alg | first sight µs | bare jwt.decode µs | added µs | cache hit µs |")
    print("|---|---:|---:|---:|---:|")
    for alg, key, signing, verifying, n in cases:
        first: list[float] = []
        bare: list[float] = []
        hit: list[float] = []
        for _ in range(rounds):
            auth = BearerAuthenticator(key=key, audience=AUDIENCE, issuer=ISSUER)
            conns = [_conn(t) for t in _mint(signing, alg, n)]
            first.append(await _per_call(auth, conns))
            hit.append(await _per_call(auth, [conns[0]] * 20_000))
            bare.append(_bare(_mint(signing, alg, n), verifying, alg))
        f, b, h = (statistics.median(x) for x in (first, bare, hit))
        print(f"| {alg} | {f:.1f} | {b:.1f} | {f - b:+.1f} | {h:.2f} |")
    auth = BearerAuthenticator(key=JWTKey.hs256(SECRET), audience=AUDIENCE, issuer=ISSUER)
    await _per_call(auth, [_conn(t) for t in _mint(SECRET, "HS256", auth.cache_size)])
    keys = [uuid.uuid4().bytes for _ in range(20_000)]
    entry = next(iter(auth._cache.values()))
    evict: Callable[[], object] = lambda: auth._cache.popitem(last=False)  # noqa: E731
    start = time.perf_counter()
    for k in keys:
        evict()
        auth._cache[k] = entry
    step = (time.perf_counter() - start) / len(keys) * 1e6
    print(f"\nOne eviction + insertion in a full cache of {auth.cache_size}: {step:.2f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    asyncio.run(main(parser.parse_args().rounds))
