"""What an event reads from a refused request's JWT: hostile tokens give empty facts, never
an error, and the facts of a readable one are right."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from authguard.observability.tokens import TokenFacts, token_facts
from authguard.reasons import Reason


def _scope(value: bytes) -> dict[str, object]:
    return {"type": "http", "headers": [(b"authorization", value)]}


def _part(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


GOOD_HEADER = _part(b'{"alg":"HS256","kid":"k1"}')


@pytest.mark.parametrize("token", [
    b"a.b.c",  # not base64 of JSON
    b"!!!.@@@.###",  # not base64url at all
    _part(b"[1,2]") + b"." + _part(b"{}") + b".x",  # a header that is not an object
    GOOD_HEADER + b"." + _part(b'"claims"') + b".x",  # claims that are not an object
    GOOD_HEADER + b"." + _part(b"\xff\xfe\x00{") + b".x",  # not UTF-8
    GOOD_HEADER + b"." + _part(b"[" * 100_000) + b".x",  # nested past the recursion limit
    b"x" * 9000 + b"..",  # longer than what is read
    GOOD_HEADER + b"." + _part(b"{}"),  # two parts
])
def test_hostile_tokens_give_empty_facts(token: bytes) -> None:
    assert token_facts(_scope(b"Bearer " + token), Reason.TOKEN_EXPIRED, 0.0) == TokenFacts()


def test_the_facts_of_a_readable_token() -> None:
    token = jwt.encode({"iss": "https://issuer.example", "aud": ["api", "other"],
                        "azp": "client-7", "exp": 1000}, "k" * 32, algorithm="HS256",
                       headers={"kid": "k1"}).encode()
    facts = token_facts(_scope(b"Bearer " + token), Reason.TOKEN_EXPIRED, 1012.5)
    assert facts == TokenFacts(issuer="https://issuer.example", kid="k1",
                               audience="api other", client_id="client-7", skew_seconds=12.5)
    forged = json.dumps({"iss": "x\r\nFAKE LINE", "exp": 1}).encode()
    facts = token_facts(_scope(b"DPoP " + GOOD_HEADER + b"." + _part(forged) + b".sig"),
                        Reason.TOKEN_EXPIRED, 2.0)
    assert facts.issuer is not None and "\n" not in facts.issuer and "\r" not in facts.issuer
    assert facts.skew_seconds == 1.0
