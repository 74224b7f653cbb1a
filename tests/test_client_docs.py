"""The client guide and the troubleshooting page: their code runs against the example app,
the published JSON Schema is the shipped one, every reason and common cause is covered."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from authguard import Reason
from authguard.client import Problem
from helpers import ROOT
from tokens import mint

DOCS = ROOT / "docs"
CLIENT = (DOCS / "client.md").read_text(encoding="utf-8")
TROUBLE = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")


def python_blocks(markdown: str) -> list[str]:
    """The page's code examples (not the signatures of its generated API reference)."""
    prose = re.sub(r"<!-- reference: .*?<!-- /reference -->", "", markdown, flags=re.DOTALL)
    return re.findall(r"```python\n(.*?)```", prose, flags=re.DOTALL)


def test_published_schema_is_the_shipped_one() -> None:
    shipped = ROOT / "src" / "authguard" / "schema" / "problem.schema.json"
    published = DOCS / "schema" / "problem.schema.json"
    assert published.read_bytes() == shipped.read_bytes(), (
        "copy src/authguard/schema/problem.schema.json to docs/schema/")
    assert "](schema/problem.schema.json)" in CLIENT


def _namespace(base_url: str, refreshed: list[str]) -> dict[str, Any]:
    def sign_in_again() -> str:
        refreshed.append(token := mint("alice"))
        return token

    return {"BASE_URL": base_url, "expired_token": mint("alice", lifetime=-60),
            "sign_in_again": sign_in_again}


def test_client_guide_code_runs_against_the_example_app(example_server: str) -> None:
    blocks = [b for b in python_blocks(CLIENT) if "BearerAuth(" not in b]
    assert len(blocks) >= 3
    namespace = _namespace(example_server, [])
    for block in blocks:
        exec(compile(block, "docs/client.md", "exec"), namespace)  # noqa: S102
    assert isinstance(namespace["problem"], Problem)


def test_client_guide_bearer_refresh_runs_against_the_example_app(example_server: str) -> None:
    [block] = [b for b in python_blocks(CLIENT) if "BearerAuth(" in b]
    refreshed: list[str] = []
    namespace = _namespace(example_server, refreshed)
    exec(compile(block, "docs/client.md", "exec"), namespace)  # noqa: S102
    assert len(refreshed) == 1  # refreshed exactly once
    assert namespace["auth"].token == refreshed[0]


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="needs node (Debian nodejs) to run the fetch() example")
def test_client_guide_fetch_example_retries_an_expired_token_once(example_server: str) -> None:
    """The guide's ``api()`` runs in node against the example app: a token that stays
    expired after the refresh is retried once, then refused — never a loop."""
    [block] = re.findall(r"```javascript\n(.*?)```", CLIENT, flags=re.DOTALL)
    script = block + textwrap.dedent("""
        let fetches = 0, refreshes = 0;
        const realFetch = globalThis.fetch;
        globalThis.fetch = (path, options) => { fetches += 1; return realFetch(path, options); };
        async function refreshAccessToken() { refreshes += 1; }   // the token stays expired
        const [base, token] = process.argv.slice(1);  // node -e: no script path
        api(base + "/me", { headers: { Authorization: "Bearer " + token } }).then(
          (value) => console.log(JSON.stringify({ outcome: "answer", fetches, refreshes })),
          (error) => console.log(JSON.stringify({ outcome: String(error.message), fetches,
                                                  refreshes })));
    """)
    done = subprocess.run([str(NODE), "-e", script, example_server, mint(lifetime=-60)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {"outcome": "Still refused after a token refresh: sign in again",
                      "fetches": 2, "refreshes": 1}


def test_client_guide_covers_the_api() -> None:
    for name in ("Problem", "parse_www_authenticate", "ChallengeParseError", "raise_for_auth",
                 "araise_for_auth", "BearerAuth", "error_for", "authguard explain", "--json",
                 "fetch(", "reason", "AuthError", "TokenExpired", "InsufficientScope",
                 "PaymentRequired", "TooManyAttempts", "AuthUnavailable", "StepUpRequired"):
        assert name in CLIENT, name


def test_troubleshooting_maps_every_common_cause() -> None:
    headings = [h.lower() for h in re.findall(r"^## (.+)$", TROUBLE, flags=re.MULTILINE)]
    for cause in ("missing credentials", "expired or revoked token", "stale cookie",
                  "wrong clock", "missing scope or role", "blocked network", "plain http",
                  "payment or plan", "auth provider down", "cors"):
        assert any(cause in h for h in headings), cause
    for reason in Reason:
        assert f"`{reason.value}`" in TROUBLE, reason.value


def test_troubleshooting_links_point_at_existing_pages_and_sections() -> None:
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
               for h in re.findall(r"^## (.+)$", TROUBLE, flags=re.MULTILINE)}
    for target in re.findall(r"\]\(([^)]+)\)", TROUBLE):
        page, _, anchor = target.partition("#")
        if not page:
            assert anchor in anchors, target
        else:
            assert (DOCS / page).is_file(), target


def test_both_pages_are_in_the_navigation() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *a: None)
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)  # noqa: S506
    text = repr(config["nav"])
    assert "client.md" in text and "troubleshooting.md" in text
    assert Path(DOCS / "client.md").is_file()
