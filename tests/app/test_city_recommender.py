"""Replay tests of `CityRecommender` through the SDK's real orchestrator entry point."""

import json
from datetime import timedelta
from typing import Any

import pytest

from activities.refine_recommendation import refine
from orchestrators.city_recommender import EXPIRED_MESSAGE
from tests.app.conftest import Replay, Reply
from tests.history_builder import DEFAULT_START as T0
from tests.history_builder import HistoryBuilder, parse_fire_at

EXPECTED = {
    1: (["Tokyo", "Seattle"], ["Spring", "Summer"]),
    2: (["Seattle", "London"], ["Summer"]),
    3: (["Tokyo", "London"], ["Spring", "Summer"]),
}


def waiting(replay: Replay, raw_input: Any = 1, **builder_args: Any) -> tuple[HistoryBuilder, Reply]:
    """Run episode 1 and record the timer its reply created, as the host would."""
    builder = HistoryBuilder(input=raw_input, name="CityRecommender", **builder_args).started()
    reply = replay(builder)
    builder.timer_created(reply.last_timer()["fireAt"])
    return builder, reply


@pytest.mark.parametrize("choice", [1, 2, 3])
@pytest.mark.parametrize("shape", ["number", "object", "numeric-string"])
def test_each_choice_sets_its_recommendation(replay: Replay, choice: int, shape: str) -> None:
    """Choices 1-3, in every accepted input shape, publish the article's cities and seasons and wait."""
    raw_input = {"number": choice, "object": {"choice": choice}, "numeric-string": str(choice)}[shape]
    _, reply = waiting(replay, raw_input)
    cities, seasons = EXPECTED[choice]
    assert not reply.is_done
    assert reply.custom_status == {
        "stage": "awaiting-selection",
        "recommendedCities": cities,
        "recommendedSeasons": seasons,
        "selectionExpiresAt": "2024-05-01T13:00:00Z",
    }
    assert reply.actions == [
        {
            "actionType": 11,
            "compoundActions": [
                {"actionType": 5, "fireAt": "2024-05-01T13:00:00.000000Z", "isCanceled": False},
                {"actionType": 6, "externalEventName": "UserSelection", "reason": "ExternalEvent"},
            ],
        }
    ]


def test_selection_timeout_from_input(replay: Replay) -> None:
    """`selectionTimeoutSeconds` sets the timer and the advertised expiry."""
    _, reply = waiting(replay, {"choice": 2, "selectionTimeoutSeconds": 90})
    assert parse_fire_at(reply.last_timer()["fireAt"]) == T0 + timedelta(seconds=90)
    assert reply.custom_status["selectionExpiresAt"] == "2024-05-01T12:01:30Z"


def test_started_through_the_webhook_with_a_raw_number(replay: Replay) -> None:
    """An instance started by a raw HTTP caller with body `3` (single-encoded input) works too."""
    _, reply = waiting(replay, 3, via="raw")
    assert reply.custom_status["recommendedCities"] == ["Tokyo", "London"]


@pytest.mark.parametrize(
    "raw_event_input",
    [
        pytest.param(r'"\"Tokyo\""', id="client-raise_event('Tokyo')"),
        pytest.param('"Tokyo"', id="raw-json-string"),
        pytest.param(r'"{\"city\": \"Tokyo\"}"', id="client-raise_event({'city': 'Tokyo'})"),
        pytest.param('{"city": "tokyo"}', id="raw-object-lowercase"),
    ],
)
def test_selection_refines_the_chosen_city(replay: Replay, raw_event_input: str) -> None:
    """A recommended city in any encoding cancels the timer, refines the city and completes with it."""
    builder, _ = waiting(replay, 1)
    builder.episode(after=timedelta(seconds=30)).raised_text("UserSelection", raw_event_input)
    reply = replay(builder)
    assert not reply.is_done
    assert reply.custom_status == {"stage": "refining", "selectedCity": "Tokyo"}
    assert reply.actions[0]["compoundActions"][0]["isCanceled"] is True
    assert reply.actions[1]["functionName"] == "RefineRecommendation"
    assert json.loads(reply.actions[1]["input"]) == {"city": "Tokyo", "seasons": ["Spring", "Summer"]}

    refined = refine("Tokyo", ["Spring", "Summer"])
    builder.scheduled("RefineRecommendation").episode(after=timedelta(seconds=1)).completed(1, refined)
    reply = replay(builder)
    expected = {"stage": "refined", "selectedCity": "Tokyo", "recommendation": refined}
    assert reply.is_done
    assert reply.output == expected
    assert reply.custom_status == expected
    assert reply.custom_status["recommendation"]["bestSeason"] == "Spring"


