"""The ``authguard`` command: ``authguard audit MODULE:APP`` (alias ``routes``),
``authguard explain URL``, ``authguard report EVENTS.jsonl``.

Each subcommand lives in its own module, imported only when it runs, and provides
``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["main"]

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "audit": ("authguard.audit", "list every route of an app with its effective policy"),
    "explain": ("authguard.client.explain", "perform a request and explain a refusal"),
    "report": ("authguard.observability.report",
               "summarise a JSON event log: refusals by reason, route, client; findings"),
}
# Other names a subcommand answers to (``routes``: the audit's first name).
ALIASES: dict[str, list[str]] = {"audit": ["routes"]}
EXAMPLES: dict[str, str] = {
    "audit": "example:\n  authguard audit main:app --app-dir src --strict",
    "explain": "example:\n  authguard explain https://api.example.com/me -H 'X-API-Key: …'",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``authguard`` console script."""
    parser = argparse.ArgumentParser(prog="authguard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules: dict[str, ModuleType | None] = {}
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            sub.add_parser(name, aliases=ALIASES.get(name, []),
                           help=f"{help_text} (unavailable: {exc})")
            for alias in [name, *ALIASES.get(name, [])]:
                modules[alias] = None
            continue
        p = sub.add_parser(name, aliases=ALIASES.get(name, []), help=help_text,
                           description=help_text, epilog=EXAMPLES.get(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        for alias in [name, *ALIASES.get(name, [])]:
            modules[alias] = module
    args = parser.parse_args(argv)
    chosen = modules[args.command]
    if chosen is None:
        parser.error(f"'{args.command}' needs extra packages: pip install 'authguard[client]'")
    return int(chosen.run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
