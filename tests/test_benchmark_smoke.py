"""The benchmark still runs: ``python -m benchmarks --smoke`` prints its table.

Only that it runs and prints every row (with each authguard answer checked for its status
by the benchmark itself). Nothing here looks at the timings.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_smoke_run_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "| case | authguard µs |" in out
    for label in ("bare app, no auth", "public route", "API key", "Basic, plain verifier",
                  "Basic, argon2id, repeated credentials", "JWT HS256, repeated token",
                  "JWT EdDSA, bad signature", "session cookie", "401 refusal",
                  "403 refusal", "402 refusal"):
        assert f"| {label}" in out, label
    assert "Targets:" in out
    assert "Machine:" in out
