"""WebSockets under a real uvicorn, with a real client (the ``websockets`` package).

The same decision as for HTTP: a refused handshake gets the problem+json answer through
the ``websocket.http.response`` extension, or — where the server does not offer it — the
socket is closed before accept and the server answers 403.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from settings import load as load_settings  # the example app's settings (see conftest)
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from helpers import EXAMPLE_DIR, uvicorn_server

pytestmark = pytest.mark.e2e

WITHOUT_EXTENSION = f'''
import sys
sys.path.insert(0, {str(EXAMPLE_DIR)!r})
from app import app as inner


async def app(scope, receive, send):
    """The example app on a server that does not offer websocket.http.response."""
    if scope["type"] == "websocket":
        extensions = dict(scope.get("extensions") or {{}})
        extensions.pop("websocket.http.response", None)
        scope = {{**scope, "extensions": extensions}}
    await inner(scope, receive, send)
'''


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def refused(url: str, **kw: object) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, open_timeout=10, **kw):  # type: ignore[arg-type]
            pass
    return info.value


async def test_refused_handshake_is_a_problem(example_server: str) -> None:
    err = await refused(ws_url(example_server))
    response = err.response
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    body = json.loads(response.body)
    assert body["reason"] == "credentials_missing"
    assert body["instance"] == "/ws"
    schemes = {v.split(" ", 1)[0] for v in response.headers.get_all("WWW-Authenticate")}
    assert schemes >= {"Basic", "ApiKey"}  # one challenge per field line


async def test_bad_credentials_on_handshake(example_server: str) -> None:
    err = await refused(ws_url(example_server), additional_headers=basic("alice", "wrong"))
    assert err.response.status_code == 401
    assert json.loads(err.response.body)["reason"] == "credentials_invalid"
    err = await refused(ws_url(example_server),
                        additional_headers={"Authorization": "Basic !!!not-base64"})
    assert err.response.status_code == 401
    assert json.loads(err.response.body)["reason"] == "credentials_malformed"


@pytest.mark.parametrize("headers", [
    basic("alice", "wonderland"),
    {"X-API-Key": "demo-key-alice-0123456789"},
], ids=["basic", "api-key"])
async def test_socket_opens_and_greets_with_the_subject(example_server: str,
                                                        headers: dict[str, str]) -> None:
    async with connect(ws_url(example_server), additional_headers=headers,
                       open_timeout=10) as ws:
        assert await ws.recv() == "alice"
        await ws.send("ping")
        assert await ws.recv() == "ping"


async def test_application_subprotocol_is_kept(example_server: str) -> None:
    async with connect(ws_url(example_server), subprotocols=["chat.v1"],  # type: ignore[list-item]
                       additional_headers={"X-API-Key": "demo-key-bob-0123456789"},
                       open_timeout=10) as ws:
        assert ws.subprotocol == "chat.v1"
        assert await ws.recv() == "bob"


@pytest.fixture(scope="module")
def server_without_extension(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("noext")
    (folder / "noext_app.py").write_text(WITHOUT_EXTENSION)
    with uvicorn_server("noext_app:app", app_dir=folder) as url:
        yield url


async def test_without_the_extension_the_socket_is_closed_before_accept(
    server_without_extension: str,
) -> None:
    err = await refused(ws_url(server_without_extension))
    assert err.response.status_code == 403  # uvicorn's answer to a close before accept
    async with connect(ws_url(server_without_extension), open_timeout=10,
                       additional_headers=basic("bob", "builder")) as ws:
        assert await ws.recv() == "bob"


async def test_bearer_token_in_the_authorization_header(example_server: str) -> None:
    s = load_settings()
    now = int(time.time())
    token = jwt.encode({"sub": "carol", "iss": s.jwt_issuer, "aud": s.jwt_audience,
                        "iat": now, "nbf": now, "exp": now + 300, "scope": ""},
                       s.jwt_secret, algorithm="HS256")
    async with connect(ws_url(example_server), open_timeout=10,
                       additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert await ws.recv() == "carol"
    err = await refused(ws_url(example_server),
                        additional_headers={"Authorization": "Bearer not-a-jwt"})
    assert err.response.status_code == 401
    assert 'error="invalid_token"' in err.response.headers["WWW-Authenticate"]


async def test_bearer_token_in_a_subprotocol_for_browsers(example_server: str) -> None:
    """Browsers cannot set headers on a websocket: ``bearer.<token>`` as a subprotocol."""
    s = load_settings()
    now = int(time.time())
    token = jwt.encode({"sub": "alice", "iss": s.jwt_issuer, "aud": s.jwt_audience,
                        "iat": now, "exp": now + 300}, s.jwt_secret, algorithm="HS256")
    async with connect(ws_url(example_server), open_timeout=10,
                       subprotocols=["chat.v1", f"bearer.{token}"],  # type: ignore[list-item]
                       ) as ws:
        assert await ws.recv() == "alice"
        assert ws.subprotocol == "chat.v1"  # the credential is never echoed back
    err = await refused(ws_url(example_server),
                        subprotocols=["bearer.not-a-token"])
    assert err.response.status_code == 401
    assert json.loads(err.response.body)["reason"] == "credentials_malformed"
