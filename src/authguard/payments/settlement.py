"""Settling a verified payment: the middleware's response hook (HTTP 402, DESIGN §1).

Settlement runs once the whole decision is taken: by default *before* the app runs
(``settle="before"``: unpaid requests have no side effects, and streaming responses need no
buffering), or with ``settle="on_success"`` when the app starts a 2xx response, before its
first byte is sent. The response then carries the verifier's receipt headers
(``Payment-Receipt`` on a 2xx only, ``PAYMENT-RESPONSE``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.types import Message

from ..errors import Refusal
from ..observability.safety import safe_text
from ..reasons import Reason
from .base import PaymentContext, PaymentProviderError, PaymentRejected, PaymentVerifier

if TYPE_CHECKING:
    from .requirement import Payment

__all__ = ["PAID", "Hooks", "Settlement", "provider_error"]

log = logging.getLogger("authguard")


def provider_error(exc: PaymentProviderError) -> Refusal:
    # The message may quote what the provider sent: escaped, so it cannot forge a line.
    log.warning("authguard: payment provider answered garbage: %s", safe_text(exc, 500))
    return Refusal(Reason.PAYMENT_PROVIDER_ERROR)


@dataclass(eq=False, slots=True)
class Settlement:
    """The middleware's response hook for one verified payment.

    ``settle="before"`` (and every WebSocket): settled in :meth:`before_app`.
    ``settle="on_success"``: a verifier with ``reserve`` holds the proof before the app
    runs (one receipt never runs the app twice), then settles when the app starts a 2xx
    response; any other status gives the proof back (``release``), with nothing charged.
    """

    payment: Payment
    verifier: PaymentVerifier
    verified: Any
    ctx: PaymentContext
    headers: Mapping[str, str] | None = None
    reserved: bool = False

    async def _guarded(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except PaymentRejected as exc:
            raise self.payment.refusal(self.ctx, exc) from None
        except PaymentProviderError as exc:
            raise provider_error(exc) from None

    async def _settle(self) -> None:
        settle = getattr(self.verifier, "settle", None)  # optional: nothing to complete
        self.headers = {} if settle is None else await self._guarded(
            settle(self.verified, self.ctx))
        self.reserved = False  # settled: never given back
        self.ctx.conn.scope.setdefault(PAID, set()).add(id(self.payment))

    async def on_failure(self) -> None:
        """The app failed before its response started (an exception, a refusal, a
        cancellation): a held proof is given back."""
        await self._release()

    async def settle_now(self) -> Mapping[str, str]:
        """Settle at once and return the receipt headers (where no middleware runs the
        hook: a FastAPI dependency on an app with ``install()`` only)."""
        if self.headers is None:
            await self._settle()
        return dict(self.headers or {})

    async def before_app(self) -> None:
        if self.payment.settle == "before" or self.ctx.conn.scope.get("type") == "websocket":
            await self._settle()
            return
        reserve = getattr(self.verifier, "reserve", None)
        if reserve is not None:
            self.verified = await self._guarded(reserve(self.verified, self.ctx))
            self.reserved = True
        # Held (or nothing to hold): a guard further in does not take this payment again.
        self.ctx.conn.scope.setdefault(PAID, set()).add(id(self.payment))

    async def on_start(self, message: Message) -> None:
        status = int(message.get("status", 200))
        if self.headers is None:
            if not 200 <= status < 300:
                await self._release()  # on_success: nothing served, nothing charged
                return
            await self._settle()
        # Settled (before the app ran, or just now). A Payment-Receipt only goes on a 2xx
        # (draft-httpauth-payment §Receipt Status Semantics: never on an error response);
        # other receipts (x402's PAYMENT-RESPONSE) say "charged" whatever the status.
        headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
        added = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                 for k, v in (self.headers or {}).items()
                 if 200 <= status < 300 or k.lower() != "payment-receipt"]
        # Receipts, and answers to a credential outside Authorization, must not be stored
        # by shared caches (draft-httpauth-payment §Caching; RFC 9111 §3.5 covers only
        # Authorization).
        if not added and not any(k == b"payment-authorization"
                                 for k, _ in self.ctx.conn.scope["headers"]):
            return
        kept = [(k, v) for k, v in headers if k != b"cache-control"
                or b"private" in v or b"no-store" in v]
        if not any(k == b"cache-control" for k, _ in kept):
            kept.append((b"cache-control", b"private"))
        if added:
            # Browser code may read the receipt (CORS hides other headers by default).
            names = b", ".join(k for k, _ in added)
            exposed = [(k, v) for k, v in kept if k == b"access-control-expose-headers"]
            if exposed:
                kept = [(k, v + b", " + names if k == b"access-control-expose-headers" else v)
                        for k, v in kept]
            else:
                kept.append((b"access-control-expose-headers", names))
        message["headers"] = kept + added

    async def _release(self) -> None:
        release = getattr(self.verifier, "release", None)
        if not self.reserved or release is None:
            return
        self.reserved = False
        try:
            await release(self.verified, self.ctx)
        except Exception:  # the response goes out; a lost receipt is logged, not raised
            log.warning("authguard: a reserved payment could not be released", exc_info=True)


class Hooks:
    """Two payments on one request (two ``Payment`` requirements): both are settled."""

    def __init__(self, first: Any, second: Any) -> None:
        self.hooks = (first, second)

    async def before_app(self) -> None:
        for hook in self.hooks:
            await hook.before_app()

    async def on_start(self, message: Message) -> None:
        for hook in self.hooks:
            await hook.on_start(message)

    async def on_failure(self) -> None:
        for hook in self.hooks:
            await hook.on_failure()

    async def settle_now(self) -> Mapping[str, str]:
        out: dict[str, str] = {}
        for hook in self.hooks:
            out.update(await hook.settle_now())
        return out


PAID = "authguard.paid"
"""Scope key: the ``Payment`` requirements (by id) already settled or held for this
request, so that a nested app's guard does not take the same payment again."""
