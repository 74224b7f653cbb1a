"""The example app's ``GET /``: an index of the routes, HTML for browsers, JSON else."""

from __future__ import annotations

import pytest

from helpers import http_client

pytestmark = pytest.mark.e2e


def test_index_answers_json_and_html(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.get("/")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        routes = {e["route"]: e for e in r.json()["routes"]}
        assert {"GET /me", "POST /token", "GET /reports"} <= set(routes)
        assert routes["GET /me"]["try"] == f"curl -i -u alice:PASSWORD {example_server}/me"
        assert "wonderland" not in r.text and "README" in r.json()["credentials"]
        r = c.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
        assert r.headers["content-type"].startswith("text/html")
        assert "<table>" in r.text and "POST /token" in r.text
