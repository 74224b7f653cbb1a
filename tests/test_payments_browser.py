"""402 in a real browser (Debian chromium driven by playwright): a page on another origin
reads the 402's problem body and its exposed payment headers with ``fetch()``, and pays
with the ``getPaid`` function of docs/payments.md, run as it is printed there."""

from __future__ import annotations

import base64
import json
import re
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from helpers import ROOT, free_port, need, uvicorn_server

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
GUIDE = ROOT / "docs" / "payments.md"


def documented_get_paid() -> str:
    """The ``getPaid`` function exactly as the payments guide shows it."""
    found = re.search(r"^async function getPaid\(.*?^}$", GUIDE.read_text(), re.S | re.M)
    assert found, "docs/payments.md shows async function getPaid(api, path)"
    return found.group(0)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("shop")
    (folder / "index.html").write_text("<!doctype html><title>shop</title><p>another origin")
    server = ThreadingHTTPServer(("127.0.0.1", free_port()),
                                 partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def api(origin: str) -> Iterator[str]:
    with uvicorn_server("app:app", env={"AUTHGUARD_DEMO_CORS_ORIGIN": origin}) as url:
        yield url


@pytest.fixture(scope="module")
def page(origin: str) -> Iterator[Any]:
    need("chromium", "the browser tests drive Debian chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                    args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page()
            tab.goto(origin + "/index.html")
            yield tab
        finally:
            browser.close()


def test_a_cross_origin_page_reads_the_402(page: Any, api: str) -> None:
    seen = page.evaluate("""async (url) => {
      const r = await fetch(url);
      return {status: r.status, type: r.headers.get("Content-Type"), body: await r.json(),
              challenge: r.headers.get("WWW-Authenticate"),
              required: r.headers.get("PAYMENT-REQUIRED"),
              cache: r.headers.get("Cache-Control")};
    }""", api + "/paid/quote")
    assert seen["status"] == 402
    assert seen["type"].startswith("application/problem+json")
    assert seen["body"]["reason"] == "payment_required"
    assert [o["scheme"] for o in seen["body"]["payment"]["offers"]] == ["Payment", "x402"]
    assert seen["challenge"].startswith("Payment id=")
    assert json.loads(base64.b64decode(seen["required"]))["x402Version"] == 2
    assert seen["cache"] == "no-store"


def test_the_documented_fetch_client_pays_once(page: Any, api: str) -> None:
    run = ("async ([api]) => {\n" + documented_get_paid() + """
      const r = await getPaid(api, "/paid/quote");
      return {status: r.status, body: await r.json(),
              receipt: r.headers.get("Payment-Receipt")};
    }""")
    result = page.evaluate(run, [api])
    assert result["status"] == 200, result
    assert result["body"]["symbol"] == "AGRD"
    receipt = result["receipt"]
    assert receipt, "Payment-Receipt is exposed to the page on the paid response"
    decoded = json.loads(base64.urlsafe_b64decode(receipt + "=" * (-len(receipt) % 4)))
    assert decoded["status"] == "success"
