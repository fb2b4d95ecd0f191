"""Unit tests of the shared input validators and the external-event readers."""

from typing import Any

import pytest

from orchestrators.events import (
    Confirmation,
    match_city,
    normalize_event_data,
    read_confirmation,
    read_selected_city,
)
from orchestrators.inputs import (
    STARTABLE,
    InputError,
    parse_city_recommender_input,
    parse_reserve_ticket_input,
    parse_set_status_test_input,
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('"Tokyo"', "Tokyo"),
        ("Tokyo", "Tokyo"),
        ('{"city": "Tokyo"}', {"city": "Tokyo"}),
        ({"city": "Tokyo"}, {"city": "Tokyo"}),
        ("false", False),
        (False, False),
        ('"false"', "false"),
        ("null", None),
        (None, None),
        (3, 3),
    ],
)
def test_normalize_event_data_undoes_one_encoding(data: Any, expected: Any) -> None:
    """A str holding JSON text is parsed exactly once; anything else passes through."""
    assert normalize_event_data(data) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (True, Confirmation.CONFIRMED),
        ("true", Confirmation.CONFIRMED),
        ('"true"', Confirmation.CONFIRMED),
        ("TRUE", Confirmation.CONFIRMED),
        ({"confirmed": True}, Confirmation.CONFIRMED),
        ('{"confirmed": true}', Confirmation.CONFIRMED),
        (False, Confirmation.DECLINED),
        ("false", Confirmation.DECLINED),
        ('"false"', Confirmation.DECLINED),
        ({"confirmed": "false"}, Confirmation.DECLINED),
        ({"confirmed": False}, Confirmation.DECLINED),
        ({}, Confirmation.DECLINED),
        (None, Confirmation.DECLINED),
        (1, Confirmation.DECLINED),
        ("yes", Confirmation.DECLINED),
    ],
)
def test_read_confirmation(data: Any, expected: Confirmation) -> None:
    """Only true in its encodings confirms; the string "false" never does."""
    assert read_confirmation(data) is expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('"Tokyo"', "Tokyo"),
        ("tokyo", "Tokyo"),
        (" Seattle ", "Seattle"),
        ({"city": "Seattle"}, "Seattle"),
        ('{"city": "SEATTLE"}', "Seattle"),
        ("London", None),
        ({"town": "Tokyo"}, None),
        (7, None),
        (None, None),
    ],
)
def test_read_selected_city(data: Any, expected: str | None) -> None:
    """The selection is matched case-insensitively against the recommended cities only."""
    assert read_selected_city(data, ["Tokyo", "Seattle"]) == expected


def test_match_city_returns_the_canonical_spelling() -> None:
    """The allowed list's spelling wins over the caller's."""
    assert match_city("lOnDoN", ["Seattle", "London"]) == "London"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, {"choice": 1, "selectionTimeoutSeconds": 3600}),
        ("3", {"choice": 3, "selectionTimeoutSeconds": 3600}),
        (2.0, {"choice": 2, "selectionTimeoutSeconds": 3600}),
        ({"choice": 2, "selectionTimeoutSeconds": 30}, {"choice": 2, "selectionTimeoutSeconds": 30}),
    ],
)
def test_city_recommender_input_is_normalised(raw: Any, expected: dict[str, Any]) -> None:
    """Every accepted shape becomes the same object form, which is what the starter passes on."""
    assert parse_city_recommender_input(raw).to_json() == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("007", {"userId": "007", "discountTimeout": 60}),
        ({"userId": "u-1", "discountTimeout": 5}, {"userId": "u-1", "discountTimeout": 5}),
    ],
)
def test_reserve_ticket_input_keeps_the_user_id_string(raw: Any, expected: dict[str, Any]) -> None:
    """The user id is never turned into a number, leading zeros included."""
    assert parse_reserve_ticket_input(raw).to_json() == expected


def test_set_status_test_input_defaults() -> None:
    """No input means a 2 s delay; 0 is allowed."""
    assert parse_set_status_test_input(None).to_json() == {"stepDelaySeconds": 2}
    assert parse_set_status_test_input({"stepDelaySeconds": 0}).to_json() == {"stepDelaySeconds": 0}


@pytest.mark.parametrize(
    ("name", "raw", "fragment"),
    [
        ("CityRecommender", 7, "'choice' must be one of 1, 2, 3"),
        ("CityRecommender", None, "needs an input"),
        ("CityRecommender", {"choice": 1, "selectionTimeoutSeconds": -1}, "between 1 and"),
        ("CityRecommender", {"choice": 1, "colour": "red"}, "Unknown field(s) colour"),
        ("ReserveTicket", "", "must not be empty"),
        ("ReserveTicket", 42, "must be a string"),
        ("ReserveTicket", {"discountTimeout": 5}, "'userId' is required"),
        ("ReserveTicket", {"userId": "u", "discountTimeout": "60"}, "whole number of seconds"),
        ("SetStatusTest", [], "takes no input"),
        ("SetStatusTest", {"stepDelaySeconds": -2}, "between 0 and"),
    ],
)
def test_invalid_inputs_explain_themselves(name: str, raw: Any, fragment: str) -> None:
    """Each rejected input raises InputError with a message naming the problem."""
    with pytest.raises(InputError, match=None) as caught:
        STARTABLE[name](raw)
    assert fragment in str(caught.value)
