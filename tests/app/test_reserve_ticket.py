"""Replay tests of `ReserveTicket` through the SDK's real orchestrator entry point."""

from datetime import timedelta
from typing import Any

import pytest

from activities.calculate_discount import discount_for
from orchestrators.reserve_ticket import BOOKING_URL, CONFIRMED_MESSAGE, DECLINED_MESSAGE, EXPIRED_MESSAGE
from tests.app.conftest import Replay, Reply
from tests.history_builder import DEFAULT_START as T0
from tests.history_builder import HistoryBuilder, parse_fire_at

DISCOUNT_AT = T0 + timedelta(seconds=2)


def offer(replay: Replay, raw_input: Any = "u-1", discount: int = 15) -> tuple[HistoryBuilder, Reply]:
    """Run episodes 1-2 (discount calculated, offer shown) and record the timer the reply created."""
    builder = HistoryBuilder(input=raw_input, name="ReserveTicket").started()
    replay(builder)
    builder.scheduled("CalculateDiscount").episode(DISCOUNT_AT).completed(0, discount)
    reply = replay(builder)
    builder.timer_created(reply.last_timer()["fireAt"])
    return builder, reply


def test_first_episode_schedules_the_discount(replay: Replay) -> None:
    """The first episode only calls CalculateDiscount with the user id and sets no status yet."""
    reply = replay(HistoryBuilder(input="u-1", name="ReserveTicket").started())
    assert not reply.is_done
    assert reply.actions == [{"actionType": 0, "functionName": "CalculateDiscount", "input": '"u-1"'}]
    assert reply.custom_status is None


@pytest.mark.parametrize("user_id", ["00123", "123", "user@example.com", "  padded  "])
def test_user_id_is_passed_on_as_the_exact_string(replay: Replay, user_id: str) -> None:
    """Numeric-looking ids stay strings (leading zeros intact) on their way to the activity."""
    reply = replay(HistoryBuilder(input=user_id, name="ReserveTicket").started())
    assert reply.actions[0]["input"] == f'"{user_id}"'


def test_started_through_the_webhook_with_a_raw_string(replay: Replay) -> None:
    """An instance started by a raw HTTP caller with body `"u-1"` (single-encoded input) works too."""
    reply = replay(HistoryBuilder(input="u-1", name="ReserveTicket", via="raw").started())
    assert reply.actions[0]["input"] == '"u-1"'


def test_offer_status_and_timer(replay: Replay) -> None:
    """After the discount the status carries the article's instructions and a 60 s timer races the event."""
    _, reply = offer(replay, discount=15)
    assert reply.custom_status == {
        "discount": 15,
        "discountTimeout": 60,
        "bookingUrl": BOOKING_URL,
        "expiresAt": "2024-05-01T12:01:02Z",
    }
    assert reply.actions[1] == {
        "actionType": 11,
        "compoundActions": [
            {"actionType": 5, "fireAt": "2024-05-01T12:01:02.000000Z", "isCanceled": False},
            {"actionType": 6, "externalEventName": "BookingConfirmed", "reason": "ExternalEvent"},
        ],
    }


def test_custom_discount_timeout(replay: Replay) -> None:
    """`discountTimeout` from the object input drives both the status and the timer."""
    _, reply = offer(replay, raw_input={"userId": "u-1", "discountTimeout": 300})
    assert reply.custom_status["discountTimeout"] == 300
    assert parse_fire_at(reply.last_timer()["fireAt"]) == DISCOUNT_AT + timedelta(seconds=300)


