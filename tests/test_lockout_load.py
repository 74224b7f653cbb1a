"""The mixed-load check runs: ``python -m benchmarks.lockout`` for a few seconds.

Two replicas of the example app on one real Redis; wrk sends only bad credentials while
good clients from other loopback addresses sign in with every kind of credential. The
script itself fails (exit 1) on any 5xx, any traceback, or any good request refused.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import ROOT, need

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


def test_a_short_mixed_load_has_no_5xx_and_refuses_no_good_client() -> None:
    need("wrk", "the mixed-load check drives the bad clients with wrk")
    need("redis-server", "the replicas share a real Redis")
    done = subprocess.run([sys.executable, "-m", "benchmarks.lockout", "--seconds", "3",
                           "--connections", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    out = done.stdout
    assert "5xx answers: 0; good requests refused: 0" in out
    assert "| bad (wrk, replica A) |" in out and "401: " in out
    for kind in ("Basic bob 200", "Basic alice 200", "API key 200", "Bearer 200",
                 "session 200", "login 200"):
        assert kind in out, kind
    assert out.rstrip().endswith("PASS")
