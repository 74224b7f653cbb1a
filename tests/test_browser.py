"""In a real browser (Debian chromium driven by playwright) against the example app.

* CORS: a page served from another origin on loopback calls ``fetch()`` on the example app
  without credentials and reads ``reason`` from the 401 body (and the exposed
  ``WWW-Authenticate`` header); with an API key (a preflighted request) it gets through.
* Swagger UI: the *Authorize* button, fed with Basic credentials, makes "Try it out" on
  ``GET /me`` answer 200 — the security schemes that authguard declares work.

No network beyond loopback: Swagger UI's assets, which FastAPI loads from a CDN, are served
from the copy shipped in the ``swagger-ui-py`` package.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from helpers import free_port, need, uvicorn_server

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>another origin</title></head>
<body><p>A page on another origin that calls the example app.</p></body></html>
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def page_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tiny static server on another loopback port: the foreign origin."""
    folder: Path = tmp_path_factory.mktemp("origin")
    (folder / "index.html").write_text(PAGE)
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port),
                                 partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def app_url(page_origin: str) -> Iterator[str]:
    env = {"AUTHGUARD_DEMO_CORS_ORIGIN": page_origin, "AUTHGUARD_DEMO_FAILURE_LIMIT": "1000"}
    with uvicorn_server("app:app", env=env) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need("chromium", "the browser tests drive Debian chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


FETCH = """async ([url, headers]) => {
  const r = await fetch(url, {headers, credentials: "omit"});
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  return {status: r.status, body, challenge: r.headers.get("WWW-Authenticate"),
          type: r.headers.get("Content-Type")};
}"""


def test_cross_origin_fetch_reads_the_reason(browser: Any, page_origin: str,
                                             app_url: str) -> None:
    page = browser.new_page()
    try:
        page.goto(page_origin + "/index.html")
        assert page.evaluate("() => location.origin") == page_origin
        anonymous = page.evaluate(FETCH, [app_url + "/me", {}])
        assert anonymous["status"] == 401
        assert anonymous["type"].startswith("application/problem+json")
        assert anonymous["body"]["reason"] == "credentials_missing"
        assert anonymous["challenge"], "WWW-Authenticate is exposed to the page"
        # a custom header makes the browser send a preflight first; it must pass
        keyed = page.evaluate(FETCH, [app_url + "/me",
                                      {"X-API-Key": "demo-key-alice-0123456789"}])
        assert keyed["status"] == 200
        assert keyed["body"]["subject"] == "alice"
        bad = page.evaluate(FETCH, [app_url + "/me", {"X-API-Key": "wrong-key"}])
        assert bad["status"] == 401
        assert bad["body"]["reason"] == "credentials_invalid"
        forbidden = page.evaluate(FETCH, [app_url + "/admin",
                                          {"X-API-Key": "demo-key-alice-0123456789"}])
        assert forbidden["status"] == 403
        assert forbidden["body"]["reason"] == "forbidden"
    finally:
        page.close()


def test_a_disallowed_origin_cannot_read_the_refusal(browser: Any, app_url: str) -> None:
    """Same app, a page on an origin CORS does not allow: fetch() fails as it should."""
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        outcome = page.evaluate("""async (url) => {
          try { await fetch(url); return "read"; } catch (e) { return "blocked"; }
        }""", app_url + "/me")
        assert outcome == "blocked"
    finally:
        page.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _serve_swagger_assets(page: Any) -> None:
    import swagger_ui

    static = Path(swagger_ui.__file__).parent / "static"

    def handle(route: Any) -> None:
        name = route.request.url.rsplit("/", 1)[-1]
        path = static / name
        if name in ("swagger-ui-bundle.js", "swagger-ui.css") and path.is_file():
            ctype = "text/css" if name.endswith(".css") else "application/javascript"
            route.fulfill(status=200, body=path.read_bytes(), content_type=ctype)
        else:
            route.abort()

    # Everything not on loopback is answered locally or refused: no network in tests.
    page.route(lambda url: not url.startswith("http://127.0.0.1"), handle)


def test_swagger_ui_authorize_button(browser: Any, app_url: str) -> None:
    page = browser.new_page()
    try:
        _serve_swagger_assets(page)
        page.goto(app_url + "/docs")
        page.get_by_role("button", name="Authorize").first.click()
        dialog = page.locator(".modal-ux")
        dialog.wait_for()
        # one section per declared scheme: Basic (http, basic) and ApiKey (apiKey, header)
        text = dialog.inner_text()
        assert "Basic" in text and "ApiKey" in text and "X-API-Key" in text
        basic = dialog.locator(".auth-container").filter(has_text="(http, Basic)")
        basic.locator("input#auth-basic-username").fill("alice")
        basic.locator("input#auth-basic-password").fill("wonderland")
        basic.locator("button.authorize").click()
        basic.get_by_role("button", name="Remove authorization").wait_for()  # accepted
        basic.locator("button.btn-done").click()

        op = page.locator("#operations-default-me_me_get")
        op.locator(".opblock-summary").click()
        op.get_by_role("button", name="Try it out").click()
        op.get_by_role("button", name="Execute").click()
        status = op.locator(".live-responses-table .response .response-col_status").first
        status.wait_for()
        assert status.inner_text().strip() == "200"
        body = op.locator(".live-responses-table .response-col_description pre").first
        assert '"subject": "alice"' in body.inner_text()
        # the documented refusals are visible for the operation too
        assert op.locator("tr.response[data-code='401']").count() == 1
    finally:
        page.close()


def test_navigation_to_a_protected_page_lands_on_the_login_page(browser: Any,
                                                                 app_url: str) -> None:
    page = browser.new_page()
    try:
        seen: list[int] = []
        page.on("response", lambda r: seen.append(r.status) if "/account" in r.url else None)
        page.goto(app_url + "/account")
        assert seen[:1] == [303]
        assert page.url == app_url + "/login?next=/account"
    finally:
        page.close()


def test_sign_in_through_the_login_form_and_out_again(browser: Any, app_url: str,
                                                       page_origin: str) -> None:
    """The whole browser flow: 303 to the form, sign in, back on the page, cookie HttpOnly;
    a cross-site form post cannot use the cookie."""
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(app_url + "/account")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "wrong")
        page.click("button[type=submit]")
        page.wait_for_selector("#error:has-text('The user name or password is wrong')")
        assert "credentials_invalid" not in page.inner_text("#error")
        page.fill("input[name=password]", "wonderland")
        page.click("button[type=submit]")
        page.wait_for_url(app_url + "/account")
        assert "Signed in as alice" in page.inner_text("body")
        cookie = next(c for c in context.cookies() if c["name"] == "authguard_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert page.evaluate("document.cookie") == ""  # scripts cannot read it
        # Another site's form posts to /logout: the session cookie must not act for alice
        # (SameSite keeps it home, and were it sent, Origin would be rejected).
        other = page_origin.replace("127.0.0.1", "localhost") + "/index.html"
        page.goto(other)
        with page.expect_response(app_url + "/logout") as info:
            page.evaluate("""(target) => {
                const form = document.createElement('form');
                form.method = 'POST'; form.action = target;
                document.body.appendChild(form); form.submit();
            }""", app_url + "/logout")
        assert info.value.status in (401, 403)
        page.wait_for_url(app_url + "/logout")
        page.goto(app_url + "/account")
        assert "Signed in as alice" in page.inner_text("body")
        # The page's own "Sign out" button posts /logout (same origin): the session ends.
        with page.expect_response(app_url + "/logout") as out:
            page.click("button#logout")
        assert out.value.status == 200
        page.wait_for_url(app_url + "/login")
        page.goto(app_url + "/account")
        assert page.url.startswith(app_url + "/login")
    finally:
        context.close()


def test_swagger_ui_authorize_runs_the_password_flow(browser: Any, app_url: str) -> None:
    """Authorize → OAuth2 (password): Swagger UI posts to POST /token, then calls
    GET /reports with the token it got."""
    page = browser.new_page()
    try:
        _serve_swagger_assets(page)
        page.goto(app_url + "/docs")
        page.get_by_role("button", name="Authorize").first.click()
        dialog = page.locator(".modal-ux")
        dialog.wait_for()
        flow = dialog.locator(".auth-container").filter(has_text="OAuth2")
        flow.locator("input#oauth_username").fill("alice")
        flow.locator("input#oauth_password").fill("wonderland")
        # the scope's checkbox is drawn by its label
        flow.locator("label[for='reports:read-password-checkbox-OAuth2']").click()
        with page.expect_response(lambda r: r.url.endswith("/token")) as token_response:
            flow.locator("button.authorize").click()
        assert token_response.value.status == 200
        dialog.get_by_text("Authorized").first.wait_for()
        dialog.locator("button.close-modal").first.click()

        op = page.locator("#operations-default-reports_reports_get")
        op.locator(".opblock-summary").click()
        op.get_by_role("button", name="Try it out").click()
        op.get_by_role("button", name="Execute").click()
        status = op.locator(".live-responses-table .response .response-col_status").first
        status.wait_for()
        assert status.inner_text().strip() == "200"
        body = op.locator(".live-responses-table .response-col_description pre").first
        assert '"subject": "alice"' in body.inner_text()
    finally:
        page.close()
