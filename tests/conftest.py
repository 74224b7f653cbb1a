"""Fixtures shared by the whole suite."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from helpers import EXAMPLE_DIR, uvicorn_server

if str(EXAMPLE_DIR) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_DIR))


@pytest.fixture(scope="session")
def example_server() -> Iterator[str]:
    """The example app under real uvicorn (shared by the session's end-to-end tests).

    Tests that change its state (revocations, logouts, failed attempts) start their own.
    """
    with uvicorn_server("app:app", env={"AUTHGUARD_DEMO_FAILURE_LIMIT": "1000"}) as url:
        yield url
