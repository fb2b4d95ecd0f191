"""The Durable HTTP API's edge checks, as pure functions: each refusal names what was wrong."""

from __future__ import annotations

import base64
import json

import pytest

from devhost.http.validation import (
    InvalidInput,
    check_continuation_token,
    check_instance_id,
    check_top,
    json_depth,
    parse_json,
    utf16_length,
)


@pytest.mark.parametrize(
    ("instance_id", "fragment"),
    [
        ("@counter@c1", "must not start with @"),
        ("a/b", "must not contain /"),
        ("a\\b", "must not contain /"),
        ("a#b", "must not contain /"),
        ("a?b", "must not contain /"),
        ("a\x00b", "control characters"),
        ("a\x7fb", "control characters"),
        ("a\x85b", "control characters"),  # char.IsControl covers U+0080..U+009F too
        ("a" * 257, "must not exceed 256"),
        ("\U0001f600" * 129, "must not exceed 256"),  # 258 UTF-16 code units
        ("a\ud800", "lone UTF-16 surrogate"),
    ],
)
def test_instance_ids_the_extension_rejects(instance_id: str, fragment: str) -> None:
    """The rules of DurableClient.StartNewAsync, counted in UTF-16 code units as .NET does."""
    with pytest.raises(InvalidInput, match=fragment.replace("?", r"\?")):
        check_instance_id(instance_id)


@pytest.mark.parametrize("instance_id", ["a" * 256, "\U0001f600" * 128, "x@y", "a b", "ümlaut-1", "a.b:c|d"])
def test_instance_ids_the_extension_accepts(instance_id: str) -> None:
    """Everything else, up to 256 UTF-16 code units, is a valid id."""
    check_instance_id(instance_id)
    assert utf16_length(instance_id) <= 256


def test_json_depth_ignores_brackets_inside_strings() -> None:
    """Nesting is measured without recursion, and strings full of brackets do not count."""
    assert json_depth("[" * 5000 + "]" * 5000) == 5000
    assert json_depth('{"a": "[[[[{{{{\\"[[["}') == 1
    assert json_depth('"just text"') == 0


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[" * 2000 + "]" * 2000, "more than 64 deep"),
        ('"\\ud800"', "lone UTF-16 surrogate"),
        ('{"k\\udc00": 1}', "lone UTF-16 surrogate"),
        ("{", "not valid JSON"),
    ],
)
def test_json_bodies_that_are_refused(text: str, fragment: str) -> None:
    """Too deep, not Unicode, or not JSON: a 400 'Invalid JSON content', never a RecursionError."""
    with pytest.raises(InvalidInput, match=fragment) as caught:
        parse_json(text)
    assert caught.value.status == 400 and caught.value.title == "Invalid JSON content"


def test_json_at_the_depth_limit_and_surrogate_pairs_are_accepted() -> None:
    """64 levels parse; a proper surrogate pair is one emoji, not a lone surrogate."""
    assert parse_json("[" * 64 + "]" * 64) is not None
    assert parse_json('"\\ud83d\\ude00"') == "\U0001f600"


@pytest.mark.parametrize("token", ["x", "bnVsbA==", base64.urlsafe_b64encode(b"[1]").decode(), "%%%",
                                   base64.urlsafe_b64encode(b'{"PartitionKey": 3}').decode()])
def test_malformed_continuation_tokens(token: str) -> None:
    """Only tokens this API issued are taken back."""
    with pytest.raises(InvalidInput, match="continuation token"):
        check_continuation_token(token)


def test_issued_continuation_token_is_accepted() -> None:
    token = base64.urlsafe_b64encode(json.dumps({"NextPartitionKey": "a", "NextRowKey": ""}).encode()).decode()
    check_continuation_token(token)


@pytest.mark.parametrize("value", ["1e300", "2.5", "abc", "99999999999", "2147483648", ""])
def test_absurd_top_values(value: str) -> None:
    with pytest.raises(InvalidInput, match="'top' must be a whole number"):
        check_top(value)


@pytest.mark.parametrize("value", ["1", "100", " 7 ", "2147483647", "0", "-3"])
def test_top_values_int_parse_accepts(value: str) -> None:
    check_top(value)
