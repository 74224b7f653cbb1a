"""The examples that the docs include are real, working modules."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

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


async def test_the_dpop_example_behaves_as_documented() -> None:
    import jwt

    from authguard.client import DPoPAuth, DPoPKey, InvalidDPoPProof

    module = load("dpop_app")
    key = DPoPKey.generate()
    token = jwt.encode({"sub": "ann", "iss": "https://issuer.example", "aud": "my-api",
                        "exp": 2_000_000_000, "scope": "reports:read",
                        "cnf": {"jkt": key.jkt}}, module.SECRET, algorithm="HS256")
    plain = jwt.encode({"sub": "ann", "iss": "https://issuer.example", "aud": "my-api",
                        "exp": 2_000_000_000, "scope": "reports:read"}, module.SECRET,
                       algorithm="HS256")
    base = "https://api.example.com"
    async with asgi_client(module.app, base_url=base) as c:
        r = await c.get("/reports", auth=DPoPAuth(token, key))  # one nonce round trip
        assert r.json() == {"subject": "ann", "scheme": "DPoP"}
        r = await c.get("/reports", headers={"Authorization": f"Bearer {plain}"})
        assert r.json()["scheme"] == "Bearer"
        r = await c.get("/payouts", headers={"Authorization": f"Bearer {plain}"})
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("DPoP ")
        assert (await c.get("/payouts", auth=DPoPAuth(token, key))).status_code == 200
    async with asgi_client(module.app, base_url="http://elsewhere.test") as c:
        # a proof for another origin than the configured one: htu fails (before the nonce)
        with pytest.raises(InvalidDPoPProof) as err:
            await c.get("/reports", auth=DPoPAuth(token, key))
        assert err.value.check == "htu"


async def test_fastapi_quickstart_behaves_as_documented() -> None:
    from authguard.testing import TokenFactory

    module = load("quickstart_fastapi")
    bob = base64.b64encode(b"bob:builder").decode()
    bearer = module.guard.authenticators[2]
    token = TokenFactory(bearer).token("carol", scopes=["reports:read"])
    async with asgi_client(module.app) as c:
        assert (await c.get("/")).status_code == 200
        r = await c.get("/me")
        assert r.status_code == 401
        assert r.json()["schemes"] == ["Basic", "ApiKey", "Bearer"]
        r = await c.get("/me", headers={"X-API-Key": "key-for-alice-0123456789"})
        assert r.json() == {"subject": "alice", "scheme": "ApiKey"}
        assert (await c.get("/admin", headers={"Authorization": f"Basic {bob}"})).json() == {
            "admin": "bob"}
        r = await c.get("/reports", headers={"Authorization": f"Basic {bob}"})
        assert (r.status_code, r.json()["reason"]) == (403, "insufficient_scope")
        r = await c.get("/reports", headers={"Authorization": f"Bearer {token}"})
        assert r.json() == {"reports": ["q1", "q2"]}
        doc = (await c.get("/openapi.json")).json()
    assert doc["paths"]["/reports"]["get"]["security"] == [{"Bearer": ["reports:read"]}]
