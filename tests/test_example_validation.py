"""The example app's 422s never echo what was sent (a password) and never fail to encode."""

from __future__ import annotations

import pytest

from helpers import asgi_client
from rawasgi import load_example_app

SECRET = "S3cret-password-never-echoed-0123"


@pytest.mark.parametrize(("path", "body"), [
    ("/login", '{"username": "alice", "password": 12345678}'),
    ("/login", '{"username": "alice", "password": "' + SECRET * 40 + '", "extra": NaN}'),
    ("/login", '{"username": NaN, "password": "' + SECRET + '"}'),
    ("/login", '{"username": "\\ud800", "password": "' + SECRET + '"}'),
    ("/login", '{"username": "alice", "password": "' + SECRET + '"'),
    ("/billing/pay", '{"challenge": "\\ud800"}'),
    ("/billing/pay", '{"challenge": ' + '[' * 50 + ']' * 50 + '}'),
])
async def test_bad_bodies_get_a_422_without_the_input(path: str, body: str) -> None:
    app = load_example_app("validation", {}).app
    async with asgi_client(app) as client:
        r = await client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert SECRET not in r.text and "12345678" not in r.text
    for error in r.json()["detail"]:
        assert set(error) == {"loc", "msg", "type"}


async def test_admin_revoke_refuses_an_empty_subject_or_jti() -> None:
    app = load_example_app("validation-revoke", {}).app
    async with asgi_client(app) as client:
        for body in ({"subject": ""}, {"jti": ""}):
            r = await client.post("/admin/revoke", json=body, auth=("bob", "builder"))
            assert r.status_code == 422, body
