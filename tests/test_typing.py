"""Static types of the public API, checked by mypy (strict) on a small program: what a
user's editor and type checker see."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = textwrap.dedent('''
    from collections.abc import Awaitable, Callable
    from typing import Annotated, Any, assert_type

    from fastapi import FastAPI, Security

    from authguard import Anyone, Authenticated, HasRoles, HasScopes, Identity, StepUp
    from authguard.fastapi import require

    assert_type(require(Authenticated()), Callable[..., Awaitable[Identity]])
    assert_type(require(HasRoles("admin")), Callable[..., Awaitable[Identity]])
    assert_type(require(HasScopes("reports:read")), Callable[..., Awaitable[Identity]])
    assert_type(require(StepUp("mfa")), Callable[..., Awaitable[Identity]])
    # a route that lets anonymous requests through may have no identity
    assert_type(require(Anyone()), Callable[..., Awaitable[Identity | None]])
    assert_type(require(None), Callable[..., Awaitable[Identity | None]])

    app = FastAPI()

    @app.get("/reports")
    async def reports(
        who: Annotated[Identity, Security(require(Authenticated()), scopes=["reports:read"])],
    ) -> dict[str, Any]:
        return {"subject": who.subject}  # no "is not None" needed

    async def direct() -> None:
        who = await require(Authenticated())()
        assert_type(who, Identity)
        print(who.subject)
''')


def test_require_of_a_login_requirement_returns_an_identity(tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    out, err, status = mypy_api.run([
        "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
        "--python-version", "3.11", "--config-file", str(ROOT / "pyproject.toml"),
        str(program)])
    assert status == 0, out + err


def test_a_wrong_type_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a requirement that lets anonymous requests through is not
    typed as always giving an identity."""
    program = tmp_path / "program.py"
    program.write_text(PROGRAM + textwrap.dedent('''
        assert_type(require(Anyone()), Callable[..., Awaitable[Identity]])
    '''))
    out, err, status = mypy_api.run([
        "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
        "--python-version", "3.11", "--config-file", str(ROOT / "pyproject.toml"),
        str(program)])
    assert status == 1 and "assert-type" in out and out.count("error:") == 1, out + err
