"""``python -m benchmarks``: authguard beside bare Starlette and its peers.

    .venv/bin/python -m benchmarks            # full run (about 2 minutes), plot in docs/img
    .venv/bin/python -m benchmarks --quick    # fewer rounds, shorter load runs
    .venv/bin/python -m benchmarks --smoke    # seconds: tiny counts, no load run, no plot

Prints the machine, the in-process table (µs per request, ratios to bare Starlette and to
the peers, each target met or not), then the uvicorn runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from . import apps, inproc, load, report, targets

ROOT = Path(__file__).resolve().parent.parent


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="5 rounds, 2 s load runs")
    mode.add_argument("--smoke", action="store_true",
                      help="a few requests per cell, cheap argon2, no load run, no plot")
    p.add_argument("--rounds", type=int, help="interleaved in-process rounds (default 15)")
    p.add_argument("--no-load", action="store_true", help="skip the uvicorn runs")
    p.add_argument("--load-seconds", type=float, help="seconds per load run (default 3)")
    p.add_argument("--load-rounds", type=int,
                   help="interleaved rounds of the uvicorn throughput runs (default 3)")
    p.add_argument("--python-client", action="store_true",
                   help="use the built-in load client even where wrk is installed")
    p.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "benchmark.png",
                   help="where to save the plot (default docs/img/benchmark.png)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--json", type=Path, help="also write every sample as JSON")
    p.add_argument("--targets-only", action="store_true",
                   help="only the speed targets table (no other case, no load run)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.monotonic()
    say = print

    def progress(text: str) -> None:
        print(f"  … {text}", file=sys.stderr, flush=True)

    settings = inproc.Settings()
    seconds, load_rounds = 3.0, 3
    if args.quick:
        settings = inproc.Settings(rounds=5, batch_seconds=0.01)
        seconds, load_rounds = 2.0, 1
    if args.smoke:
        settings = inproc.Settings(rounds=1, fixed_n=2)
        args.no_load = args.no_load or True
        args.no_plot = True
    if args.rounds:
        settings.rounds = args.rounds
    if args.load_seconds:
        seconds = args.load_seconds
    if args.load_rounds:
        load_rounds = args.load_rounds

    say(f"# authguard benchmark{' (smoke)' if args.smoke else ' (quick)' if args.quick else ''}")
    say("")
    say(f"Machine: {report.machine()}")
    say("")
    if not apps.HAS_BEARER:
        say("(authguard.BearerAuthenticator is not available: its rows are skipped)")
    if not apps.HAS_SESSION:
        say("(authguard.SessionAuthenticator is not available: its row is skipped)")

    progress("making keys, tokens and an argon2 hash")
    material = apps.Material.make(apps.quick_argon2() if args.smoke else None)

    rows: list[targets.Row] = []

    async def target_cases() -> list[inproc.Case]:
        rows.extend(await targets.build_rows(material))
        return targets.as_cases(rows)

    inproc.run(target_cases, settings, progress)
    use_wrk = load.have_wrk() and not args.python_client
    cpu_rounds = max(load_rounds, 3)
    if not args.no_load:
        progress(f"uvicorn: server CPU per request, {cpu_rounds} rounds")
        rows.append(targets.cpu_row(load.server_cpu(seconds, cpu_rounds, 32, use_wrk)))
    say(f"## Speed targets: ratio of medians over {settings.rounds} interleaved rounds")
    say("")
    say(targets.table(rows))
    say("")
    if not args.no_load:
        say(f"(uvicorn row: server process utime+stime over {cpu_rounds} interleaved "
            f"{seconds:g} s runs of {'wrk -t1 -c32' if use_wrk else 'the built-in client'}, "
            "divided by the requests answered; in process rows: µs per request)")
        cpu_bare = rows[-1].bare
        if cpu_bare is not None and cpu_bare.samples and rows[-1].authguard:
            say(f"(server CPU per request: bare {cpu_bare.median:.1f} µs, authguard "
                f"+{rows[-1].authguard.median - cpu_bare.median:.1f} µs, hand-written "
                f"+{rows[-1].reference.median - cpu_bare.median:.1f} µs)")
        say("")
    if args.targets_only:
        return 0

    async def cases() -> list[inproc.Case]:
        return await inproc.build_cases(material)

    results = inproc.run(cases, settings, progress)
    say(f"## In process: µs per request (median of {settings.rounds} interleaved rounds)")
    say("")
    say(report.table(results))
    say("")
    say("Targets:")
    for text, ratio, met in report.targets_summary(results):
        mark = "skipped" if met is None else ("met" if met else "NOT met")
        say(f"- {text}: {ratio} — {mark}")

    throughput: list[dict[str, Any]] = []
    hashing: list[dict[str, Any]] = []
    if not args.no_load:
        client = "wrk -t1 -c32" if use_wrk else "built-in Python client, 32 connections"
        say("")
        say(f"## Under uvicorn (one worker, httptools, uvloop; load: {client}, "
            f"{seconds:g} s × {load_rounds} rounds, median)")
        progress("uvicorn: throughput")
        throughput = load.throughput(seconds, load_rounds, 32, use_wrk)
        bare_rps = throughput[0]["rps"]
        say("")
        say("| app | req/s | × bare | p50 ms | p99 ms | non-2xx |")
        say("|---|---:|---:|---:|---:|---:|")
        for row in throughput:
            say(f"| {row['name']} | {row['rps']:,.0f} | {row['rps'] / bare_rps:.2f}× "
                f"| {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['non_2xx']} |")
        ag = next((r for r in throughput if r["name"].startswith("authguard")), None)
        say("")
        if ag is None:
            say("Target: authguard JWT ≥ 0.90× bare req/s — skipped (no BearerAuthenticator)")
        else:
            ratio = ag["rps"] / bare_rps
            say(f"Target: authguard JWT, repeated token ≥ 0.90× bare req/s: {ratio:.2f}× — "
                f"{'met' if ratio >= 0.9 else 'NOT met'}")
        progress("uvicorn: argon2 logins beside other requests")
        hashing = load.hashing(seconds, 32, 2, use_wrk)
        say("")
        say("### Basic + argon2 logins beside other requests")
        say("")
        say("`GET /public` under load, alone and while 2 clients keep logging in with "
            "Basic + argon2id (every login hashes: no cache).")
        say("")
        say("| app | /public req/s alone | p99 ms | /public req/s during logins | p50 ms "
            "| p99 ms | logins done |")
        say("|---|---:|---:|---:|---:|---:|---:|")
        for row in hashing:
            say(f"| {row['name']} | {row['idle_rps']:,.0f} | {row['idle_p99_ms']:.1f} "
                f"| {row['busy_rps']:,.0f} | {row['busy_p50_ms']:.1f} "
                f"| {row['busy_p99_ms']:.1f} | {row['logins']} |")

    if not args.no_plot:
        if report.plot(results, throughput or None, hashing or None, args.plot):
            say("")
            say(f"Plot: {args.plot}")
        else:
            say("")
            say("(no plot: install the bench extra, `pip install -e '.[bench]'`)")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": report.machine(), "in_process": report.as_json(results),
            "throughput": throughput, "hashing": hashing}, indent=1))
    say("")
    say(f"(run took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
