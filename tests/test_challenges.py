"""WWW-Authenticate building and strict parsing (RFC 9110 §11), property-based."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authguard import Challenge, ChallengeParseError, HeaderValueError, parse_www_authenticate
from authguard.challenges import format_challenge

TCHAR = "!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-"
tokens = st.text(alphabet=TCHAR, min_size=1, max_size=12)
# Everything a quoted-string can carry: HTAB, SP, VCHAR, obs-text (Latin-1 high half).
values = st.text(alphabet=st.sampled_from(
    ["\t", *map(chr, range(0x20, 0x7F)), *map(chr, range(0x80, 0x100))]), max_size=40)
params = st.dictionaries(tokens, values, max_size=5).filter(
    lambda d: len({k.lower() for k in d}) == len(d))


@given(tokens, params)
def test_round_trip_one_challenge(scheme: str, p: dict[str, str]) -> None:
    built = Challenge(scheme, p)
    parsed = parse_www_authenticate(format_challenge(built))
    assert len(parsed) == 1
    assert parsed[0].scheme == scheme
    assert dict(parsed[0].params) == p


@given(st.lists(st.tuples(tokens, params), min_size=1, max_size=4))
def test_round_trip_several_challenges_in_one_field(
    items: list[tuple[str, dict[str, str]]],
) -> None:
    line = ", ".join(format_challenge(Challenge(s, p)) for s, p in items)
    parsed = parse_www_authenticate(line)
    assert [(c.scheme, dict(c.params)) for c in parsed] == items


@given(st.text(max_size=60))
@settings(max_examples=300)
def test_garbage_raises_only_the_documented_error(text: str) -> None:
    try:
        parse_www_authenticate(text)
    except ChallengeParseError:
        pass


@given(values.filter(lambda v: v != ""), st.sampled_from(["\r", "\n", "\x00", "\x7f", "\x1b"]))
def test_builder_refuses_control_characters(value: str, bad: str) -> None:
    with pytest.raises(HeaderValueError):
        Challenge("Basic", {"realm": value + bad})


def test_escaping_and_case_insensitive_names() -> None:
    line = format_challenge(Challenge("Basic", {"realm": 'a "b" \\ c'}))
    assert line == 'Basic realm="a \\"b\\" \\\\ c"'
    ch = parse_www_authenticate(['BASIC REALM="x"', "Bearer"])
    assert ch[0].params["realm"] == "x" and [c.scheme for c in ch] == ["BASIC", "Bearer"]


@pytest.mark.parametrize("bad", ['Basic realm="x', "Basic realm=x, realm=y", '"x"',
                                 "Basic realm=x junk", "Basic a=b=c", "=x"])
def test_malformed_values(bad: str) -> None:
    with pytest.raises(ChallengeParseError):
        parse_www_authenticate(bad)


def test_token68_with_padding_is_not_a_parameter() -> None:
    assert parse_www_authenticate("Basic realm=")[0].token68 == "realm="


def test_token68_and_empty_elements() -> None:
    ch = parse_www_authenticate(", Negotiate abc==, , NTLM")
    assert [(c.scheme, c.token68) for c in ch] == [("Negotiate", "abc=="), ("NTLM", None)]
