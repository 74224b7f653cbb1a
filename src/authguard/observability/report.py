"""``authguard report``: a JSON event log summarised as tables, with the detector's findings.

The log is JSON lines (a file or ``-`` for stdin): each line either an event as
:class:`~authguard.observability.EventFormatter` writes it, or any JSON log record that
carries the event in its ``authguard`` member. Other lines are counted and skipped. The
detector runs again over the events (findings already in the log are shown too), so a
log from several replicas, concatenated, is judged as a whole. ``--plot FILE.png`` draws
refusals per reason over time (needs ``matplotlib``: ``pip install 'authguard[plot]'``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import IO, Any

from .detector import Detector
from .events import AuthEvent, Finding
from .safety import safe_text

__all__ = ["add_arguments", "read_events", "run"]

_FIELDS = {f.name for f in dataclasses.fields(AuthEvent)}
_FINDING_FIELDS = {f.name for f in dataclasses.fields(Finding)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    parser.add_argument("log", nargs="?", default="-",
                        help="JSON event log (one JSON object a line); '-' for stdin")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="draw refusals per reason over time into this PNG file")
    parser.add_argument("--window", type=float, default=300.0,
                        help="the detector's window, in seconds (default 300)")
    parser.add_argument("--top", type=int, default=10, help="rows per table (default 10)")


def read_events(lines: Iterable[str]) -> tuple[list[AuthEvent], list[Finding], int]:
    """The events and findings in ``lines``, and how many lines were not one."""
    events: list[AuthEvent] = []
    findings: list[Finding] = []
    skipped = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            data = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(data, dict) and isinstance(data.get("authguard"), dict):
            data = data["authguard"]
        kind = data.get("event") if isinstance(data, dict) else None
        try:
            if kind in ("refused", "allowed"):
                events.append(AuthEvent(**{k: v for k, v in data.items() if k in _FIELDS}))
            elif kind == "finding":
                findings.append(Finding(**{k: v for k, v in data.items()
                                           if k in _FINDING_FIELDS}))
            else:
                skipped += 1
        except TypeError:
            skipped += 1
    return events, findings, skipped


def run(args: argparse.Namespace) -> int:
    """Print the report; draw the plot if asked. 0 on success, 2 on unreadable input."""
    from rich.console import Console

    console = Console()
    try:
        with _open(args.log) as stream:
            events, logged, skipped = read_events(stream)
    except OSError as exc:
        console.print(f"[red]cannot read {safe_text(args.log)}: {exc.strerror}[/red]")
        return 2
    detector = Detector(window=args.window)
    seen = {(f.finding, f.key) for f in logged}
    findings = list(logged)
    for event in sorted(events, key=lambda e: e.time):
        for f in detector.observe(event):
            if (f.finding, f.key) not in seen:
                seen.add((f.finding, f.key))
                findings.append(f)
    _print(console, events, findings, skipped, args.top)
    if args.plot:
        try:
            from .plot import plot_refusals
        except ImportError:
            console.print("[red]--plot needs matplotlib: pip install 'authguard[plot]'[/red]")
            return 2
        plot_refusals([e for e in events if e.event == "refused"], args.plot)
        console.print(f"plot written to {safe_text(args.plot)}")
    return 0


def _open(name: str) -> AbstractContextManager[IO[str]]:
    if name == "-":
        return nullcontext(sys.stdin)  # stdin stays open
    return open(name, encoding="utf-8", errors="replace")


def _print(console: Any, events: list[AuthEvent], findings: list[Finding], skipped: int,
           top: int) -> None:
    from rich.table import Table

    refused = [e for e in events if e.event == "refused"]
    allowed = len(events) - len(refused)
    console.print(f"{len(refused)} refusals, {allowed} allowed events"
                  + (f", {skipped} lines skipped" if skipped else ""))
    for title, column, rows in (
        ("Refusals by reason", "reason", _count(refused, lambda e: (e.reason, e.status))),
        ("Refusals by route", "route", _count(refused, lambda e: (e.route, None))),
        ("Refusals by client", "client", _count(refused, lambda e: (e.client, None))),
    ):
        table = Table(title=title)
        table.add_column(column)
        if column == "reason":
            table.add_column("status", justify="right")
        table.add_column("count", justify="right")
        table.add_column("share", justify="right")
        for (name, status), n in rows[:top]:
            cells = [_cell(name)]
            if column == "reason":
                cells.append(str(status))
            cells += [str(n), f"{100 * n / max(1, len(refused)):.0f}%"]
            table.add_row(*cells)
        console.print(table)
    table = Table(title="Findings")
    for column in ("finding", "on", "count", "what was seen", "fix"):
        table.add_column(column, overflow="fold")
    for f in findings:
        table.add_row(_cell(f.finding), _cell(f.key), str(f.count), _cell(f.message, 400),
                      _cell(f.fix, 400))
    console.print(table if findings else "No findings.")


def _count(events: list[AuthEvent], key: Any) -> list[tuple[Any, int]]:
    return Counter(key(e) for e in events).most_common()


def _cell(value: object, limit: int = 120) -> str:
    """A table cell: escaped (the log may have been written by anyone) and rich markup
    shown as text."""
    from rich.markup import escape

    return escape(safe_text("-" if value is None else value, limit))

