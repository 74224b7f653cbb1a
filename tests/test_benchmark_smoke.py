"""The benchmark still runs: ``python -m benchmarks --smoke`` prints its table.

Only that it runs and prints every row (with each authguard answer checked for its status
by the benchmark itself). Nothing here looks at the timings.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

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


def test_observability_benchmark_pools_processes_and_prints_each_ratio() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.observability", "--rounds", "7",
         "--processes", "2", "--seconds", "0.001"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.startswith("7 rounds in 2 processes")  # 4 + 3: the rounds asked for
    assert "≈95 % CI of the median (processes resampled)" in out
    for row in ("allowed", "refusal", "refusal(expired)"):
        for variant in ("metrics", "metrics(timed refusals)", "metrics(sdk)",
                        "metrics+detector"):
            assert f"| {row} | {variant} | " in out, (row, variant)


_CALLGRIND_SUMMARY = """\
==3246== Events    : Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw Bc Bcm Bi Bim
==3246== Collected : 2411068908 701940120 402266597 31512625 18201088 5590363 27624 \
109825 531601 300 40 200 60
"""


def test_instructions_reads_callgrinds_summary() -> None:
    from benchmarks.instructions import _events

    events = _events(_CALLGRIND_SUMMARY)
    assert events["Ir"] == 2411068908
    assert events["I1mr"] == 31512625
    assert events["Bim"] == 60
    assert _events("==1== Events    : Ir\n==1== Collected : 42\n") == {"Ir": 42}


def test_instructions_simulate_prints_misses_and_estimated_cycles(
        monkeypatch: Any, capsys: Any) -> None:
    import benchmarks.instructions as instructions

    zero = {"Ir": 1000, "I1mr": 10, "D1mr": 10, "D1mw": 10, "Bcm": 10, "Bim": 10}
    many = {"Ir": 5000, "I1mr": 30, "D1mr": 50, "D1mw": 10, "Bcm": 14, "Bim": 12}
    monkeypatch.setattr(instructions, "_count",
                        lambda case, n, simulate=False: many if n else zero)
    monkeypatch.setattr(instructions.shutil, "which", lambda name: "/usr/bin/valgrind")
    assert instructions.main(["public", "--n", "2", "--simulate"]) == 0
    out = capsys.readouterr().out
    assert "| I1 misses |" in out and "| estimated cycles |" in out
    # per request: (many - zero) / 2; the estimate: Ir + 10 * (misses + mispredictions)
    assert "| public | 2,000 | 10 | 20 | 0 | 2 | 1 | 2,330 |" in out
