"""Instructions per request, counted by valgrind: deterministic where wall-clock is not.

``python -m benchmarks.instructions [CASE ...] [--n 2000] [--simulate]`` runs, for each
case, the same in-process request N times and 0 times under ``valgrind --tool=callgrind``
and prints the difference divided by N: the instructions one request costs, the same on a
busy machine as on a quiet one (a change of a few hundred is real). ``--simulate`` adds,
per request, the misses of callgrind's simulated first-level caches and the
mispredictions of its simulated branch predictor, and an estimate of cycles (each miss
or misprediction counted as 10 instructions): where time goes that instructions do not
show, on a model of a processor (not this one's counters, which a virtual machine
may not expose). ``PYTHONPATH=<other src>`` counts another version of authguard with the
same requests.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from . import apps
from .inproc import Cell, _hdr

_KEY = [_hdr("x-api-key", apps.API_KEY)]


def _hs256(factory: Callable[[apps.Material], Any]) -> Cell:
    # HS256 only: generating the other keys costs a random number of instructions, which
    # would not cancel out between the two counts
    m = apps.Material(argon2=apps.quick_argon2())
    m.private["HS256"] = m.public["HS256"] = apps.HS_SECRET
    m.valid["HS256"] = m.token("HS256")
    return Cell(factory(m), "/private", [_hdr("authorization", "Bearer " + m.valid["HS256"])])


def _floor(middleware: Any, **kwargs: Any) -> Any:
    from .targets import _floor as floor

    return floor(middleware, **kwargs)


def _cases() -> dict[str, Callable[[], Cell]]:
    from .targets import HandWrittenJWT, PassThrough

    def ag() -> Any:
        return apps.authguard_app(apps.api_key_authenticator())

    return {
        "bare-public": lambda: Cell(apps.bare_starlette(), "/public"),
        "passthrough-public": lambda: Cell(_floor(PassThrough), "/public"),
        "public": lambda: Cell(ag(), "/public"),
        "bare-private": lambda: Cell(apps.bare_starlette(), "/private", _KEY),
        "handwritten-key": lambda: Cell(apps.hand_written_app(), "/private", _KEY),
        "key": lambda: Cell(ag(), "/private", _KEY),
        "handwritten-jwt-cache": lambda: _hs256(
            lambda m: _floor(HandWrittenJWT, cache=True)),
        "jwt-repeated": lambda: _hs256(
            lambda m: apps.authguard_app(apps.bearer_authenticator(m, "HS256", cache=True))),
        "401": lambda: Cell(ag(), "/private"),
        "403": lambda: Cell(ag(), "/admin", _KEY),
        "402": lambda: Cell(ag(), "/paid", _KEY),
        **_observability_cases(),
    }


def _observability_cases() -> dict[str, Callable[[], Cell]]:
    """``obs-<variant>-<row>``: the rows and variants of ``benchmarks.observability``."""
    from . import observability as obs

    def cell(variant: str, row: str) -> Cell:
        return Cell(obs.variants()[variant], "/items/1", list(obs.ROWS[row]))

    names = {"off": "off", "metrics": "metrics", "timed": "metrics(timed refusals)",
             "detector": "metrics+detector"}
    rows = {"allowed": "allowed", "refusal": "refusal", "expired": "refusal(expired)"}
    return {f"obs-{short}-{r}": (lambda v=variant, w=row: cell(v, w))
            for short, variant in names.items() for r, row in rows.items()}


async def _requests(cell: Cell, n: int) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    for _ in range(50):  # warm the caches (plans, tokens) in every count
        await cell.app(cell.scope(), receive, send)
    # What exists now is set aside by the collector: a full collection over the imported
    # modules, which N requests may or may not trigger, would swamp the count.
    gc.collect()
    gc.freeze()
    for _ in range(n):
        await cell.app(cell.scope(), receive, send)


# With ``--simulate``: callgrind's simulated caches and branch predictor, per request.
_SIMULATED = {"I1mr": "I1 misses", "D1mr": "D1 read misses", "D1mw": "D1 write misses",
              "Bcm": "conditional branches mispredicted",
              "Bim": "indirect branches mispredicted"}


def _count(case: str, n: int, simulate: bool = False) -> dict[str, int]:
    """Callgrind's events for ``n`` requests: ``Ir`` (instructions), and with ``simulate``
    the events of :data:`_SIMULATED`."""
    sim = ["--cache-sim=yes", "--branch-sim=yes"] if simulate else []
    cmd = ["valgrind", "--tool=callgrind", *sim, "--callgrind-out-file=/dev/null",
           sys.executable, "-m", "benchmarks.instructions", "--run", case, str(n)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict layouts in both counts
    return _events(subprocess.run(cmd, capture_output=True, text=True, check=True,
                                  env=env).stderr)


def _events(out: str) -> dict[str, int]:
    """The totals of callgrind's summary (its ``Events`` and ``Collected`` lines)."""
    events = re.search(r"Events +: ([\w ]+)", out)
    found = re.search(r"Collected : ([\d ]+)", out)
    if events is None or found is None:
        raise RuntimeError(f"valgrind: no count in\n{out[-2000:]}")
    return dict(zip(events.group(1).split(), map(int, found.group(1).split()), strict=True))


def main(argv: list[str] | None = None) -> int:
    cases = _cases()
    p = argparse.ArgumentParser(prog="python -m benchmarks.instructions",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="*", help=f"default: all of {', '.join(cases)}")
    p.add_argument("--n", type=int, default=2000, help="requests counted (default 2000)")
    p.add_argument("--simulate", action="store_true",
                   help="also the simulated cache misses and branch mispredictions "
                        "(slower)")
    p.add_argument("--run", nargs=2, metavar=("CASE", "N"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.run:
        asyncio.run(_requests(cases[args.run[0]](), int(args.run[1])))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 1
    extra = list(_SIMULATED) if args.simulate else []
    print("| case | instructions per request |"
          + "".join(f" {_SIMULATED[e]} |" for e in extra)
          + (" estimated cycles |" if extra else ""))
    print("|---|---:|" + "---:|" * (len(extra) + bool(extra)))
    for case in args.cases or list(cases):
        many, none = _count(case, args.n, args.simulate), _count(case, 0, args.simulate)
        per = [(many[e] - none[e]) / args.n for e in ["Ir", *extra]]
        if extra:  # KCachegrind's estimate: an L1 miss or a misprediction ≈ 10 cycles
            per.append(per[0] + 10 * sum(per[1:]))
        print(f"| {case} | " + " | ".join(f"{v:,.0f}" for v in per) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
