"""Tests of the activity functions, called through the app's indexed functions."""

import hashlib

import azure.functions as func
import pytest

from activities.calculate_discount import MAX_DISCOUNT, MIN_DISCOUNT, discount_for
from activities.refine_recommendation import TRAVEL_NOTES, refine
from orchestrators.inputs import RECOMMENDATIONS


def test_discount_is_stable_and_in_range(indexed_functions: dict[str, func.Function]) -> None:
    """The same user always gets the same 5-30 % discount, and different users get varied ones."""
    calculate = indexed_functions["CalculateDiscount"].get_user_function()
    discounts = {user: calculate(user) for user in (f"user-{n}" for n in range(200))}
    assert all(MIN_DISCOUNT <= d <= MAX_DISCOUNT for d in discounts.values())
    assert calculate("user-7") == discounts["user-7"] == discount_for("user-7")
    assert len(set(discounts.values())) > 10


def test_discount_hashes_the_exact_string() -> None:
    """The discount is derived from the id's own characters, so "00123" is not treated as 123."""
    for user_id in ("00123", "123", "Ünïcode-ü"):
        digest = hashlib.sha256(user_id.encode("utf-8")).digest()
        assert discount_for(user_id) == MIN_DISCOUNT + int.from_bytes(digest[:8], "big") % 26


@pytest.mark.parametrize("bad", ["", None, 123])
def test_discount_rejects_non_string_ids(indexed_functions: dict[str, func.Function], bad: object) -> None:
    """A missing or non-string user id is an activity failure, not a silent 0 % discount."""
    with pytest.raises(ValueError):
        indexed_functions["CalculateDiscount"].get_user_function()(bad)


@pytest.mark.parametrize("choice", sorted(RECOMMENDATIONS))
def test_every_recommended_city_can_be_refined(choice: int) -> None:
    """Every city any segment recommends has notes, and the best season is one of the segment's seasons."""
    cities, seasons = RECOMMENDATIONS[choice]
    for city in cities:
        refined = refine(city, list(seasons))
        assert refined["city"] == city
        assert refined["bestSeason"] in seasons
        assert refined["sights"] and refined["tip"] == TRAVEL_NOTES[city]["tips"][refined["bestSeason"]]


def test_refine_breaks_ties_by_segment_order(indexed_functions: dict[str, func.Function]) -> None:
    """London rates Spring and Summer equally, so the first listed season wins."""
    refine_fn = indexed_functions["RefineRecommendation"].get_user_function()
    assert refine_fn({"city": "London", "seasons": ["Spring", "Summer"]})["bestSeason"] == "Spring"
    assert refine_fn({"city": "London", "seasons": ["Summer", "Spring"]})["bestSeason"] == "Summer"


def test_refine_rejects_unknown_cities(indexed_functions: dict[str, func.Function]) -> None:
    """A city without notes fails the activity with a message naming the known cities."""
    with pytest.raises(ValueError, match="known cities"):
        indexed_functions["RefineRecommendation"].get_user_function()({"city": "Paris", "seasons": []})


def test_perform_action(indexed_functions: dict[str, func.Function]) -> None:
    """PerformAction reports the step it carried out and rejects malformed requests."""
    perform = indexed_functions["PerformAction"].get_user_function()
    assert perform({"action": "B", "step": 2}) == {"action": "B", "step": 2, "result": "Action B completed."}
    with pytest.raises(ValueError):
        perform("B")
