"""What RFC 7662 introspection costs: a remembered answer against a request to a stub
endpoint on loopback (uvicorn in a thread, answering a fixed active token).

    python -m benchmarks.introspection [--smoke]

Each figure is the median over rounds of the mean time of one ``authenticate()`` call.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard.oauth import IntrospectionAuthenticator

RESOURCE = "https://api.example.test/mcp"
TOKEN = "opaque-benchmark-token-0123456789"


async def introspect(request: Request) -> JSONResponse:
    return JSONResponse({"active": True, "sub": "alice", "aud": RESOURCE, "scope": "read",
                         "exp": int(time.time()) + 3600})


def start_stub() -> tuple[uvicorn.Server, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    app = Starlette(routes=[Route("/introspect", introspect, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, port


def connection() -> HTTPConnection:
    scope: dict[str, Any] = {
        "type": "http", "method": "GET", "path": "/", "query_string": b"",
        "headers": [(b"authorization", f"Bearer {TOKEN}".encode())],
    }
    return HTTPConnection(scope)


async def measure(authenticator: IntrospectionAuthenticator, n: int, rounds: int) -> float:
    conn = connection()
    await authenticator.authenticate(conn)  # warm up (and fill the cache)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            await authenticator.authenticate(conn)
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


async def run(smoke: bool) -> None:
    server, port = start_stub()
    endpoint = f"http://127.0.0.1:{port}/introspect"
    common: dict[str, Any] = {"endpoint": endpoint, "client_id": "bench",
                              "client_secret": "bench-secret-0123456789", "audience": RESOURCE}
    cached = IntrospectionAuthenticator(**common)
    uncached = IntrospectionAuthenticator(**common, cache_size=0)
    rounds = 3 if smoke else 7
    try:
        hit = await measure(cached, 200 if smoke else 20_000, rounds)
        miss = await measure(uncached, 10 if smoke else 300, rounds)
    finally:
        await cached.aclose()
        await uncached.aclose()
        server.should_exit = True
    print("| case | µs per authenticate() |")
    print("|---|---:|")
    print(f"| introspection, remembered answer | {hit:.1f} |")
    print(f"| introspection, stub endpoint on loopback | {miss:.1f} |")
    print(f"\nA remembered answer is {miss / hit:.0f}x cheaper than asking the endpoint.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few iterations only")
    asyncio.run(run(parser.parse_args().smoke))


if __name__ == "__main__":
    main()
