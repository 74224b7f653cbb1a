"""``authguard report``: a JSON event log written by the middleware, read back by the
command as a user runs it."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import time_machine

from authguard.observability import EventFormatter
from authguard.observability.report import read_events
from obs_app import AUDIENCE, ISSUER, SECRET, make_app
from rawasgi import http


class Clock:
    """The system clock (pyjwt reads it), held still and moved by the test."""

    def __init__(self, traveller: Any) -> None:
        self._traveller = traveller

    @property
    def now(self) -> float:
        return time.time()

    @now.setter
    def now(self, value: float) -> None:
        self._traveller.move_to(value)

    def __call__(self) -> float:
        return self.now


async def _write_log(path: Path) -> None:
    with time_machine.travel(1_900_000_000.0, tick=False) as traveller:
        await _write_events(path, Clock(traveller))


async def _write_events(path: Path, clock: Clock) -> None:
    app = make_app(clock=clock)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(EventFormatter())
    logger = logging.getLogger("authguard")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        for i in range(30):
            clock.now += 2
            await http(app, "GET", f"/items/{i}")  # no credentials
            if i % 3 == 0:  # a client whose issuer's clock is 30 s ahead
                ahead = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "a",
                                    "azp": "skewed-app", "nbf": clock.now + 30,
                                    "iat": clock.now + 30, "exp": clock.now + 300},
                                   SECRET, algorithm="HS256")
                await http(app, "GET", "/api/things/1\n\x1b[31mforged",
                           [(b"authorization", f"Bearer {ahead}".encode())],
                           client=("198.51.100.9", 1))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        handler.close()
    with path.open("a", encoding="utf-8") as f:
        f.write("not json\n{\"unrelated\": 1}\n")


def _report(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "authguard.cli", "report", *args],
                          capture_output=True, text=True, input=stdin, timeout=120,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}, check=False)


async def test_report_prints_tables_and_findings_and_draws_the_plot(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    await _write_log(log)
    events, findings, skipped = read_events(log.read_text().splitlines())
    assert (len(events), findings, skipped) == (40, [], 2)
    png = tmp_path / "refusals.png"
    result = _report(str(log), "--plot", str(png))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "40 refusals, 0 allowed events, 2 lines skipped" in out
    for title in ("Refusals by reason", "Refusals by route", "Refusals by client",
                  "Findings"):
        assert title in out
    assert "credentials_missing" in out and "75%" in out  # 30 of 40
    assert "token_not_yet_valid" in out and "25%" in out
    assert "/items/{item_id}" in out and "forged" not in out
    assert "clock_skew" in out and "client skewed-app" in out
    assert "30.0 s in the server's future" in out and "NTP" in out
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


async def test_report_reads_stdin(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    await _write_log(log)
    result = _report("-", stdin=log.read_text())
    assert result.returncode == 0 and "40 refusals" in result.stdout


def test_report_of_a_missing_file_says_so(tmp_path: Path) -> None:
    result = _report(str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2
    assert "cannot read" in result.stdout


@pytest.mark.parametrize("line", ['{"event": "refused", "time": "x", "bogus": 1}',
                                  '{"event": "refused"}', '[1, 2]', '"text"'])
def test_odd_lines_are_skipped_or_read_without_a_crash(line: str) -> None:
    events: Any
    events, _, skipped = read_events([line])
    assert len(events) + skipped == 1
