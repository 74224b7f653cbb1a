"""DPoP interop with real third-party clients under Node: proofs by panva's ``dpop`` and
requests by ``oauth4webapi`` (its DPoP handle, the nonce dance, its challenge parser),
against the example app under real uvicorn on loopback.

Needs ``node`` and the packages of ``tests/node/dpop`` (``npm ci`` there; ``.ci/run`` does
it). Skipped without them on a laptop; in CI (``CI=true``) their absence fails.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from authguard.authenticators.dpop_proof import jwk_thumbprint
from authguard.challenges import parse_www_authenticate
from dpop_helpers import ClientKey, bound_token
from helpers import IN_CI, need, uvicorn_server
from tokens import mint

pytestmark = pytest.mark.e2e

NODE_DIR = Path(__file__).resolve().parent / "node" / "dpop"


def _need_packages() -> None:
    need("node", "the DPoP interop tests run panva's dpop and oauth4webapi")
    if not (NODE_DIR / "node_modules" / "dpop").is_dir() or not (
            NODE_DIR / "node_modules" / "oauth4webapi").is_dir():
        message = f"the Node packages are not installed: run 'npm ci' in {NODE_DIR}"
        if IN_CI:
            pytest.fail(message + " (CI must install them: see .ci/run)")
        pytest.skip(message)


def run_interop(base: str, path: str, *, nonce: bool, edwards: bool = False
                ) -> dict[str, Any]:
    if edwards:
        private = OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate(), as_dict=True)
        public = {k: private[k] for k in ("kty", "crv", "x")}
        token = mint("alice", scope="reports:read", cnf={"jkt": jwk_thumbprint(public)})
    else:
        key = ClientKey()
        token = bound_token(key, scope="reports:read")
        private = ECAlgorithm.to_jwk(key.private, as_dict=True)
    data = {"base": base, "path": path, "token": token, "nonce": nonce, "jwk": private}
    done = subprocess.run(["node", "interop.mjs"], cwd=NODE_DIR, input=json.dumps(data),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def dpop_challenge(answer: dict[str, Any]) -> dict[str, str]:
    line = answer["www_authenticate"]
    assert line, "a 401 carries a challenge"
    # fetch joins several field lines with ", "; our parser reads both forms
    found = {c.scheme: dict(c.params) for c in parse_www_authenticate(line)}
    return found["DPoP"]


@pytest.fixture(scope="module")
def plain_server() -> Iterator[str]:
    _need_packages()
    with uvicorn_server("app:app", env={"AUTHGUARD_DEMO_FAILURE_LIMIT": "1000"}) as url:
        yield url


@pytest.fixture(scope="module")
def nonce_server() -> Iterator[str]:
    _need_packages()
    with uvicorn_server("app:app", env={"AUTHGUARD_DEMO_FAILURE_LIMIT": "1000",
                                        "AUTHGUARD_DEMO_DPOP_NONCE": "1"}) as url:
        yield url


@pytest.fixture(scope="module")
def plain(plain_server: str) -> dict[str, Any]:
    return run_interop(plain_server, "/dpop/me", nonce=False)


def test_a_proof_from_panvas_dpop_is_accepted(plain: dict[str, Any]) -> None:
    assert plain["valid"]["status"] == 200
    assert plain["valid"]["body"]["subject"] == "alice"
    assert plain["valid"]["body"]["scheme"] == "DPoP"


@pytest.mark.parametrize(("case", "reason", "check"), [
    ("replayed", "dpop_proof_replayed", "jti"),
    ("wrong_htm", "invalid_dpop_proof", "htm"),
    ("wrong_htu", "invalid_dpop_proof", "htu"),
    ("wrong_ath", "invalid_dpop_proof", "ath"),
    ("other_key", "invalid_dpop_proof", "jkt"),
])
def test_each_wrong_proof_gets_its_reason_and_the_dpop_challenge(
        plain: dict[str, Any], case: str, reason: str, check: str) -> None:
    answer = plain[case]
    assert answer["status"] == 401
    assert answer["reason"] == reason
    assert answer["dpop_check"] == check
    challenge = dpop_challenge(answer)
    assert challenge["error"] == "invalid_dpop_proof"
    assert "ES256" in challenge["algs"].split()


def test_a_token_without_proof_and_a_downgrade_are_refused(plain: dict[str, Any]) -> None:
    assert plain["no_proof"]["status"] == 401
    assert plain["no_proof"]["reason"] == "dpop_proof_missing"
    assert plain["as_bearer"]["status"] == 401
    # /dpop/me takes DPoP only: a Bearer token is not even looked at
    assert plain["as_bearer"]["reason"] == "credentials_missing"
    assert "error" not in dpop_challenge(plain["as_bearer"])


def test_a_downgrade_on_a_route_that_takes_bearer_is_refused(plain_server: str) -> None:
    result = run_interop(plain_server, "/me", nonce=False)
    assert result["valid"]["status"] == 200
    assert result["as_bearer"]["status"] == 401
    assert result["as_bearer"]["reason"] == "dpop_proof_missing"


def test_oauth4webapi_sends_a_dpop_request_and_parses_our_challenges(
        plain: dict[str, Any]) -> None:
    attempts = plain["oauth4webapi"]
    assert attempts == [{"status": 200, "body": attempts[0]["body"]}]
    assert attempts[0]["body"]["scheme"] == "DPoP"
    parsed = plain["parsed"]
    assert parsed["error"] == "WWWAuthenticateChallengeError"
    dpop = next(c for c in parsed["challenges"] if c["scheme"] == "dpop")
    assert dpop["parameters"]["error"] == "invalid_dpop_proof"
    assert "ES256" in dpop["parameters"]["algs"].split()


def test_the_nonce_dance_completes_with_oauth4webapi_alone(nonce_server: str) -> None:
    result = run_interop(nonce_server, "/dpop/me", nonce=True)
    asked = result["nonce_asked"]
    assert asked["status"] == 401 and asked["reason"] == "use_dpop_nonce"
    assert asked["dpop_nonce"]
    assert dpop_challenge(asked)["error"] == "use_dpop_nonce"
    assert result["valid"]["status"] == 200  # panva's dpop with the server's nonce
    first, second = result["oauth4webapi"]
    assert first["nonce_error"] is True and first["status"] == 401
    assert second["status"] == 200 and second["body"]["subject"] == "alice"


def test_ed25519_proofs_from_panvas_dpop_are_accepted(plain_server: str) -> None:
    # dpop signs Ed25519 keys with RFC 9864's fully-specified alg "Ed25519"
    result = run_interop(plain_server, "/dpop/me", nonce=False, edwards=True)
    assert result["valid"]["status"] == 200, result["valid"]
    assert result["wrong_htu"]["dpop_check"] == "htu"
    assert result["oauth4webapi"][0]["status"] == 200
