"""The example app's framework integration: OpenAPI, the websocket route.

``setup(app, guard)`` is called once from ``app.py``:

* :func:`authguard.fastapi.install` declares the security schemes and the documented
  401/402/403 answers in ``/openapi.json`` (Swagger UI's *Authorize* button uses them),
  and makes FastAPI's documentation routes public;
* ``WS /ws`` needs any identity; once open, the server sends the subject name first and
  then echoes text messages;
* ``GET /account`` is an HTML page for a signed-in user: a browser without a session is
  sent with 303 to ``/login?next=/account``, an API client gets the 401 problem.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse

from authguard import Authenticated, AuthGuard, Identity, Policy, protect
from authguard.fastapi import install

# Subprotocols that carry credentials (a browser cannot set headers on a websocket); the
# server never echoes them back as the selected subprotocol.
_CREDENTIAL_PREFIXES = ("bearer", "authorization", "access_token", "base64url.bearer")


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


async def account(request: Request) -> HTMLResponse:
    """The account page (HTML): who is signed in."""
    user = request.user
    assert isinstance(user, Identity)  # noqa: S101 - the middleware guarantees it
    name = escape(user.subject)
    # The logout button posts from this page (same origin: allowed for the cookie).
    return HTMLResponse(
        f"<!doctype html><title>Account</title><h1>Account</h1>"
        f"<p>Signed in as <strong>{name}</strong>.</p>"
        "<button id=logout type=button>Sign out</button>"
        "<script>document.getElementById('logout').addEventListener('click', async () => {"
        "await fetch('/logout', {method: 'POST'}); window.location.assign('/login');"
        "});</script>")


def setup(app: FastAPI, guard: AuthGuard) -> None:
    """Wire OpenAPI, the websocket route and the account page into the example app."""
    # The account page wants the session; until a cookie scheme is configured, any scheme.
    schemes = ("Cookie",) if guard.authenticator("Cookie") is not None else ()
    page = protect(Policy(Authenticated(*schemes), login_url="/login"))(account)
    router = APIRouter()
    router.add_api_websocket_route("/ws", ws)
    router.add_api_route("/account", page, methods=["GET"], response_class=HTMLResponse)
    app.include_router(router)
    install(app, guard)
