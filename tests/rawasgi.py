"""Raw ASGI calls: headers exactly as a server delivers them (bytes, repeated, any order).

httpx normalises what it sends; these helpers build the ASGI scope directly so that tests
can send any byte sequence, and record what the application sent back.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from authguard.challenges import parse_www_authenticate
from helpers import _VALIDATOR, EXAMPLE_DIR
from leakcheck import RECORDER

Headers = Sequence[tuple[bytes, bytes]]


@dataclass
class Answer:
    """What the application sent: status, raw headers, body, and the scope after the call."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    scope: dict[str, Any]
    accepted: bool = False  # websocket: the handshake was accepted
    messages: list[dict[str, Any]] = field(default_factory=list)

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name]


def load_example_app(name: str, env: Mapping[str, str]) -> ModuleType:
    """A fresh copy of the example app module (its own guard, stores and counters)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        if str(EXAMPLE_DIR) not in sys.path:
            sys.path.insert(0, str(EXAMPLE_DIR))
        spec = importlib.util.spec_from_file_location(name, EXAMPLE_DIR / "app.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def http(app: Any, method: str, path: str, headers: Headers = (), *,
               client: tuple[str, int] = ("198.51.100.7", 50000), scheme: str = "http",
               body: bytes = b"", query: bytes = b"") -> Answer:
    """One HTTP request through ``app`` as raw ASGI."""
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "method": method, "scheme": scheme, "path": path,
        "raw_path": path.encode("latin-1"), "query_string": query, "root_path": "",
        "headers": [(k.lower(), v) for k, v in headers], "client": client,
        "server": ("testserver", 80), "state": {},
    }
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    data = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    RECORDER.raw(start["status"], list(start.get("headers", [])), data)
    return Answer(start["status"], list(start.get("headers", [])), data, scope, messages=sent)


async def websocket(app: Any, path: str, headers: Headers = (), *,
                    client: tuple[str, int] = ("198.51.100.7", 50000),
                    subprotocols: Sequence[str] = ()) -> Answer:
    """A websocket handshake through ``app``; the server offers ``websocket.http.response``."""
    scope: dict[str, Any] = {
        "type": "websocket", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "scheme": "ws", "path": path,
        "raw_path": path.encode("latin-1"), "query_string": b"", "root_path": "",
        "headers": [(k.lower(), v) for k, v in headers], "client": client,
        "server": ("testserver", 80), "subprotocols": list(subprotocols), "state": {},
        "extensions": {"websocket.http.response": {}},
    }
    sent: list[dict[str, Any]] = []
    step = 0

    async def receive() -> dict[str, Any]:
        nonlocal step
        step += 1
        if step == 1:
            return {"type": "websocket.connect"}
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    accepted = any(m["type"] == "websocket.accept" for m in sent)
    start = next((m for m in sent if m["type"] == "websocket.http.response.start"), None)
    if start is None:
        status = 101 if accepted else 403  # closed before accept: the server answers 403
        return Answer(status, [], b"", scope, accepted=accepted, messages=sent)
    data = b"".join(m.get("body", b"") for m in sent
                    if m["type"] == "websocket.http.response.body")
    RECORDER.raw(start["status"], list(start.get("headers", [])), data)
    return Answer(start["status"], list(start.get("headers", [])), data, scope,
                  accepted=accepted, messages=sent)


def check_answer(answer: Answer, method: str = "GET") -> None:
    """DESIGN's rules on a raw answer: no 5xx, a parseable challenge on every 401 (one per
    field line, each header value Latin-1 without CR/LF), a schema-valid problem body."""
    assert answer.status < 500, (answer.status, answer.body[:300])
    for name, value in answer.headers:
        assert b"\r" not in value and b"\n" not in value and b"\x00" not in value, (name, value)
        assert b"\r" not in name and b"\n" not in name and b":" not in name, name
    ctype = b"".join(answer.header(b"content-type"))
    if answer.status == 401:
        lines = answer.header(b"www-authenticate")
        assert lines, "every 401 carries a challenge"
        for line in lines:
            assert len(parse_www_authenticate(line.decode("latin-1"))) == 1
        if answer.scope["type"] == "http":
            assert ctype.startswith(b"application/problem+json"), ctype
    if ctype.startswith(b"application/problem+json") and method != "HEAD" and answer.body:
        body = json.loads(answer.body)
        _VALIDATOR.validate(body)
        assert body["status"] == answer.status
