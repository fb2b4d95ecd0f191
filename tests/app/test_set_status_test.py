"""Replay tests of `SetStatusTest` through the SDK's real orchestrator entry point."""

from datetime import timedelta
from typing import Any

import pytest

from tests.app.conftest import Replay
from tests.history_builder import HistoryBuilder, parse_fire_at


def result_of(action: str, step: int) -> dict[str, Any]:
    """What PerformAction returns for one step."""
    return {"action": action, "step": step, "result": f"Action {action} completed."}


def activity(action: str, step: int) -> dict[str, Any]:
    """The CallActivity action for one step."""
    return {
        "actionType": 0,
        "functionName": "PerformAction",
        "input": f'{{"action": "{action}", "step": {step}}}',
    }


def test_progress_is_published_after_every_step(replay: Replay) -> None:
    """Each episode's status shows what is left, what is done and the fraction done; a timer precedes each step."""
    builder = HistoryBuilder(input=None, name="SetStatusTest").started()
    reply = replay(builder)
    first = {"nextActions": ["A", "B", "C"], "foo": 2}
    assert reply.custom_status == first
    timer = reply.actions[-1]
    assert timer["actionType"] == 5 and timer["isCanceled"] is False
    assert parse_fire_at(timer["fireAt"]) == builder.now + timedelta(seconds=2)

    builder.timer_created(timer["fireAt"]).episode(parse_fire_at(timer["fireAt"])).timer_fired(0)
    reply = replay(builder)
    assert reply.custom_status == first
    assert reply.actions[-1] == activity("A", 1)

    builder.scheduled("PerformAction").episode(after=timedelta(seconds=1)).completed(1, result_of("A", 1))
    reply = replay(builder)
    after_a = {
        "nextActions": ["B", "C"],
        "completedActions": ["A"],
        "progress": 0.3333,
        "foo": 2,
        "lastResult": result_of("A", 1),
    }
    assert reply.custom_status == after_a
    timer = reply.actions[-1]
    assert timer["actionType"] == 5 and timer["isCanceled"] is False
    assert parse_fire_at(timer["fireAt"]) == builder.now + timedelta(seconds=2)

    builder.timer_created(timer["fireAt"]).episode(parse_fire_at(timer["fireAt"])).timer_fired(2)
    reply = replay(builder)
    assert reply.custom_status == after_a
    assert reply.actions[-1] == activity("B", 2)

    builder.scheduled("PerformAction").episode(after=timedelta(seconds=1)).completed(3, result_of("B", 2))
    reply = replay(builder)
    assert reply.custom_status == {
        "nextActions": ["C"],
        "completedActions": ["A", "B"],
        "progress": 0.6667,
        "foo": 2,
        "lastResult": result_of("B", 2),
    }
    timer = reply.actions[-1]

    builder.timer_created(timer["fireAt"]).episode(parse_fire_at(timer["fireAt"])).timer_fired(4)
    reply = replay(builder)
    assert reply.actions[-1] == activity("C", 3)

    builder.scheduled("PerformAction").episode(after=timedelta(seconds=1)).completed(5, result_of("C", 3))
    reply = replay(builder)
    assert reply.is_done
    assert reply.custom_status == {
        "nextActions": [],
        "completedActions": ["A", "B", "C"],
        "progress": 1.0,
        "foo": 2,
        "lastResult": result_of("C", 3),
    }
    assert reply.output == {
        "completedActions": ["A", "B", "C"],
        "results": [result_of("A", 1), result_of("B", 2), result_of("C", 3)],
    }
    assert [a["actionType"] for a in reply.actions] == [5, 0, 5, 0, 5, 0]


def test_zero_delay_runs_the_steps_back_to_back(replay: Replay) -> None:
    """`stepDelaySeconds: 0` schedules no timers, so the activities take sequence ids 0, 1, 2."""
    builder = HistoryBuilder(input={"stepDelaySeconds": 0}, name="SetStatusTest").started()
    replay(builder)
    for task_id, (action, step) in enumerate([("A", 1), ("B", 2), ("C", 3)]):
        builder.scheduled("PerformAction").episode(after=timedelta(seconds=1))
        builder.completed(task_id, result_of(action, step))
        reply = replay(builder)
    assert reply.is_done
    assert reply.actions == [activity("A", 1), activity("B", 2), activity("C", 3)]
    assert reply.custom_status["progress"] == 1.0


def test_custom_delay_sets_the_timer(replay: Replay) -> None:
    """`stepDelaySeconds` is the distance of each timer, the one before the first step included."""
    builder = HistoryBuilder(input={"stepDelaySeconds": 7}, name="SetStatusTest").started()
    reply = replay(builder)
    assert parse_fire_at(reply.actions[-1]["fireAt"]) == builder.now + timedelta(seconds=7)


def test_activity_failure_fails_the_orchestration(replay: Replay) -> None:
    """A failing step surfaces as an orchestrator error while the last progress status stays visible."""
    builder = HistoryBuilder(input=None, name="SetStatusTest").started()
    builder.timer_created(builder.now + timedelta(seconds=2)).episode(after=timedelta(seconds=2)).timer_fired(0)
    builder.scheduled("PerformAction").episode(after=timedelta(seconds=1)).failed(1, "boom", "PerformAction")
    reply = replay(builder)
    assert reply.error and "boom" in reply.error
    assert reply.custom_status == {"nextActions": ["A", "B", "C"], "foo": 2}


@pytest.mark.parametrize(
    "bad_input",
    [
        "x",
        3,
        [1],
        {"stepDelaySeconds": -1},
        {"stepDelaySeconds": 1.5},
        {"stepDelaySeconds": "2"},
        {"stepDelaySeconds": 99999},
        {"delay": 1},
    ],
)
def test_invalid_input_fails_without_actions(replay: Replay, bad_input: Any) -> None:
    """An input the starter would reject fails the orchestration before any step runs."""
    reply = replay(HistoryBuilder(input=bad_input, name="SetStatusTest").started())
    assert reply.error
    assert reply.actions == []
    assert reply.custom_status["stage"] == "invalid-input"
