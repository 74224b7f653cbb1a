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

Two more kinds of generated block, for what mkdocs would otherwise pull in at build time
(``--8<-- "FILE"`` and mkdocstrings' ``::: name``, which GitHub shows as raw directives):

* ``<!-- include: SECURITY.md -->`` … ``<!-- /include -->``: a whole Markdown file;
* ``<!-- reference: authguard.client -->`` … ``<!-- /reference -->``: the API reference of
  a module (each name of its ``__all__``) or of one object, with signatures and the first
  paragraph of each docstring, generated from the code (``authguard``: names sorted).

``python scripts/sync_docs.py`` rewrites the pages; ``--check`` lists the pages whose
generated content differs from its source and exits 1 (the test suite runs it).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
DOCS = ROOT / "docs"
_BLOCK = re.compile(
    r"(?P<open><!-- snippet: (?P<src>[^ ]+) -->\n```(?P<lang>\w*)\n)(?P<code>.*?)"
    r"(?P<close>```\n<!-- /snippet -->)",
    re.S,
)
_MARKER = re.compile(r"^\s*# --8<-- \[(start|end):([\w-]+)\]\s*$")
_INCLUDE = re.compile(r"(?P<open><!-- include: (?P<src>[^ ]+) -->\n)(?P<body>.*?)"
                      r"(?P<close><!-- /include -->)", re.S)
_REFERENCE = re.compile(r"(?P<open><!-- reference: (?P<name>[\w.]+) -->\n)(?P<body>.*?)"
                        r"(?P<close><!-- /reference -->)", re.S)


def extract(src: str) -> str:
    """The code that ``src`` (``path`` or ``path:section``, from the repository root)
    names, dedented, without snippet markers."""
    path, _, section = src.partition(":")
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    if section:
        stripped = [line.strip() for line in lines]
        try:
            start = stripped.index(f"# --8<-- [start:{section}]")
            end = stripped.index(f"# --8<-- [end:{section}]")
        except ValueError:
            raise SystemExit(f"{src}: no section {section!r}") from None
        lines = lines[start + 1:end]
    kept = [line for line in lines if not _MARKER.match(line)]
    return textwrap.dedent("\n".join(kept)).strip("\n") + "\n"


def include(src: str) -> str:
    """The Markdown file ``src`` (from the repository root), to be inlined."""
    return (ROOT / src).read_text(encoding="utf-8").strip("\n") + "\n"


# -- the API reference, from the code ---------------------------------------------------

_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj):`~?([^`]+)`")


def _markdown(text: str) -> str:
    """reStructuredText roles and literals as Markdown code spans."""
    text = _ROLE.sub(lambda m: f"`{m[1].rsplit('.', 1)[-1] if m[0].count('~') else m[1]}`",
                     text)
    return text.replace("``", "`")


def _summary(obj: Any) -> str:
    """The first paragraph of ``obj``'s own docstring, on one line ('' if none)."""
    doc = obj.__doc__ if isinstance(obj.__doc__, str) else None
    if not doc:
        return ""
    first = inspect.cleandoc(doc).split("\n\n", 1)[0]
    return _markdown(" ".join(first.split()))


def _annotation(ann: Any) -> str:
    return ann if isinstance(ann, str) else inspect.formatannotation(ann)


def _default(value: Any) -> str:
    if value is dataclasses.MISSING:
        return "..."
    if isinstance(value, frozenset | set):  # repr order varies from run to run
        items = ", ".join(sorted(repr(v) for v in value))
        text = f"{type(value).__name__}({{{items}}})" if value else f"{type(value).__name__}()"
    else:
        text = repr(value)
    return "..." if " at 0x" in text or len(text) > 60 else text


