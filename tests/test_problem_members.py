"""The problem schema declares exactly what the server sends.

Every refusal the suite produces is checked by ``helpers.check_refusal``: a member the
schema does not declare fails the test that produced it. Here, the other direction: every
declared member is written somewhere by the server's code.
"""

from __future__ import annotations

from pathlib import Path

from authguard import problem_schema

SRC = Path(__file__).resolve().parent.parent / "src" / "authguard"


def test_every_declared_member_is_sent_by_the_server() -> None:
    code = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    declared = problem_schema()["properties"]
    never_sent = [m for m in declared if f'"{m}"' not in code]
    assert never_sent == []
    assert "clock_skew_seconds" in declared
    assert "server_time" not in declared
