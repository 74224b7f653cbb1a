"""The integration examples that the docs include behave as the docs say."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import ModuleType

import pytest

from helpers import asgi_client

DOCS = Path(__file__).resolve().parent.parent / "docs"
ALICE = {"X-API-Key": "key-alice-0123456789"}
BOB = {"X-API-Key": "key-bob-0123456789"}


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_starlette_example(caplog: pytest.LogCaptureFixture) -> None:
    app = load("starlette_policies").app
    with caplog.at_level(logging.WARNING, logger="authguard"):
        async with asgi_client(app) as c:
            assert (await c.get("/")).status_code == 200
            assert (await c.get("/me", headers=ALICE)).json() == {"subject": "alice"}
            assert (await c.get("/users/alice/notes", headers=ALICE)).status_code == 200
            assert (await c.get("/users/bob/notes", headers=ALICE)).status_code == 404
            assert (await c.get("/users/alice/notes", headers=BOB)).status_code == 200
            assert (await c.get("/admin/panel", headers=ALICE)).status_code == 403
            assert (await c.get("/reports/monthly", headers=ALICE)).status_code == 403
            assert (await c.get("/reports/monthly", headers=BOB)).status_code == 200
            r = await c.get("/me", headers={"Accept": "text/html"})
            assert r.status_code == 303 and r.headers["location"] == "/login?next=/me"
            r = await c.get("/me", headers={"Origin": "https://app.example"})
            assert r.status_code == 401
            assert r.headers["access-control-allow-origin"] == "https://app.example"
    # every route declares a policy or is covered by a rule: no start-up warning
    assert not [r for r in caplog.records if "deny_by_default" in r.getMessage()]


async def test_fastapi_example() -> None:
    app = load("fastapi_integration").app
    async with asgi_client(app) as c:
        assert (await c.get("/")).status_code == 200
        assert (await c.get("/me")).status_code == 401
        assert (await c.get("/me", headers=ALICE)).json() == {"subject": "alice"}
        assert (await c.get("/greeting")).json() == {"greeting": "hello stranger"}
        assert (await c.get("/greeting", headers=BOB)).json() == {"greeting": "hello bob"}
        assert (await c.get("/reports", headers=ALICE)).json() == {"reader": "alice"}
        r = await c.get("/reports", headers=BOB)
        assert r.status_code == 403 and r.json()["reason"] == "insufficient_scope"
        assert (await c.get("/admin/stats", headers=ALICE)).status_code == 403
        assert (await c.get("/admin/stats", headers=BOB)).json() == {"users": 2}
        doc = (await c.get("/openapi.json")).json()
        assert doc["paths"]["/reports"]["get"]["security"] == [{"ApiKey": []}]
        assert "403" in doc["paths"]["/admin/stats"]["get"]["responses"]


async def test_cookbook_example() -> None:
    cookbook = load("cookbook")
    async with asgi_client(cookbook.app) as c:
        for path, who, status in cookbook.EXPECTED:
            headers = {"X-API-Key": f"key-{who}-0123456789"} if who else {}
            r = await c.get(path, headers=headers)
            assert r.status_code == status, (path, who, r.text)
