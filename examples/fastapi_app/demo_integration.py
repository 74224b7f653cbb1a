"""The example app's framework integration: OpenAPI, the websocket route.

``setup(app, guard)`` is called once from ``app.py``:

* :func:`authguard.fastapi.install` declares the security schemes and the documented
  401/402/403 answers in ``/openapi.json`` (Swagger UI's *Authorize* button uses them),
  and makes FastAPI's documentation routes public;
* ``WS /ws`` needs any identity; once open, the server sends the subject name first and
  then echoes text messages.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, WebSocket, WebSocketDisconnect

from authguard import Authenticated, AuthGuard, Identity, protect
from authguard.fastapi import install

router = APIRouter()

# Subprotocols that carry credentials (a browser cannot set headers on a websocket); the
# server never echoes them back as the selected subprotocol.
_CREDENTIAL_PREFIXES = ("bearer", "authorization", "access_token", "base64url.bearer")


@router.websocket("/ws")
@protect(Authenticated())
async def ws(websocket: WebSocket) -> None:
    """Any identity; the first message is the subject name, then text is echoed."""
    offered = websocket.scope.get("subprotocols", [])
    chosen = next((p for p in offered if not p.lower().startswith(_CREDENTIAL_PREFIXES)),
                  None)
    await websocket.accept(subprotocol=chosen)
    user = websocket.scope["user"]
    assert isinstance(user, Identity)  # noqa: S101 - the middleware guarantees it
    await websocket.send_text(user.subject)
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        return


def setup(app: FastAPI, guard: AuthGuard) -> None:
    """Wire OpenAPI and the websocket route into the example app."""
    app.include_router(router)
    install(app, guard)
