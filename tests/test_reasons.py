"""The Reason table is the one source: schema, docs and table agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from authguard import Reason, Refusal, problem_body, problem_schema
from authguard.reasons import spec

DOCS = Path(__file__).resolve().parent.parent / "docs" / "reasons"


def test_schema_enum_lists_every_reason() -> None:
    schema = problem_schema()
    assert set(schema["properties"]["reason"]["enum"]) == {r.value for r in Reason}


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_a_docs_page_and_a_consistent_row(reason: Reason) -> None:
    page = DOCS / f"{reason.value}.md"
    assert page.is_file(), f"docs/reasons/{reason.value}.md is missing"
    text = page.read_text()
    row = spec(reason)
    assert f"**{row.status}**" in text
    assert row.title in text
    assert row.hints, "every reason gives at least one hint"
    if row.status == 401:
        assert row.challenge in ("all", "scheme"), "every 401 carries a challenge"
    if row.status == 403 and reason is not Reason.INSUFFICIENT_SCOPE:
        assert row.challenge == "none", "a 403 never asks for credentials"


def test_reasons_are_listed_in_the_index() -> None:
    index = (DOCS / "index.md").read_text()
    for reason in Reason:
        assert f"[`{reason.value}`]({reason.value}.md)" in index


def test_problem_body_members() -> None:
    body = problem_body(
        Refusal(Reason.TOO_MANY_ATTEMPTS, headers={"Retry-After": "42"},
                extensions={"reason": "spoofed", "extra": 1}),
        instance="/x", request_id="abc", type_base="urn:test:",
    )
    assert body["type"] == "urn:test:too_many_attempts"
    assert body["status"] == 429
    assert body["retry_after"] == 42
    assert body["reason"] == "too_many_attempts", "extensions never override core members"
    assert body["extra"] == 1
    assert body["instance"] == "/x"
