"""BasicAuth and APIKeyAuth (httpx): against the example app under uvicorn, and the retry
rules on a scripted transport."""

from __future__ import annotations

import httpx
import pytest

from authguard.client import APIKeyAuth, BasicAuth, Forbidden, InvalidCredentials


@pytest.mark.e2e
def test_basic_and_api_key_against_the_example_app(example_server: str) -> None:
    with httpx.Client(base_url=example_server) as c:
        assert c.get("/me", auth=BasicAuth("alice", "wonderland")).json()["scheme"] == "Basic"
        key = APIKeyAuth("demo-key-bob-0123456789")
        assert c.get("/admin", auth=key).json()["subject"] == "bob"
        assert c.get("/me", auth=BasicAuth("nobody", "x")).status_code == 401
        with pytest.raises(InvalidCredentials):
            c.get("/me", auth=BasicAuth("nobody", "x", raise_errors=True))
        with pytest.raises(Forbidden) as exc:
            c.get("/admin", auth=BasicAuth("alice", "wonderland", raise_errors=True))
        assert exc.value.problem.required_roles == ("admin",)


def _scripted(statuses: list[int], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = statuses.pop(0)
        if status == 200:
            return httpx.Response(200, json={"ok": True})
        reason = {429: "too_many_attempts", 401: "credentials_invalid"}[status]
        return httpx.Response(status, headers={"Retry-After": "2", "Content-Type":
                                               "application/problem+json"},
                              json={"type": "x", "title": "t", "status": status,
                                    "reason": reason, "retry_after": 2})
    return httpx.MockTransport(handle)


def test_429_is_waited_on_and_401_never_retried() -> None:
    seen: list[httpx.Request] = []
    slept: list[float] = []
    auth = APIKeyAuth("k", header="X-Key", sleep=slept.append)
    with httpx.Client(transport=_scripted([429, 200], seen)) as c:
        assert c.get("http://t/", auth=auth).status_code == 200
    assert slept == [2] and [r.headers["X-Key"] for r in seen] == ["k", "k"]
    seen.clear()
    with httpx.Client(transport=_scripted([401], seen)) as c:
        assert c.get("http://t/", auth=BasicAuth("a", "b", sleep=slept.append)).status_code == 401
    assert len(seen) == 1
    seen.clear()
    with httpx.Client(transport=_scripted([429], seen)) as c:  # a wait too long: returned
        r = c.get("http://t/", auth=BasicAuth("a", "b", max_wait=1, sleep=slept.append))
        assert r.status_code == 429 and len(seen) == 1


async def test_async_client_and_header() -> None:
    seen: list[httpx.Request] = []
    slept: list[float] = []

    async def asleep(seconds: float) -> None:
        slept.append(seconds)

    auth = BasicAuth("alice", "wönderland", async_sleep=asleep)
    async with httpx.AsyncClient(transport=_scripted([429, 200], seen)) as c:
        assert (await c.get("http://t/", auth=auth)).status_code == 200
    assert slept == [2]
    assert seen[0].headers["Authorization"] == "Basic YWxpY2U6d8O2bmRlcmxhbmQ="  # UTF-8
    with pytest.raises(ValueError, match="RFC 7617"):
        BasicAuth("a:b", "c")
