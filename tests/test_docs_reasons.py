"""Reason pages: one per reason, in the nav, under the domain the ``type`` URIs name."""

from __future__ import annotations

import re
from pathlib import Path

from authguard import Reason
from authguard.reasons import DEFAULT_TYPE_BASE

ROOT = Path(__file__).resolve().parent.parent


def test_type_uris_and_docs_share_one_domain_and_every_page_is_in_the_nav() -> None:
    mkdocs = (ROOT / "mkdocs.yml").read_text()
    site = re.search(r"^site_url: (\S+)$", mkdocs, re.M)
    assert site is not None
    assert DEFAULT_TYPE_BASE == site[1] + "reasons/"
    assert 'Documentation = "' + site[1].rstrip("/") + '"' in (ROOT / "pyproject.toml").read_text()
    for reason in Reason:
        page = ROOT / "docs" / "reasons" / f"{reason.value}.md"
        if not page.exists():
            continue  # a reason whose page is written elsewhere
        assert f"reasons/{reason.value}.md" in mkdocs, f"{reason.value} is not in the nav"
        assert "| | |" not in page.read_text(), f"{reason.value}: a table without a header"


def test_token_expired_names_what_an_over_age_session_gets() -> None:
    text = (ROOT / "docs" / "reasons" / "token_expired.md").read_text()
    assert "session_expired" in text


def test_every_hint_is_on_its_reasons_page() -> None:
    """Each reason page lists the hints the server sends, those of every scheme included."""
    for reason in Reason:
        page = ROOT / "docs" / "reasons" / f"{reason.value}.md"
        if not page.exists():
            continue
        text = page.read_text()
        spec = reason.spec
        hints = [*spec.hints, *(h for per in spec.scheme_hints.values() for h in per)]
        missing = [h for h in hints if h not in text]
        assert missing == [], f"{reason.value}: hints missing from its page"
