"""Configuration mistakes fail at start-up, with a message that starts with the setting.

Each case is a mistake someone will make; each must raise ``ConfigurationError`` when the
object is built (before the first request), and the message must begin with the name of the
setting to fix. Deny-by-default with routes that declare no policy is not an error: it is
a warning at start-up that names the routes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    BearerAuthenticator,
    BruteForceGuard,
    ConfigurationError,
    JWKSKeys,
    JWTKey,
    NetworkPolicy,
    SessionAuthenticator,
    StaticAPIKeys,
    StaticPasswords,
    protect,
)
from authguard.payments import Payment, Price, ReceiptVerifier
from authguard.payments.x402 import FacilitatorClient
from authguard.stores import MemoryNonceStore
from authguard.stores import redis as redis_stores
from helpers import uvicorn_server

GOOD_HS256 = "k" * 32
GOOD_PAYMENT = "p" * 32
PRICE = Price(Decimal("0.01"), "USD")
basic = BasicAuthenticator(verifier=StaticPasswords({}))


def receipts(**kw: Any) -> ReceiptVerifier:
    args: dict[str, Any] = {"secret": GOOD_PAYMENT, "nonces": MemoryNonceStore(),
                            "realm": "shop"}
    args.update(kw)
    return ReceiptVerifier(**args)


def bearer(**kw: Any) -> BearerAuthenticator:
    args: dict[str, Any] = {"key": JWTKey.hs256(GOOD_HS256), "audience": "api"}
    args.update(kw)
    return BearerAuthenticator(**args)


MISTAKES: list[tuple[str, Callable[[], object], str]] = [
    # JWT
    ("HS256 secret shorter than 32 bytes", lambda: JWTKey.hs256("x" * 31), "secret"),
    ("HS512 secret shorter than 64 bytes", lambda: JWTKey.hmac("x" * 63, "HS512"), "secret"),
    ("'none' as the HMAC algorithm", lambda: JWTKey.hmac(GOOD_HS256, "none"), "algorithm"),
    ("'NONE' in any case", lambda: JWTKey.hmac(GOOD_HS256, "NONE"), "algorithm"),
    ("'none' in the JWKS algorithm list",
     lambda: JWKSKeys("https://idp.example/jwks", algorithms=["RS256", "none"]), "algorithm"),
    ("a symmetric algorithm taken from a JWKS",
     lambda: JWKSKeys("https://idp.example/jwks", algorithms=["HS256"]), "algorithms"),
    ("an unsupported algorithm", lambda: JWTKey.hmac(GOOD_HS256, "HS1"), "algorithm"),
    ("JWKS URL that is not http(s)", lambda: JWKSKeys("file:///etc/jwks"), "url"),
    ("JWT authenticator without audience", lambda: bearer(audience=""), "audience"),
    ("JWT authenticator with an empty audience list", lambda: bearer(audience=[]),
     "audience"),
    ("both key and keys", lambda: bearer(keys=JWKSKeys("https://idp.example/j")), "key/keys"),
    ("a leeway of an hour", lambda: bearer(leeway=3600), "leeway"),
    ("a tiny token limit", lambda: bearer(max_token_bytes=10), "max_token_bytes"),
    ("a Bearer realm with CR/LF", lambda: bearer(realm="a\r\nb"), "realm"),
    # sessions
    ("a session key shorter than 32 bytes",
     lambda: SessionAuthenticator(secret_keys=["s" * 31]), "secret_keys[0]"),
    ("the second session key too short",
     lambda: SessionAuthenticator(secret_keys=["s" * 32, "short"]), "secret_keys[1]"),
    ("a single string instead of a list of keys",
     lambda: SessionAuthenticator(secret_keys="s" * 40), "secret_keys"),  # type: ignore[arg-type]
    ("a cookie name with a ';'",
     lambda: SessionAuthenticator(secret_keys=["s" * 32], cookie_name="a;b"), "cookie_name"),
    ("SameSite=None without Secure",
     lambda: SessionAuthenticator(secret_keys=["s" * 32], same_site="none", secure=False),
     "same_site"),
    ("an allowed origin with a path",
     lambda: SessionAuthenticator(secret_keys=["s" * 32],
                                  allowed_origins=["https://app.example/x"]), "allowed_origins"),
    # network and transport
    ("forwarded addresses without trusted proxies",
     lambda: NetworkPolicy(use_forwarded=True, allow=["10.0.0.0/8"]), "trusted_proxies"),
    ("a trusted proxy given by name",
     lambda: NetworkPolicy(trusted_proxies=["proxy.internal"]), "trusted_proxies"),
    ("an allow entry that is not a CIDR", lambda: NetworkPolicy(allow=["10.0.0.0/40"]),
     "allow"),
    # the guard
    ("no authenticator", lambda: AuthGuard(authenticators=[]), "authenticators"),
    ("one scheme twice", lambda: AuthGuard(authenticators=[basic, basic]), "authenticators"),
    ("a rule that is not a path", lambda: AuthGuard(authenticators=[basic],
                                                    rules={"admin": Authenticated()}), "rules"),
    ("a login URL to another site",
     lambda: AuthGuard(authenticators=[basic], login_url="https://evil.example/login"),
     "login_url"),
    ("a credentials limit too small to hold any",
     lambda: AuthGuard(authenticators=[basic], max_credentials_bytes=16),
     "max_credentials_bytes"),
    ("a brute-force limit of zero", lambda: BruteForceGuard(per_account=0), "per_account"),
    ("a client-and-account limit of zero", lambda: BruteForceGuard(per_pair=0), "per_pair"),
    ("a throttling delay that cannot grow",
     lambda: BruteForceGuard(base_delay=10, max_delay=5), "max_delay"),
    ("an API-key authenticator that looks nowhere",
     lambda: APIKeyAuthenticator(store=StaticAPIKeys({}), header=None),
     "header/query_param/cookie"),
    ("a Basic realm outside Latin-1",
     lambda: BasicAuthenticator(verifier=StaticPasswords({}), realm="日本"), "realm"),
    # payments
    ("a receipt secret shorter than 32 bytes", lambda: receipts(secret="p" * 31),
     "ReceiptVerifier.secret"),
    ("an old receipt secret too short, in a rotation list",
     lambda: receipts(secret=["short", GOOD_PAYMENT]), "ReceiptVerifier.secret"),
    ("an empty list of receipt secrets", lambda: receipts(secret=[]),
     "ReceiptVerifier.secret"),
    ("a receipt realm with CR/LF", lambda: receipts(realm="shop\r\nSet-Cookie: x=1"),
     "ReceiptVerifier.realm"),
    ("a payment method that is no token", lambda: receipts(method="Card Payment"),
     "ReceiptVerifier.method"),
    ("a payment intent with a quote", lambda: receipts(intent='charge"'),
     "ReceiptVerifier.intent"),
    ("challenges that expire at once", lambda: receipts(ttl=0), "ReceiptVerifier.ttl"),
    ("a credential header of another name",
     lambda: receipts(header="X-Payment"), "ReceiptVerifier.header"),  # type: ignore[arg-type]
    ("a Payment requirement without verifiers",
     lambda: Payment(PRICE, verifiers=[]), "Payment.verifiers"),
    ("a pay-per-request verifier without a price",
     lambda: Payment(verifiers=[receipts()]), "Payment.price"),
    ("a settlement time that does not exist",
     lambda: Payment(PRICE, verifiers=[receipts()], settle="after"),  # type: ignore[arg-type]
     "Payment.settle"),
    ("a price that is not a number", lambda: Price("ten"), "Price.amount"),  # type: ignore[arg-type]
    ("a negative price", lambda: Price(Decimal("-0.01")), "Price.amount"),
    ("an x402 facilitator that is not an http(s) URL",
     lambda: FacilitatorClient("ftp://facilitator.example"), "FacilitatorClient.url"),
    # Redis stores
    ("a Redis timeout of zero (a request could hang)",
     lambda: redis_stores.from_url("redis://127.0.0.1:1/0", timeout=0), "timeout"),
]


@pytest.mark.parametrize(("mistake", "make", "setting"), MISTAKES,
                         ids=[m[0] for m in MISTAKES])
def test_a_mistake_fails_at_construction_naming_the_setting(
    mistake: str, make: Callable[[], object], setting: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        make()
    message = str(info.value)
    assert message.startswith(setting + ":"), f"{mistake}: {message!r}"
    assert len(message) > len(setting) + 10, "the message says what is wrong"


def test_the_correct_settings_are_accepted() -> None:
    """The table above is not testing constructors that refuse everything."""
    JWTKey.hs256(GOOD_HS256)
    JWTKey.hmac("x" * 64, "HS512")
    bearer()
    bearer(audience=["api", "other"], leeway=30)
    SessionAuthenticator(secret_keys=["s" * 32, "t" * 40], same_site="none", secure=True,
                         allowed_origins=["https://app.example"])
    NetworkPolicy(use_forwarded=True, trusted_proxies=["10.0.0.1", "fd00::/8"])
    AuthGuard(authenticators=[basic], login_url="/login", max_credentials_bytes=256)
    Payment(PRICE, verifiers=[receipts(secret=["q" * 32, GOOD_PAYMENT], ttl=1)],
            settle="on_success")
    Price(0.1)
    FacilitatorClient("http://127.0.0.1:9/")


@pytest.mark.e2e
def test_the_example_app_refuses_to_start_with_a_weak_secret() -> None:
    with pytest.raises(RuntimeError) as info, uvicorn_server(
        "app:app", env={"AUTHGUARD_DEMO_JWT_SECRET": "too-short"}
    ):
        pass  # pragma: no cover - the server must not start
    assert "ConfigurationError: secret: an HS256 secret needs at least 32 bytes" in str(
        info.value)
    with pytest.raises(RuntimeError) as info, uvicorn_server(
        "app:app", env={"AUTHGUARD_DEMO_SESSION_SECRET": "also-too-short"}
    ):
        pass  # pragma: no cover
    assert "ConfigurationError: secret_keys[0]: a session key needs at least 32" in str(
        info.value)
    with pytest.raises(RuntimeError) as info, uvicorn_server(
        "app:app", env={"AUTHGUARD_DEMO_PAYMENT_SECRET": "weak-payment-secret"}
    ):
        pass  # pragma: no cover
    assert "ConfigurationError: ReceiptVerifier.secret: at least 32 bytes" in str(info.value)
    assert "weak-payment-secret" not in str(info.value)  # the message names, never echoes


async def test_deny_by_default_warns_at_start_up_naming_unprotected_routes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @protect(Authenticated())
    async def declared(request: Request) -> PlainTextResponse:  # pragma: no cover
        return PlainTextResponse("ok")

    async def forgotten(request: Request) -> PlainTextResponse:  # pragma: no cover
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[Route("/declared", declared), Route("/forgotten", forgotten)],
        middleware=[Middleware(AuthGuardMiddleware,
                               guard=AuthGuard(authenticators=[basic], deny_by_default=True))],
    )
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"} if not messages else {"type": "lifespan.shutdown"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    with caplog.at_level(logging.WARNING, logger="authguard"):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert messages[0]["type"] == "lifespan.startup.complete"
    (record,) = [r for r in caplog.records if "deny_by_default" in r.getMessage()]
    assert "/forgotten" in record.getMessage() and "/declared" not in record.getMessage()