def _signature(obj: Any) -> str:
    """``(a: int, *, b: str = 'x') -> bool``, from the annotations as written."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    parts: list[str] = []
    star = False
    params = list(sig.parameters.values())
    for i, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        star = star or p.kind is p.VAR_POSITIONAL
        if p.annotation is not p.empty:
            text += ": " + _annotation(p.annotation)
        if p.default is not p.empty:
            text += (" = " if p.annotation is not p.empty else "=") + _default(p.default)
        parts.append(text)
        if p.kind is p.POSITIONAL_ONLY and (
                i + 1 == len(params) or params[i + 1].kind is not p.POSITIONAL_ONLY):
            parts.append("/")
    out = "(" + ", ".join(parts) + ")"
    if sig.return_annotation is not sig.empty and not inspect.isclass(obj):
        out += " -> " + _annotation(sig.return_annotation)
    return out


def _members(cls: type) -> list[str]:
    """One line per public method and property defined on ``cls`` itself."""
    lines: list[str] = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property):
            lines.append(f"- `{name}` (property) — {_summary(value)}".rstrip(" —"))
        elif isinstance(value, staticmethod | classmethod):
            fn = value.__func__
            bound = fn if isinstance(value, staticmethod) else getattr(cls, name)
            lines.append(f"- `{name}{_signature(bound)}` — {_summary(fn)}".rstrip(" —"))
        elif inspect.isfunction(value):
            prefix = "async " if inspect.iscoroutinefunction(value) else ""
            sig = _signature(value).replace("(self, ", "(", 1).replace("(self)", "()", 1)
            lines.append(f"- `{prefix}{name}{sig}` — {_summary(value)}".rstrip(" —"))
    return lines


def reference_of(qualname: str, *, level: int = 3) -> str:
    """The Markdown reference of ``qualname`` (a module: each name of its ``__all__``)."""
    try:
        obj: Any = importlib.import_module(qualname)
    except ModuleNotFoundError:
        module, _, name = qualname.rpartition(".")
        obj = getattr(importlib.import_module(module), name)
    if inspect.ismodule(obj):
        names = list(getattr(obj, "__all__", ()))
        if obj.__name__ == "authguard":
            names.sort(key=str.lower)
        return "\n".join(_entry(n, getattr(obj, n), level) for n in names)
    return _entry(qualname.rsplit(".", 1)[-1], obj, level)


def _entry(name: str, obj: Any, level: int) -> str:
    head = "#" * level + f" `{name}`\n\n"
    if inspect.isclass(obj):
        if issubclass(obj, enum.Enum):
            values = ", ".join(f"`{m.value}`" for m in obj)
            body = f"```python\nclass {name}({obj.__bases__[0].__name__})\n```\n\n"
            body += (_summary(obj) + "\n\n" if _summary(obj) else "") + f"Members: {values}.\n"
            return head + body
        kind = "exception" if issubclass(obj, BaseException) else "class"
        sig = "" if kind == "exception" else _signature(obj)
        if getattr(obj, "_is_protocol", False):
            sig = "(Protocol)"
        body = f"```python\n{kind} {name}{sig}\n```\n\n"
        if _summary(obj):
            body += _summary(obj) + "\n\n"
        members = _members(obj)
        if members:
            body += "\n".join(members) + "\n"
        return head + body
    if callable(obj):
        prefix = "async def" if inspect.iscoroutinefunction(obj) else "def"
        body = f"```python\n{prefix} {name}{_signature(obj)}\n```\n\n"
        return head + body + (_summary(obj) + "\n" if _summary(obj) else "")
    text = repr(obj) if len(repr(obj)) <= 100 else type(obj).__name__ + "(...)"
    return head + f"```python\n{name} = {text}\n```\n"


def render(page: str) -> str:
    """``page`` with every generated block taken from its source."""
    page = _BLOCK.sub(lambda m: m["open"] + extract(m["src"]) + m["close"], page)
    page = _INCLUDE.sub(lambda m: m["open"] + include(m["src"]) + m["close"], page)
    return _REFERENCE.sub(
        lambda m: m["open"] + "\n" + reference_of(m["name"]) + "\n" + m["close"], page)


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
