"""Inline the tested example code into the docs pages, so they read on GitHub too.

A page names its source in an HTML comment (invisible on GitHub and in mkdocs) and holds
the code itself in the fenced block that follows::

    <!-- snippet: docs/examples/quickstart.py -->
    ```python
    ...the file...
    ```
    <!-- /snippet -->

``path:section`` takes the lines between ``# --8<-- [start:section]`` and
``# --8<-- [end:section]`` (the markers of pymdownx.snippets). Marker lines are never copied.

``python scripts/sync_docs.py`` rewrites the pages; ``--check`` lists the pages whose code
differs from its source and exits 1 (the test suite runs it).
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
_BLOCK = re.compile(
    r"(?P<open><!-- snippet: (?P<src>[^ ]+) -->\n```(?P<lang>\w*)\n)(?P<code>.*?)"
    r"(?P<close>```\n<!-- /snippet -->)",
    re.S,
)
_MARKER = re.compile(r"^\s*# --8<-- \[(start|end):([\w-]+)\]\s*$")


def extract(src: str) -> str:
    """The code that ``src`` (``path`` or ``path:section``, from the repository root)
    names, dedented, without snippet markers."""
    path, _, section = src.partition(":")
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    if section:
        try:
            start = lines.index(f"# --8<-- [start:{section}]")
            end = lines.index(f"# --8<-- [end:{section}]")
        except ValueError:
            raise SystemExit(f"{src}: no section {section!r}") from None
        lines = lines[start + 1:end]
    kept = [line for line in lines if not _MARKER.match(line)]
    return textwrap.dedent("\n".join(kept)).strip("\n") + "\n"


def render(page: str) -> str:
    """``page`` with every snippet block's code taken from its source."""
    return _BLOCK.sub(lambda m: m["open"] + extract(m["src"]) + m["close"], page)


def stale_pages() -> list[Path]:
    """The pages whose inlined code differs from its source."""
    return [p for p in sorted(DOCS.rglob("*.md"))
            if render(text := p.read_text(encoding="utf-8")) != text]


def main(argv: list[str]) -> int:
    """Rewrite the pages (or, with ``--check``, only report the stale ones)."""
    stale = stale_pages()
    if "--check" in argv:
        for page in stale:
            print(f"{page.relative_to(ROOT)}: code differs from its source; "
                  "run python scripts/sync_docs.py")
        return 1 if stale else 0
    for page in stale:
        page.write_text(render(page.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"updated {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
