"""Records every log record and every response the suite produces, and finds secrets in them.

Installed by ``conftest.py`` for the whole session: a handler on the root logger (with the
``authguard`` logger at DEBUG, so that refusal records are created), ``helpers.check_refusal``
(the response hook of every test client), ``rawasgi`` answers and the output of every
uvicorn server started through ``helpers.uvicorn_server``. ``test_secrets_leak.py``, which
runs last, checks the corpus against:

* the fixed secrets of the suite: demo passwords and API keys, the JWT and session secrets;
* every credential a test client sent (``Authorization`` and ``Payment-Authorization``
  parameters, decoded Basic passwords, the receipt inside a decoded ``Payment`` credential,
  ``X-API-Key``, cookie values, x402 ``PAYMENT-SIGNATURE``/``X-PAYMENT`` values and the
  signature inside them, ``password`` members of JSON bodies) — unless the server had
  handed it out first (a session cookie from ``POST /login``, a payment authorization from
  ``POST /billing/pay``): those are the server's to send.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

STATIC_SECRETS = {
    # examples/fastapi_app (settings.py defaults and the demo identities)
    "demo password (alice)": "wonderland",
    "demo password (bob)": "builder",
    "demo password (carol)": "rainbow",
    "demo API key (alice)": "demo-key-alice-0123456789",
    "demo API key (bob)": "demo-key-bob-0123456789",
    "demo JWT secret": "demo-jwt-secret-0123456789abcdef-0123456789",
    "demo session secret": "demo-session-secret-0123456789abcdef-0123",
    "demo payment secret": "demo-payment-secret-0123456789abcdef-0123",
    "demo x402 wallet key": "demo-x402-wallet-key-0123456789abcdef",
    # tests/hardening_app.py
    "hardening password": "hardening-password-7f3a",
    "hardening API key": "hardening-key-0123456789abcdef",
    "hardening JWT secret": "hardening-jwt-secret-0123456789abcdef-0123",
    "hardening session secret": "hardening-session-secret-0123456789abcdef",
    # tests/test_logging.py, tests/test_network.py
    "logging test password": "correct-horse-battery-staple",
    "network test password": "net-test-password-1",
}
_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName"}


def _decoded_json(text: str) -> dict[str, Any] | None:
    """``text`` as base64 (either alphabet, padded or not) JSON object, else ``None``."""
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_").rstrip("=")
                                       + "=" * (-len(text.rstrip("=")) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _interesting(value: str) -> bool:
    """Long and varied enough that finding it elsewhere is not a coincidence."""
    return 12 <= len(value) <= 16_384 and len(set(value)) >= 6


@dataclass
class Recorder:
    """The ordered corpus: texts the suite produced, credentials it sent."""

    texts: list[tuple[str, str]] = field(default_factory=list)  # (where, text)
    sent: dict[str, tuple[int, str]] = field(default_factory=dict)  # secret → (index, where)
    pending: list[tuple[int, httpx.Response, str]] = field(default_factory=list)
    current: str = "(collection)"

    # -- recording -----------------------------------------------------------------------

    def text(self, where: str, text: str) -> None:
        self.texts.append((f"{where} in {self.current}", text))

    def credential(self, value: str, where: str) -> None:
        value = value.strip()
        if _interesting(value) and value not in self.sent:
            self.sent[value] = (len(self.texts), f"{where} sent by {self.current}")

    def payment_proof(self, value: str, where: str, member: str) -> None:
        """The proof inside a payment credential (``payload.receipt`` of an IETF
        ``Payment`` credential, ``payload.signature`` of an x402 one), if it decodes."""
        data = _decoded_json(value)
        payload = data.get("payload") if data else None
        if isinstance(payload, dict) and isinstance(payload.get(member), str):
            self.credential(payload[member], f"payment {member} in {where}")

    def request(self, request: httpx.Request) -> None:
        for name, value in request.headers.multi_items():
            lname = name.lower()
            if lname in ("authorization", "payment-authorization"):
                scheme, _, param = value.partition(" ")
                label = "Authorization" if lname == "authorization" else "Payment-Authorization"
                self.credential(param, label)
                if scheme.lower() == "payment":
                    self.payment_proof(param, label, "receipt")
                elif scheme.lower() == "basic":
                    try:
                        decoded = base64.b64decode(param.strip(), validate=True).decode()
                    except (binascii.Error, ValueError):
                        continue
                    self.credential(decoded.partition(":")[2], "Basic password")
            elif lname in ("x-api-key", "sec-websocket-protocol"):
                self.credential(value, name)
            elif lname in ("payment-signature", "x-payment"):
                self.credential(value, lname.upper())
                self.payment_proof(value, lname.upper(), "signature")
            elif lname == "cookie":
                for pair in value.split(";"):
                    self.credential(pair.partition("=")[2], "cookie")
        try:
            body = request.content
        except httpx.RequestNotRead:
            return
        if body[:1] == b"{":
            try:
                data = json.loads(body)
            except ValueError:
                return
            if isinstance(data, dict) and isinstance(data.get("password"), str):
                self.credential(data["password"], "password in a JSON body")

    def response(self, response: httpx.Response) -> None:
        """Record an httpx response (its body is read at the end, once the test read it)."""
        try:
            self.request(response.request)
        except RuntimeError:  # pragma: no cover - a response without a request
            pass
        where = f"response {response.status_code} to {response.request.method} "
        where += response.request.url.path
        self.text(where + " (headers)", "\n".join(f"{k}: {v}" for k, v in
                                                  response.headers.multi_items()))
        self.pending.append((len(self.texts), response, where))
        self.texts.append((where, ""))  # the body, filled in by finish()

    def raw(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Record a raw ASGI answer."""
        text = "\n".join(f"{k.decode('latin-1')}: {v.decode('latin-1')}" for k, v in headers)
        self.text(f"ASGI answer {status}", text + "\n\n" + body.decode("utf-8", "replace"))

    def finish(self) -> None:
        """Fill in the bodies of recorded responses that were read."""
        for index, response, where in self.pending:
            body = ""
            if getattr(response, "_content", None) is not None:
                body = response.content.decode("utf-8", "replace")
            self.texts[index] = (f"{where} (body) in {self.current}", body)
        self.pending.clear()

    # -- checking ------------------------------------------------------------------------

    def leaks(self) -> list[str]:
        """Where a secret appears, as ``"<what> (<first chars>…) found in <where>"``."""
        self.finish()
        found: list[str] = []
        secrets = [(what, value, 0) for what, value in STATIC_SECRETS.items()]
        secrets += [(where, value, index) for value, (index, where) in self.sent.items()]
        for what, value, sent_at in secrets:
            for i, (where, text) in enumerate(self.texts):
                if value not in text:
                    continue
                if i < sent_at:  # handed out by the server before the client sent it
                    break
                found.append(f"{what} ({value[:4]}…) found in {where}")
                break
        return found


RECORDER = Recorder()


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        extras: dict[str, Any] = {k: v for k, v in record.__dict__.items()
                                  if k not in _STANDARD_ATTRS}
        try:
            message = record.getMessage()
        except Exception:  # a broken record must not break the recorder
            message = repr(record.msg)
        text = f"{record.levelname} {record.name}: {message} {extras!r} {record.args!r}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        RECORDER.text(f"log record {record.name}", text)


_HANDLER = _Handler(level=logging.DEBUG)


def install() -> None:
    """Start recording log records (called once, at session start)."""
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    logging.getLogger("authguard").setLevel(logging.DEBUG)
