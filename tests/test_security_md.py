"""SECURITY.md stays true: every threat names its defence and its tests, and every test file
and page it names exists."""

from __future__ import annotations

import re

from helpers import ROOT

TEXT = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
THREATS = re.split(r"^### ", TEXT.split("## Threats, defences and their tests", 1)[1],
                   flags=re.M)[1:]


def test_every_threat_has_a_defence_and_tests() -> None:
    assert len(THREATS) >= 12
    for section in THREATS:
        title = section.splitlines()[0]
        assert "- **Defence**:" in section, title
        tests = section.split("- **Tests**:", 1)
        assert len(tests) == 2, f"{title}: no tests named"
        assert re.search(r"`tests/test_\w+\.py`", tests[1]), f"{title}: no test file"


def test_every_named_file_exists() -> None:
    named = set(re.findall(r"`((?:tests|docs)/[\w/.-]+\.(?:py|md))`", TEXT))
    assert len(named) >= 20
    missing = sorted(p for p in named if not (ROOT / p).is_file())
    assert not missing, f"SECURITY.md names files that do not exist: {missing}"


def test_the_threats_the_project_promises_are_all_there() -> None:
    titles = " / ".join(s.splitlines()[0].lower() for s in THREATS)
    for word in ("guessing", "enumeration", "timing", "forgery", "algorithm confusion",
                 "replay", "paying twice", "double-spend", "session fixation", "csrf",
                 "header injection", "big or slow input", "secrets in logs",
                 "misconfiguration", "proxies", "spoofed", "policy bypass", "log forging"):
        assert word in titles, word
    assert "lockout of legitimate users" in titles  # the brute-force guard's trade-off
    assert "## Reporting a vulnerability" in TEXT
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(SECURITY.md)" in readme
