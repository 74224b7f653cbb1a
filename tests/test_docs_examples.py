"""The examples that the docs include are real, working modules."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path
from types import ModuleType

from helpers import asgi_client

DOCS = Path(__file__).resolve().parent.parent / "docs"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DOCS / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_quickstart_behaves_as_documented() -> None:
    app = load("quickstart").app
    alice = base64.b64encode(b"alice:wonderland").decode()
    async with asgi_client(app) as c:
        assert (await c.get("/")).status_code == 200
        r = await c.get("/me")
        assert r.status_code == 401
        assert r.json()["schemes"] == ["Basic", "ApiKey"]
        assert (await c.get("/me", headers={"Authorization": f"Basic {alice}"})).json() == {
            "subject": "alice"}
        r = await c.get("/admin", headers={"Authorization": f"Basic {alice}"})
        assert r.status_code == 403
        r = await c.get("/me", headers={"X-API-Key": "key-for-alice-0123456789"})
        assert r.status_code == 200
