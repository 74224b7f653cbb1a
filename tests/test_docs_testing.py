"""The pytest examples of docs/testing.md run here, as they are written."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "testing_example.py"
_spec = importlib.util.spec_from_file_location("docs_testing_example", EXAMPLE)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

# The example's fixture and tests, collected by pytest from this module.
client = _module.client
globals().update({name: value for name, value in vars(_module).items()
                  if name.startswith("test_")})


def test_every_example_test_is_collected() -> None:
    names = [n for n in vars(_module) if n.startswith("test_")]
    assert len(names) >= 6
    assert all(n in globals() for n in names)


def test_docs_pages_carry_the_code_of_their_sources() -> None:
    """Pages inline the tested examples (so they read on GitHub); they must agree."""
    spec = importlib.util.spec_from_file_location(
        "sync_docs", EXAMPLE.parent.parent.parent / "scripts" / "sync_docs.py")
    assert spec is not None and spec.loader is not None
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    assert sync.stale_pages() == [], "run: python scripts/sync_docs.py"
    page = (EXAMPLE.parent.parent / "testing.md").read_text()
    assert "async def test_an_admin_gets_in" in page
    assert '--8<-- "' not in page


def _sync() -> object:
    spec = importlib.util.spec_from_file_location(
        "sync_docs", EXAMPLE.parent.parent.parent / "scripts" / "sync_docs.py")
    assert spec is not None and spec.loader is not None
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    return sync


def test_no_page_holds_a_raw_build_directive() -> None:
    """GitHub shows ``--8<--`` includes and ``:::`` directives as they are: every page
    holds the generated content instead (between comment markers)."""
    import re

    docs = EXAMPLE.parent.parent
    for page in sorted(docs.rglob("*.md")):
        text = page.read_text()
        assert not re.search(r"^\s*--8<--", text, re.M), page
        assert not re.search(r"^:::", text, re.M), page
    root = docs.parent
    assert (root / "SECURITY.md").read_text().strip() in (docs / "security.md").read_text()
    assert (root / "CHANGELOG.md").read_text().strip() in (docs / "changelog.md").read_text()


def test_the_reference_is_generated_from_the_code() -> None:
    import authguard

    sync: Any = _sync()
    reference = (EXAMPLE.parent.parent / "reference.md").read_text()
    for name in authguard.__all__:
        assert f"### `{name}`\n" in reference, name
    basic = sync.reference_of("authguard.BasicAuthenticator")
    assert "class BasicAuthenticator(*, verifier: PasswordVerifier" in basic
    assert "- `async authenticate(conn: HTTPConnection) -> Identity | None`" in basic
    # A changed docstring makes the page stale, as a changed example does.
    page = "<!-- reference: authguard.Public -->\nold text\n<!-- /reference -->\n"
    assert sync.render(page) != page
    assert sync.render(sync.render(page)) == sync.render(page)
