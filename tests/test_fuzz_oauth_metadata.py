"""Fuzzing the RFC 9728 metadata routes: any method, ``Host``, forwarding and credential
headers, as raw bytes. Never a 5xx; a GET or HEAD always gets the configured document
(nothing of the request reaches it); the document stays public whatever credentials come."""

from __future__ import annotations

import functools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rawasgi
from test_oauth_metadata import RESOURCE, app_with, resource

FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
PATHS = ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource",
         "/.well-known/oauth-protected-resource/mcp/", "/.well-known/oauth-protected-resource/x"]

_FIELD = bytes(range(0x21, 0x7F)) + b" \t" + bytes(range(0x80, 0x100))
field_bytes = st.lists(st.sampled_from(_FIELD), max_size=80).map(bytes)
header = st.tuples(
    st.sampled_from([b"host", b"x-forwarded-host", b"x-forwarded-proto", b"forwarded",
                     b"authorization", b"dpop", b"origin", b"access-control-request-method",
                     b"accept", b"if-none-match", b"cookie"]),
    st.one_of(field_bytes, st.sampled_from([b"evil.example", b"Bearer x.y.z", b"GET",
                                            b"https://evil.example", b"*"])))


@functools.cache
def app() -> Any:
    return app_with(resource())


@FUZZ
@given(method=st.sampled_from(["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "TRACE"]),
       path=st.sampled_from(PATHS), hdrs=st.lists(header, max_size=6))
async def test_fuzzed_requests_to_the_metadata_document(
        method: str, path: str, hdrs: list[tuple[bytes, bytes]]) -> None:
    answer = await rawasgi.http(app(), method, path, hdrs)
    rawasgi.check_answer(answer, method)
    assert answer.status < 500, answer.status
    if method == "GET" and answer.status == 200:
        document = json.loads(answer.body)
        assert document["resource"] == RESOURCE  # never built from the request's Host
        assert b"evil" not in answer.body


async def test_a_forged_host_still_gets_the_configured_document() -> None:
    """The fuzzed GETs above do reach the document: one with a forged Host gets it whole."""
    answer = await rawasgi.http(app(), "GET", PATHS[0], [(b"host", b"evil.example"),
                                                         (b"authorization", b"Bearer x.y.z")])
    assert answer.status == 200
    assert json.loads(answer.body)["resource"] == RESOURCE
