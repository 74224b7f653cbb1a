"""The introspection benchmark still runs (``--smoke``); nothing here reads the timings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_introspection_benchmark_smoke_run() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.introspection", "--smoke"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| introspection, remembered answer |" in done.stdout
    assert "| introspection, stub endpoint on loopback |" in done.stdout
