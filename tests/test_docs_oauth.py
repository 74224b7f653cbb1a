"""The example of docs/oauth-resource-server.md behaves as the page says."""

from __future__ import annotations

import pytest

from authguard import parse_www_authenticate
from helpers import asgi_client
from oauth_issuer import LoopbackIssuer
from test_docs_examples import load


async def test_oauth_resource_server_example(monkeypatch: pytest.MonkeyPatch) -> None:
    with LoopbackIssuer() as issuer:
        resource = "https://api.example.com/mcp"
        monkeypatch.setenv("API_ISSUER", issuer.issuer)
        monkeypatch.setenv("API_RESOURCE", resource)
        app = load("oauth_resource_server").app
        metadata_url = "https://api.example.com/.well-known/oauth-protected-resource/mcp"
        async with asgi_client(app) as client:
            refused = await client.get("/mcp/notes")
            assert refused.status_code == 401
            (challenge,) = parse_www_authenticate(refused.headers["www-authenticate"])
            assert challenge.params["resource_metadata"] == metadata_url
            assert challenge.params["scope"] == "notes:read"
            document = (await client.get("/.well-known/oauth-protected-resource/mcp")).json()
            assert document["resource"] == resource
            assert document["authorization_servers"] == [issuer.issuer]

            token = issuer.sign(issuer.claims(resource, scope="notes:read"))
            auth = {"Authorization": f"Bearer {token}"}
            assert (await client.get("/mcp/notes", headers=auth)).status_code == 200
            step_up = await client.post("/mcp/notes", headers=auth)
            assert step_up.status_code == 403
            (challenge,) = parse_www_authenticate(step_up.headers["www-authenticate"])
            assert challenge.params["error"] == "insufficient_scope"
            assert challenge.params["scope"] == "notes:write"
            assert challenge.params["resource_metadata"] == metadata_url

            other = issuer.sign(issuer.claims("https://other.example.com/api"))
            wrong = await client.get("/mcp/notes", headers={"Authorization": f"Bearer {other}"})
            assert wrong.status_code == 401