@pytest.mark.parametrize(
    "raw_event_input",
    [
        pytest.param("true", id="raw-json-true"),
        pytest.param('"true"', id="client-raise_event(True)"),
        pytest.param(r'"\"true\""', id="client-raise_event('true')"),
        pytest.param('{"confirmed": true}', id="raw-object"),
        pytest.param(r'"{\"confirmed\": true}"', id="client-raise_event({'confirmed': True})"),
    ],
)
def test_confirmation_wins(replay: Replay, raw_event_input: str) -> None:
    """Every encoding of a true confirmation completes with True and cancels the offer timer."""
    builder, _ = offer(replay)
    builder.episode(after=timedelta(seconds=5)).raised_text("BookingConfirmed", raw_event_input)
    reply = replay(builder)
    assert reply.is_done
    assert reply.output is True
    assert reply.custom_status == {"outcome": "confirmed", "message": CONFIRMED_MESSAGE}
    assert reply.last_timer()["isCanceled"] is True


@pytest.mark.parametrize(
    "raw_event_input",
    [
        pytest.param("false", id="raw-json-false"),
        pytest.param('"false"', id="client-raise_event(False)"),
        pytest.param(r'"\"false\""', id="client-raise_event('false')"),
        pytest.param('{"confirmed": false}', id="raw-object-false"),
        pytest.param('{"confirmed": "false"}', id="raw-object-string-false"),
        pytest.param("null", id="client-raise_event(None)"),
        pytest.param('"yes"', id="raw-other-string"),
        pytest.param("1", id="raw-number"),
    ],
)
def test_anything_but_true_declines(replay: Replay, raw_event_input: str) -> None:
    """False, the string "false" and any other data decline the booking (output False, timer cancelled)."""
    builder, _ = offer(replay)
    builder.episode(after=timedelta(seconds=5)).raised_text("BookingConfirmed", raw_event_input)
    reply = replay(builder)
    assert reply.is_done
    assert reply.output is False
    assert reply.custom_status == {"outcome": "declined", "message": DECLINED_MESSAGE}
    assert reply.last_timer()["isCanceled"] is True


def test_timeout_expires_the_offer(replay: Replay) -> None:
    """When the timer fires first the booking is not confirmed and the status says so."""
    builder, _ = offer(replay)
    builder.episode(DISCOUNT_AT + timedelta(seconds=60)).timer_fired(1)
    reply = replay(builder)
    assert reply.is_done
    assert reply.output is False
    assert reply.custom_status == {"outcome": "expired", "message": EXPIRED_MESSAGE}
    assert reply.last_timer()["isCanceled"] is False


@pytest.mark.filterwarnings("ignore:Potential duplicate Task completion:UserWarning")
def test_confirmation_raised_before_the_offer_is_not_lost(replay: Replay) -> None:
    """An event that arrives while the discount is still being calculated is applied once the wait starts."""
    builder = HistoryBuilder(input="u-1", name="ReserveTicket").started().scheduled("CalculateDiscount")
    builder.episode(after=timedelta(seconds=1)).raised("BookingConfirmed", True)
    assert not replay(builder).is_done
    builder.episode(after=timedelta(seconds=1)).completed(0, 20)
    reply = replay(builder)
    assert reply.is_done
    assert reply.output is True
    assert reply.last_timer()["isCanceled"] is True


def test_discount_comes_from_the_activity(replay: Replay) -> None:
    """The status shows whatever CalculateDiscount returned for this user."""
    _, reply = offer(replay, raw_input="alice", discount=discount_for("alice"))
    assert reply.custom_status["discount"] == discount_for("alice")


@pytest.mark.parametrize(
    "bad_input",
    [
        None,
        "",
        "   ",
        12345,
        ["u-1"],
        {"userId": ""},
        {"userId": "u-1", "discountTimeout": -5},
        {"userId": "u-1", "discountTimeout": 0},
        {"user": "u-1"},
    ],
)
def test_invalid_input_fails_without_actions(replay: Replay, bad_input: Any) -> None:
    """An input the starter would reject fails the orchestration before it schedules anything."""
    reply = replay(HistoryBuilder(input=bad_input, name="ReserveTicket").started())
    assert reply.error
    assert reply.actions == []
    assert reply.custom_status["stage"] == "invalid-input"