def test_timeout_expires_the_selection(replay: Replay) -> None:
    """With no selection before the deadline the orchestration completes as expired."""
    builder, _ = waiting(replay, 2)
    builder.episode(T0 + timedelta(hours=1)).timer_fired(0)
    reply = replay(builder)
    expected = {"stage": "expired", "message": EXPIRED_MESSAGE}
    assert reply.is_done
    assert reply.output == expected
    assert reply.custom_status == expected
    assert reply.last_timer()["isCanceled"] is False


def test_city_that_is_not_recommended_is_ignored(replay: Replay) -> None:
    """A non-recommended city keeps the instance waiting, same deadline, on a fresh timer; a valid one then wins."""
    builder, _ = waiting(replay, 2)  # Seattle, London
    builder.episode(after=timedelta(seconds=10)).raised("UserSelection", "Tokyo")
    reply = replay(builder)
    assert not reply.is_done
    assert reply.custom_status["stage"] == "awaiting-selection"
    assert reply.custom_status["recommendedCities"] == ["Seattle", "London"]
    assert reply.custom_status["lastRejectedSelection"] == "Tokyo"
    first, second = reply.actions
    assert first["compoundActions"][0]["isCanceled"] is True
    assert second["compoundActions"][0] == {
        "actionType": 5,
        "fireAt": "2024-05-01T13:00:00.000000Z",
        "isCanceled": False,
    }

    builder.timer_created(reply.last_timer()["fireAt"])
    builder.episode(after=timedelta(seconds=10)).raised("UserSelection", "London")
    reply = replay(builder)
    assert reply.custom_status == {"stage": "refining", "selectedCity": "London"}
    assert reply.actions[-1]["functionName"] == "RefineRecommendation"


def test_cancelled_timer_firing_late_does_not_expire(replay: Replay) -> None:
    """The TimerFired of a cancelled timer (DTFx still delivers it) leaves the newer wait running."""
    builder, _ = waiting(replay, 2)
    builder.episode(after=timedelta(seconds=10)).raised("UserSelection", "Paris")
    reply = replay(builder)
    builder.timer_created(reply.last_timer()["fireAt"])
    builder.episode(T0 + timedelta(hours=1)).timer_fired(0)
    reply = replay(builder)
    assert not reply.is_done
    assert reply.custom_status["stage"] == "awaiting-selection"
    builder.episode(after=timedelta(milliseconds=5)).timer_fired(1)
    reply = replay(builder)
    assert reply.is_done
    assert reply.output["stage"] == "expired"


def test_replay_is_deterministic(replay: Replay) -> None:
    """Replaying the same history twice gives byte-identical decisions."""
    builder, _ = waiting(replay, 3)
    builder.episode(after=timedelta(seconds=3)).raised("UserSelection", "London")
    assert replay(builder).state == replay(builder).state


@pytest.mark.parametrize(
    "bad_input",
    [
        None,
        0,
        4,
        7,
        -1,
        1.5,
        True,
        "abc",
        "",
        [1],
        {"choice": 9},
        {"selectionTimeoutSeconds": 5},
        {"choice": 1, "selectionTimeoutSeconds": -1},
        {"choice": 1, "selectionTimeoutSeconds": 10**9},
        {"choice": 1, "extra": True},
    ],
)
def test_invalid_input_fails_without_actions(replay: Replay, bad_input: Any) -> None:
    """An input the starter would reject fails the orchestration with a readable error and no actions."""
    reply = replay(HistoryBuilder(input=bad_input, name="CityRecommender").started())
    assert reply.error
    assert reply.actions == []
    assert reply.custom_status == {"stage": "invalid-input", "error": reply.error}
