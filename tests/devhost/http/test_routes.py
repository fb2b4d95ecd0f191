"""Route templates compiled the way ASP.NET (and so the Functions host) matches them."""

from __future__ import annotations

import pytest

from devhost.http.routes import RouteTable, decode_path, join_prefix, parse_template, split_path


def match(template: str, path: str) -> dict[str, str] | None:
    return parse_template(template).match(split_path(path))


def test_literal_segments_match_case_insensitively() -> None:
    """Literal segments ignore case, and a single trailing slash is tolerated."""
    assert match("api/Health", "/API/health/") == {}
    assert match("api/health", "/api/healthz") is None
    assert match("api/health", "/api/health/extra") is None


def test_plain_parameter_takes_one_non_empty_segment() -> None:
    """``{name}`` captures exactly one segment, keeping its case."""
    assert match("api/greet/{name}", "/api/greet/Bob") == {"name": "Bob"}
    assert match("api/greet/{name}", "/api/greet") is None
    assert match("api/greet/{name}", "/api/greet/a/b") is None


def test_optional_parameter_may_be_missing() -> None:
    """``{name?}`` matches with or without its segment and is absent when missing."""
    assert match("api/greet/{name?}", "/api/greet") == {}
    assert match("api/greet/{name?}", "/api/greet/ann") == {"name": "ann"}


def test_default_value_fills_a_missing_parameter() -> None:
    """``{page=1}`` supplies its default when the segment is missing."""
    assert match("api/list/{page=1}", "/api/list") == {"page": "1"}
    assert match("api/list/{page=1}", "/api/list/3") == {"page": "3"}


def test_catch_all_takes_the_rest_of_the_path() -> None:
    """``{*rest}`` captures every remaining segment, and nothing at all is allowed."""
    assert match("api/files/{*rest}", "/api/files/a/b/c.txt") == {"rest": "a/b/c.txt"}
    assert match("api/files/{**rest}", "/api/files") == {}


@pytest.mark.parametrize(
    ("constraint", "good", "bad"),
    [
        ("int", ["42", "-7"], ["4.2", "abc", "99999999999"]),
        ("long", ["99999999999"], ["1e3"]),
        ("alpha", ["abcXYZ"], ["abc1"]),
        ("bool", ["true", "False"], ["yes", "1"]),
        ("guid", ["0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5bd9cb469fa16570867728950e",
                  "{0f8fad5b-d9cb-469f-a165-70867728950e}"], ["0f8fad5b-d9cb", "not-a-guid"]),
        ("double", ["1.5", "-2", "1e3"], ["1.5.6", "x"]),
        ("decimal", ["1.50"], ["1e3"]),
        ("min(10)", ["10", "11"], ["9"]),
        ("range(1,3)", ["2"], ["4"]),
        ("length(2)", ["ab"], ["abc"]),
        ("maxlength(3)", ["abc"], ["abcd"]),
        ("regex(^a+$)", ["aAa"], ["ab"]),
    ],
)
def test_inline_constraints_accept_and_reject(constraint: str, good: list[str], bad: list[str]) -> None:
    """Each inline constraint accepts values of its kind and rejects the rest."""
    template = parse_template(f"api/x/{{v:{constraint}}}")
    for value in good:
        assert template.match(["api", "x", value]) == {"v": value}, value
    for value in bad:
        assert template.match(["api", "x", value]) is None, value


def test_constraints_can_be_chained() -> None:
    """``{id:int:min(1)}`` applies both constraints."""
    assert match("api/{id:int:min(1)}", "/api/5") == {"id": "5"}
    assert match("api/{id:int:min(1)}", "/api/0") is None


def test_complex_segment_splits_on_the_last_literal() -> None:
    """``{file}.{ext}`` puts the dot as far right as possible, like ASP.NET."""
    assert match("api/f/{file}.{ext}", "/api/f/archive.tar.gz") == {"file": "archive.tar", "ext": "gz"}
    assert match("api/f/{file}.{ext}", "/api/f/noext") is None


@pytest.mark.parametrize(
    "template",
    ["api/{x:unknown}", "api/{*rest}/more", "api/{a}/{a}", "api/{a?}/b", "api/{a}{b}", "api/{x", "api/{x:int"],
)
def test_invalid_templates_are_rejected(template: str) -> None:
    """Templates ASP.NET would refuse raise ValueError."""
    with pytest.raises(ValueError):
        parse_template(template)


def test_table_prefers_literals_over_parameters() -> None:
    """A literal route wins over a parameter route regardless of registration order."""
    table: RouteTable[str] = RouteTable()
    table.add("api/items/{id}", None, "param")
    table.add("api/items/special", None, "literal")
    table.add("api/{*all}", None, "catch-all")
    assert table.match("GET", "/api/items/special").target == "literal"  # type: ignore[union-attr]
    assert table.match("GET", "/api/items/7").target == "param"  # type: ignore[union-attr]
    assert table.match("GET", "/api/other/thing").target == "catch-all"  # type: ignore[union-attr]


def test_table_filters_by_method() -> None:
    """A route with methods only matches those methods; no methods means all of them."""
    table: RouteTable[str] = RouteTable()
    table.add("api/a", ["get"], "a")
    table.add("api/b", None, "b")
    assert table.match("GET", "/api/a") is not None
    assert table.match("POST", "/api/a") is None
    assert table.match("PATCH", "/api/b") is not None


def test_prefix_joining_and_path_decoding() -> None:
    """The route prefix is joined with one slash (or dropped when empty) and %2F stays encoded."""
    assert join_prefix("api", "/orders/{id}") == "api/orders/{id}"
    assert join_prefix("", "orders") == "orders"
    assert decode_path("/api/a%20b/c%2Fd") == "/api/a b/c%2Fd"
