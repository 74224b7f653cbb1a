"""Fixtures shared by the whole suite."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

import leakcheck
from helpers import EXAMPLE_DIR, uvicorn_server

if str(EXAMPLE_DIR) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_DIR))


def pytest_configure(config: pytest.Config) -> None:
    """Record every log record from the start (see leakcheck.py)."""
    leakcheck.install()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The secrets-leak check runs last, over everything the suite produced."""
    last = [i for i in items if i.path.name == "test_secrets_leak.py"]
    items[:] = [i for i in items if i not in last] + last


def pytest_runtest_setup(item: pytest.Item) -> None:
    leakcheck.RECORDER.current = item.nodeid


@pytest.fixture(scope="session")
def example_server() -> Iterator[str]:
    """The example app under real uvicorn (shared by the session's end-to-end tests).

    Tests that change its state (revocations, logouts, failed attempts) start their own.
    """
    with uvicorn_server("app:app", env={"AUTHGUARD_DEMO_FAILURE_LIMIT": "1000"}) as url:
        yield url
