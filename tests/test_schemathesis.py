"""schemathesis against the example app's ``/openapi.json`` under uvicorn, with every check.

Two runs, each bounded (``AUTHGUARD_SCHEMATHESIS_EXAMPLES`` cases per operation, default 15,
fixed seed):

* with an admin Bearer token that satisfies every route: responses must conform to the
  document (statuses, content types, headers, schemas), and ``ignored_auth`` re-sends each
  successful request without credentials and with generated ones — a secured operation
  that does not refuse them fails the run;
* without credentials: schemathesis generates its own for every declared security scheme;
  any 2xx on a secured operation fails the run.

One exception, configured per operation: FastAPI answers ``OPTIONS /login`` (a GET route and
a POST route on one path) with ``Allow: GET`` only — Starlette's router asks the first route
that matches the path; the check ``allow_header_conformance`` is off for that path alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from helpers import uvicorn_server

pytestmark = pytest.mark.e2e

EXAMPLES = os.environ.get("AUTHGUARD_SCHEMATHESIS_EXAMPLES", "15")
SEED = os.environ.get("AUTHGUARD_SCHEMATHESIS_SEED", "20261123")
# A 402 is the documented answer of the paid routes to a request that is valid but unpaid;
# 502/503 that of a payment provider or auth backend that cannot be reached. Every check is
# on, ``status_code_conformance`` among them: a status the document does not list for an
# operation fails the run (seen by dropping the 401s from the document: ST103).
CONFIG = """
checks.positive_data_acceptance.expected-statuses = [
  "2xx", "3xx", "401", "402", "403", "404", "429", "502", "503",
]

[[operations]]
include-path = "/login"
checks.allow_header_conformance.enabled = false
"""


def test_no_check_is_disabled_but_allow_header_on_login() -> None:
    """Undocumented statuses must fail the run: no check is turned off globally."""
    assert "enabled = false" not in CONFIG.split("[[operations]]")[0]
    assert CONFIG.count("enabled = false") == 1
    assert "status_code_conformance" not in CONFIG


def admin_token() -> str:
    now = int(time.time())
    claims = {"iss": "https://auth.example.test", "aud": "authguard-demo",
              "sub": "schemathesis-admin", "scope": "reports:read", "roles": ["admin", "user"],
              "acr": "mfa", "auth_time": now, "iat": now, "exp": now + 3600}
    return jwt.encode(claims, "demo-jwt-secret-0123456789abcdef-0123456789", algorithm="HS256")


def run_schemathesis(base: str, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).with_name("st")
    cmd = [str(st), "--config-file", str(config), "--no-color", "run", f"{base}/openapi.json",
           "--max-examples", EXAMPLES, "--seed", SEED, "--generation-database", "none",
           "--workers", "1", "--request-timeout", "10", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def server() -> object:
    with uvicorn_server("app:app", env={"AUTHGUARD_DEMO_FAILURE_LIMIT": "1000000000"}) as url:
        yield url


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "schemathesis.toml"
    path.write_text(CONFIG)
    return path


def test_every_check_with_valid_credentials(server: str, config: Path) -> None:
    result = run_schemathesis(server, config, "--header", f"Authorization: Bearer {admin_token()}")
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "Tested: " in result.stdout
    assert "ignored_auth" not in result.stdout.split("SUMMARY")[-1]


def test_every_check_without_credentials(server: str, config: Path) -> None:
    result = run_schemathesis(server, config, "--generation-with-security-parameters", "true")
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    # The secured operations refused every request (schemathesis warns that it could not
    # authenticate; that is the point here).
    assert "401 Unauthorized" in result.stdout
