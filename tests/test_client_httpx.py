"""httpx integration: ``raise_for_auth`` against the example app under uvicorn, and
``BearerAuth`` (one refresh, bounded waits on 429/503) sync and async."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from authguard.client import (
    AuthenticationRequired,
    AuthError,
    BearerAuth,
    Forbidden,
    InsufficientScope,
    InvalidAuthRequest,
    InvalidCredentials,
    PaymentProviderFailed,
    SessionExpired,
    StepUpRequired,
    TokenExpired,
    TokenNotYetValid,
    TooManyAttempts,
    araise_for_auth,
    raise_for_auth,
)
from authguard.client import errors as client_errors
from tokens import bearer, mint

# -- raise_for_auth against the example app ----------------------------------------------------


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


REFUSALS: list[tuple[str, str, Callable[[], dict[str, str]], type[AuthError], str]] = [
    ("missing", "/me", dict, AuthenticationRequired, "credentials_missing"),
    ("wrong-password", "/me", lambda: _basic("alice", "not-it"), InvalidCredentials,
     "credentials_invalid"),
    ("malformed", "/me", lambda: {"Authorization": "Basic %%%"}, InvalidCredentials,
     "credentials_malformed"),
    ("expired", "/me", lambda: bearer(mint(lifetime=-60)), TokenExpired, "token_expired"),
    ("not-yet", "/me", lambda: bearer(mint(nbf=2_000_000_000)), TokenNotYetValid,
     "token_not_yet_valid"),
    ("session", "/me", lambda: {"Cookie": "authguard_session=garbage"}, SessionExpired,
     "session_invalid"),
    ("step-up", "/step-up", lambda: bearer(mint()), StepUpRequired, "step_up_required"),
    ("scope", "/reports", lambda: bearer(mint()), InsufficientScope, "insufficient_scope"),
    ("role", "/admin", lambda: _basic("alice", "wonderland"), Forbidden, "forbidden"),
]


@pytest.mark.parametrize(("path", "headers", "cls", "reason"),
                         [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_raise_for_auth_as_an_event_hook(example_server: str, path: str,
                                         headers: Callable[[], dict[str, str]],
                                         cls: type[AuthError], reason: str) -> None:
    with httpx.Client(base_url=example_server,
                      event_hooks={"response": [raise_for_auth]}) as client:
        with pytest.raises(AuthError) as exc:
            client.get(path, headers=headers())
    assert type(exc.value) is cls
    assert exc.value.reason == reason
    assert exc.value.response is not None and exc.value.response.status_code == exc.value.status
    assert exc.value.hints


def test_raise_for_auth_lets_answers_through(example_server: str) -> None:
    with httpx.Client(base_url=example_server,
                      event_hooks={"response": [raise_for_auth]}) as client:
        assert client.get("/public").status_code == 200
        assert client.get("/me", headers=_basic("bob", "builder")).json()["subject"] == "bob"
        assert client.get("/no-such-page").status_code == 404


def test_raise_for_auth_on_a_token_sent_twice(example_server: str) -> None:
    token = mint()
    with httpx.Client(base_url=example_server) as client:
        r = client.get("/me", headers=[("Authorization", f"Bearer {token}")] * 2)
    with pytest.raises(InvalidAuthRequest):
        raise_for_auth(r)


async def test_araise_for_auth_in_an_async_client(example_server: str) -> None:
    async with httpx.AsyncClient(base_url=example_server,
                                 event_hooks={"response": [araise_for_auth]}) as client:
        with pytest.raises(InsufficientScope) as exc:
            await client.get("/reports", headers=bearer(mint(scope="profile")))
        assert exc.value.required_scopes == ("reports:read",)
        assert (await client.get("/public")).status_code == 200


async def test_raise_for_auth_refuses_an_unread_async_stream(example_server: str) -> None:
    async with httpx.AsyncClient(base_url=example_server) as client:
        async with client.stream("GET", "/me") as response:
            with pytest.raises(TypeError, match="araise_for_auth"):
                raise_for_auth(response)


def _answer(status: int, *, content_type: str = "application/problem+json",
            reason: str | None = None, headers: dict[str, str] | None = None,
            text: str = "") -> httpx.Response:
    content = json.dumps({"type": "about:blank", "title": "t", "status": status,
                          "reason": reason}).encode() if reason else text.encode()
    raw = [(k.encode(), v.encode()) for k, v in  # as the bytes a server sends (UTF-8 too)
           {"content-type": content_type, **(headers or {})}.items()]
    return httpx.Response(status, headers=raw, content=content,
                          request=httpx.Request("GET", "https://api.test/x"))


async def test_a_payment_provider_error_raises_payment_provider_failed() -> None:
    response = _answer(502, reason="payment_provider_error")
    with pytest.raises(PaymentProviderFailed) as exc:
        raise_for_auth(response)
    assert exc.value.reason == "payment_provider_error" and exc.value.status == 502
    with pytest.raises(PaymentProviderFailed):
        await araise_for_auth(_answer(502, reason="payment_provider_error"))
    # a 502 of a proxy is not about payment: it passes through
    raise_for_auth(_answer(502, content_type="text/html", text="<h1>Bad Gateway</h1>"))
    await araise_for_auth(_answer(502, content_type="text/plain", text="upstream down"))


def test_payment_provider_failed_is_exported_and_in_the_tree() -> None:
    assert "PaymentProviderFailed" in client_errors.__all__
    assert "PaymentProviderFailed" in (client_errors.__doc__ or "")
    assert issubclass(PaymentProviderFailed, AuthError)


@pytest.mark.parametrize("value", ["9" * 400, "9" * 5000, "\u00b2", "\u0663"])
def test_a_hostile_retry_after_never_breaks_raise_for_auth_or_bearer_auth(value: str) -> None:
    response = _answer(429, reason="too_many_attempts", headers={"retry-after": value})
    with pytest.raises(TooManyAttempts):
        raise_for_auth(response)
    busy = [httpx.Response(503, headers=[(b"retry-after", value.encode()), (
        b"content-type", b"application/problem+json")], content=b'{"reason": "auth_unavailable"}')]
    waits: list[float] = []
    with client(Server({"t"}, busy=busy), BearerAuth("t", sleep=waits.append)) as c:
        assert c.get("/x").status_code in (200, 503)
    assert all(w <= 30 for w in waits)


# -- BearerAuth: the flow, against a scripted server ---------------------------------------------


def problem(status: int, reason: str, *, challenge: str | None = None,
            retry_after: int | None = None) -> httpx.Response:
    headers = {"content-type": "application/problem+json"}
    if challenge:
        headers["www-authenticate"] = challenge
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return httpx.Response(status, headers=headers, content=json.dumps(
        {"type": "about:blank", "title": "t", "status": status, "reason": reason}).encode())


EXPIRED = 'Bearer realm="api", error="invalid_token", error_description="expired"'


class Server:
    """A scripted server: answers by the token it gets; records every token."""

    def __init__(self, valid: set[str], *, busy: list[httpx.Response] | None = None) -> None:
        self.valid = valid
        self.busy = busy or []  # answered first, in order, whatever the token
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.seen.append(token)
        if self.busy:
            return self.busy.pop(0)
        if token in self.valid:
            return httpx.Response(200, json={"token": token})
        return problem(401, "token_expired", challenge=EXPIRED)


class Refresher:
    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.tokens.pop(0)


def client(server: Server, auth: BearerAuth) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(server), auth=auth,
                        base_url="https://api.test")


def test_an_expired_token_is_refreshed_once_and_the_request_retried() -> None:
    server, refresh = Server({"new"}), Refresher("new")
    auth = BearerAuth("old", refresh=refresh)
    with client(server, auth) as c:
        r = c.get("/x")
        assert r.json() == {"token": "new"}
        assert c.get("/y").status_code == 200  # the new token is kept
    assert server.seen == ["old", "new", "new"] and refresh.calls == 1


def test_a_refresh_that_does_not_help_is_not_repeated() -> None:
    server, refresh = Server(set()), Refresher("still-bad", "never")
    with client(server, BearerAuth("old", refresh=refresh)) as c:
        r = c.get("/x")
    assert r.status_code == 401 and server.seen == ["old", "still-bad"]
    assert refresh.calls == 1


def test_no_token_asks_refresh_first() -> None:
    server, refresh = Server({"first"}), Refresher("first")
    with client(server, BearerAuth(refresh=refresh)) as c:
        assert c.get("/x").status_code == 200
    assert server.seen == ["first"] and refresh.calls == 1


def test_only_an_invalid_token_triggers_a_refresh() -> None:
    missing = problem(401, "credentials_missing", challenge='Bearer realm="api"')
    server, refresh = Server({"t"}, busy=[missing]), Refresher("new")
    with client(server, BearerAuth("t", refresh=refresh)) as c:
        assert c.get("/x").status_code == 401
    forbidden = problem(403, "insufficient_scope",
                        challenge='Bearer error="insufficient_scope", scope="a"')
    server = Server({"t"}, busy=[forbidden])
    with client(server, BearerAuth("t", refresh=refresh)) as c:
        assert c.get("/x").status_code == 403
    assert refresh.calls == 0


def test_without_refresh_the_401_is_returned() -> None:
    server = Server(set())
    with client(server, BearerAuth("old")) as c:
        assert c.get("/x").status_code == 401
    assert server.seen == ["old"]


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_a_bounded_number_of_times(status: int) -> None:
    reason = "too_many_attempts" if status == 429 else "auth_unavailable"
    waits: list[float] = []
    busy = [problem(status, reason, retry_after=3) for _ in range(5)]
    server = Server({"t"}, busy=busy)
    with client(server, BearerAuth("t", max_retries=2, sleep=waits.append)) as c:
        r = c.get("/x")
    assert r.status_code == status
    assert waits == [3.0, 3.0] and len(server.seen) == 3


def test_a_wait_then_success() -> None:
    waits: list[float] = []
    server = Server({"t"}, busy=[problem(503, "auth_unavailable", retry_after=1)])
    with client(server, BearerAuth("t", sleep=waits.append)) as c:
        assert c.get("/x").status_code == 200
    assert waits == [1.0]


def test_a_wait_longer_than_max_wait_returns_at_once() -> None:
    waits: list[float] = []
    server = Server({"t"}, busy=[problem(429, "too_many_attempts", retry_after=3600)])
    with client(server, BearerAuth("t", max_wait=30, sleep=waits.append)) as c:
        assert c.get("/x").status_code == 429
    assert waits == [] and len(server.seen) == 1
    server = Server({"t"}, busy=[problem(503, "auth_unavailable")])  # no Retry-After
    with client(server, BearerAuth("t", sleep=waits.append)) as c:
        assert c.get("/x").status_code == 503
    assert waits == []


def test_bad_configuration_and_bad_callbacks() -> None:
    with pytest.raises(ValueError, match="token or a refresh"):
        BearerAuth()
    with pytest.raises(ValueError, match="negative"):
        BearerAuth("t", max_retries=-1)
    with client(Server(set()), BearerAuth("old", refresh=lambda: 42)) as c,  \
            pytest.raises(TypeError, match="str"):
        c.get("/x")

    class Pending:  # an awaitable that is not a coroutine: nothing is left unawaited
        def __await__(self) -> Any:
            yield from ()
            return "new"

    with client(Server(set()), BearerAuth("old", refresh=Pending)) as c, \
            pytest.raises(TypeError, match="AsyncClient"):
        c.get("/x")

    async def coroutine_refresh() -> str:  # closed, not left unawaited (a warning: an error)
        return "new"

    with client(Server(set()), BearerAuth("old", refresh=coroutine_refresh)) as c, \
            pytest.raises(TypeError, match="AsyncClient"):
        c.get("/x")


async def test_async_refresh_and_async_sleep() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def refresh() -> str:
        return "new"

    server = Server({"new"}, busy=[problem(429, "too_many_attempts", retry_after=2)])
    auth = BearerAuth("old", refresh=refresh, async_sleep=sleep)
    async with httpx.AsyncClient(transport=httpx.MockTransport(server), auth=auth) as c:
        r = await c.get("https://api.test/x")
    assert r.status_code == 200 and waits == [2.0]
    assert server.seen == ["old", "old", "new"]


async def test_concurrent_failures_refresh_once() -> None:
    """Two requests fail with the same token; only the first to refresh calls back."""
    failed = asyncio.Event()
    calls = 0
    seen_old = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal seen_old
        token = request.headers["authorization"].removeprefix("Bearer ")
        if token == "new":
            return httpx.Response(200)
        seen_old += 1
        if seen_old == 2:
            failed.set()
        return problem(401, "token_expired", challenge=EXPIRED)

    async def refresh() -> str:
        nonlocal calls
        calls += 1
        await failed.wait()  # both requests have failed with the old token by now
        return "new"

    auth = BearerAuth("old", refresh=refresh)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as c:
        r1, r2 = await asyncio.gather(c.get("https://api.test/1"), c.get("https://api.test/2"))
    assert (r1.status_code, r2.status_code) == (200, 200)
    assert calls == 1


async def test_concurrent_first_requests_fetch_the_first_token_once() -> None:
    """Five requests start together without a token: one refresh, all five use its token."""
    calls = 0
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200)

    async def refresh() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)  # let the other requests reach the lock meanwhile
        return f"first-{calls}"

    auth = BearerAuth(None, refresh=refresh)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as c:
        answers = await asyncio.gather(*(c.get(f"https://api.test/{i}") for i in range(5)))
    assert [r.status_code for r in answers] == [200] * 5
    assert calls == 1
    assert seen == ["Bearer first-1"] * 5


def test_only_the_bodies_acted_on_are_read() -> None:
    """A streamed 200 (or 404) stays a stream; a 401 that may need a refresh is read."""
    def handler(request: httpx.Request) -> httpx.Response:
        status = int(request.url.path.strip("/"))
        return httpx.Response(status, stream=httpx.ByteStream(b"body"))

    with httpx.Client(transport=httpx.MockTransport(handler), auth=BearerAuth("t")) as c:
        for status, read in ((200, False), (404, False), (401, True), (429, True)):
            with c.stream("GET", f"https://api.test/{status}") as r:
                assert r.is_stream_consumed is read, status


# -- BearerAuth against the example app under uvicorn -------------------------------------------

def test_bearer_auth_refreshes_an_expired_token_end_to_end(example_server: str) -> None:
    fresh: list[str] = []

    def refresh() -> str:
        fresh.append(token := mint("alice"))
        return token

    auth = BearerAuth(mint("alice", lifetime=-60), refresh=refresh)
    with httpx.Client(base_url=example_server, auth=auth) as c:
        r = c.get("/me")
    assert r.status_code == 200 and r.json()["subject"] == "alice"
    assert len(fresh) == 1 and auth.token == fresh[0]


async def test_bearer_auth_refreshes_end_to_end_async(example_server: str) -> None:
    async def refresh() -> str:
        return mint("bob", scope="reports:read")

    auth = BearerAuth(mint("bob", lifetime=-60), refresh=refresh)
    async with httpx.AsyncClient(base_url=example_server, auth=auth) as c:
        r = await c.get("/reports")
    assert r.status_code == 200


def test_bearer_auth_passes_good_tokens_end_to_end(example_server: str) -> None:
    auth = BearerAuth(mint("alice"))
    with httpx.Client(base_url=example_server, auth=auth) as c:
        r = c.get("/me")
    assert r.json()["scheme"] == "Bearer"
