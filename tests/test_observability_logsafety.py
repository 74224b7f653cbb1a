"""No request value can forge a log line: every log message authguard writes escapes what
came from the request (or names the route template instead)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from authguard.observability import safe_text
from helpers import free_port, wait_listening
from obs_app import AUDIENCE, ISSUER, SECRET, make_app
from rawasgi import http

TESTS = Path(__file__).parent

EVIL = [
    "\n2026-01-01 INFO authguard: allowed GET admin",   # LF
    "\r\nINFO forged",                                     # CR LF
    "\x00NUL\x00",                                         # NUL
    "\x1b[2J\x1b[31mred\x1b[0m",                           # ANSI: clear screen, colour
    "\x85NEL\x7fDEL\x9bCSI",                               # C1 controls and DEL
    "\\n looks like an escape",                            # a backslash faking one
    "A" * 100_000,                                         # very long
]
BAD = ("\n", "\r", "\x00", "\x1b", "\x85", "\x7f", "\x9b")


def _clean(text: str) -> None:
    for char in BAD:
        assert char not in text, f"{char!r} reached the log"


@pytest.mark.parametrize("value", EVIL)
def test_safe_text_leaves_one_printable_bounded_line(value: str) -> None:
    out = safe_text(value)
    _clean(out)
    assert out.isprintable()
    assert len(out) <= 200 + len("...[100000 chars]")
    if "\\" in value:  # a backslash in the input can never pass for an escape
        assert "\\\\n" in out


def test_safe_text_escapes_unicode_line_separators_and_bytes() -> None:
    assert safe_text("a\u2028b\u2029c") == "a\\u2028b\\u2029c"
    assert safe_text(b"x\r\ny") == "x\\x0d\\x0ay"
    assert safe_text("é ok") == "é ok"


def _all_text(records: list[logging.LogRecord]) -> str:
    fmt = logging.Formatter("%(levelname)s %(message)s %(authguard)s")
    out = []
    for rec in records:
        if not hasattr(rec, "authguard"):
            rec.authguard = ""
        out.append(fmt.format(rec))
    return " | ".join(out)


@pytest.mark.parametrize("evil", EVIL)
async def test_a_forged_path_never_reaches_the_log(
        evil: str, caplog: pytest.LogCaptureFixture) -> None:
    # What uvicorn puts in scope["path"] for /items/%0A… (it percent-decodes the path).
    app = make_app()
    with caplog.at_level(logging.INFO, logger="authguard"):
        for path in ("/items/" + evil, "/x/a/" + evil, "/nowhere" + evil):
            answer = await http(app, "GET", path, [(b"authorization", b"Bearer x.y.z")])
            assert answer.status == 401
    records = [r for r in caplog.records if r.name == "authguard"]
    assert len(records) == 3
    text = _all_text(records)
    _clean(text)
    assert "forged" not in text and "allowed GET /admin" not in text and "AAAA" not in text
    routes = [r.authguard["route"] for r in records]  # type: ignore[attr-defined]
    # the template of the route that matched (Starlette's converters refuse some of these
    # paths: then the route is "<unmatched>"), never the path
    assert routes[0] in ("/items/{item_id}", "<unmatched>")
    assert routes[1] in ("/x/{rest:path}", "<unmatched>")
    assert routes[2] == "<unmatched>"


async def test_token_and_header_values_in_events_are_escaped(
        caplog: pytest.LogCaptureFixture) -> None:
    now = int(time.time())
    evil = "\n" + "\x1b[31m" + "x" * 1000
    token = jwt.encode({"iss": ISSUER + evil, "aud": "other" + evil, "azp": evil,
                        "sub": "a", "exp": now + 60}, SECRET, algorithm="HS256",
                       headers={"kid": "k" + evil})
    app = make_app(trusted_proxies=("198.51.100.0/24",))
    with caplog.at_level(logging.INFO, logger="authguard"):
        answer = await http(app, "GET", "/items/1", [
            (b"authorization", f"Bearer {token}".encode()),
            (b"x-forwarded-for", b"203.0.113.9\n\x1b[31mforged"),
            (b"x-request-id", b"id\nforged"),
        ])
    assert answer.status == 401
    (record,) = [r for r in caplog.records if r.name == "authguard"]
    fields = record.authguard  # type: ignore[attr-defined]
    _clean(_all_text([record]))
    for name in ("issuer", "kid", "audience", "client_id", "client", "request_id"):
        value = fields[name]
        assert value is None or (value.isprintable() and len(value) < 160), name
    assert fields["issuer"].startswith(ISSUER + "\\x0a")
    assert fields["reason"] in ("token_wrong_audience", "credentials_invalid")
    assert fields["audience_accepted"] is False
    assert token not in repr(record.__dict__)


async def test_allowed_events_and_findings_are_escaped_too(
        caplog: pytest.LogCaptureFixture) -> None:
    from authguard.observability import Detector, Observability
    clock = [time.time()]  # pyjwt checks the tokens against the system clock
    app = make_app(Observability(allowed_events=True, detector=Detector(min_count=2)),
                   clock=lambda: clock[0])
    evil_client = "\n\x1b[31mforged"
    aud_token = jwt.encode({"iss": ISSUER, "aud": "other", "azp": evil_client, "sub": "a",
                            "exp": clock[0] + 60}, SECRET, algorithm="HS256")
    good = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "a", "exp": clock[0] + 60},
                      SECRET, algorithm="HS256")
    with caplog.at_level(logging.INFO, logger="authguard"):
        for _ in range(2):
            await http(app, "GET", "/items/%0Aforged",
                       [(b"authorization", f"Bearer {aud_token}".encode())])
        ok = await http(app, "GET", "/items/\nforged",
                        [(b"authorization", f"Bearer {good}".encode())])
    assert ok.status == 200
    records = [r for r in caplog.records if r.name == "authguard"]
    kinds = [r.authguard.get("event") for r in records]  # type: ignore[attr-defined]
    assert kinds == ["refused", "refused", "finding", "allowed"]
    _clean(_all_text(records))


def test_uvicorn_decoded_path_cannot_forge_a_line() -> None:
    """Under real uvicorn: %0A/%0D/%00 in the path come decoded into scope["path"]."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "obs_app:app", "--app-dir", str(TESTS),
         "--port", str(port), "--host", "127.0.0.1", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "OBS_APP_LOG_STDOUT": "1"})
    try:
        wait_listening(port, proc)
        for raw in (b"/items/1%0ALOG%20INFO%20forged", b"/items/%0D%0ALOG%20INFO%20forged",
                    b"/x/%00%1B%5B31mLOG%20INFO%20forged"):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET " + raw + b" HTTP/1.1\r\nHost: t\r\n"
                          b"Authorization: Bearer x.y.z\r\nConnection: close\r\n\r\n")
                reply = b""
                while chunk := s.recv(65536):
                    reply += chunk
            assert reply.startswith(b"HTTP/1.1 401")
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0].decode("utf-8", "replace")
    lines = [ln for ln in output.splitlines() if ln.startswith("LOG")]
    assert len(lines) == 3, output
    assert all(ln.startswith("LOG INFO refused GET ") for ln in lines), lines
    assert "forged" not in output
    assert "\x1b" not in output and "\x00" not in output
