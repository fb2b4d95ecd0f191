"""``replay.replay`` as a pure function: histories from ``tests/history_builder.py`` and hand-written SDK replies."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from devhost.durable.history import Event, EventType, OrchestrationStatus
from devhost.durable.replay import CreateTimer, FunctionCatalog, ReplayResult, ScheduleTask, replay
from tests.history_builder import HistoryBuilder

CATALOG = FunctionCatalog(["Orchestrator"], ["Hello", "Flaky"], ["Counter"])


def split(history: list[Event]) -> tuple[list[Event], list[Event]]:
    """Past episodes and the current (open) one, as the engine hands them to replay."""
    opened = max(i for i, e in enumerate(history) if e["EventType"] == EventType.OrchestratorStarted)
    return history[:opened], history[opened:]


def run(builder: HistoryBuilder, actions: list[dict[str, Any]], *, done: bool = False, output: Any = None,
        **reply: Any) -> ReplayResult:
    past, new = split(builder.history())
    return replay(
        name=builder.name, instance_id=builder.instance_id, execution_id="e1", parent_instance_id=None,
        past_events=past, new_events=new, catalog=CATALOG,
        reply={"schemaVersion": 2, "isDone": done, "actions": [actions], "output": output, **reply},
    )


def activity(name: str, value: Any = None) -> dict[str, Any]:
    return {"actionType": "CallActivity", "functionName": name, "input": value}


def test_first_episode_schedules_the_activity() -> None:
    """A new execution's reply becomes decisions with sequence ids from 0; nothing completes yet."""
    result = run(HistoryBuilder().started(), [activity("hello", "Tokyo")], customStatus={"step": 1})
    assert result.decisions == [ScheduleTask(0, "Hello", "Tokyo")]  # the registered name's casing
    assert result.completion is None
    assert result.custom_status == '{"step":1}'


def test_result_completes_the_execution() -> None:
    """A completed activity that the reply used finishes the execution with the reply's output."""
    builder = HistoryBuilder().started().scheduled("Hello").episode().completed(0, "hi")
    result = run(builder, [activity("Hello")], done=True, output="hi Tokyo")
    assert result.decisions == []
    assert result.completion is not None
    assert (result.completion.status, result.completion.result) == (OrchestrationStatus.Completed, '"hi Tokyo"')


def test_a_different_activity_than_history_is_nondeterministic() -> None:
    """History scheduled Hello at id 0; a reply that now schedules Flaky there fails the execution."""
    builder = HistoryBuilder().started().scheduled("Hello").episode().completed(0, "hi")
    result = run(builder, [activity("Flaky")])
    assert result.completion is not None and result.completion.status == OrchestrationStatus.Failed
    assert "Non-Deterministic workflow detected" in (result.completion.result or "")
    assert "scheduled 'Flaky' instead" in (result.completion.result or "")


def test_an_unknown_activity_fails_the_execution() -> None:
    """Scheduling a function the app does not have fails with the extension's message."""
    result = run(HistoryBuilder().started(), [activity("Missing")])
    assert result.completion is not None and result.completion.status == OrchestrationStatus.Failed
    assert "The function 'Missing' doesn't exist" in (result.completion.result or "")


def test_retry_waits_on_a_timer_then_schedules_the_next_attempt() -> None:
    """A failed attempt costs a retry timer id, its firing a new attempt id, as DTFx numbers them."""
    retry = {"actionType": "CallActivityWithRetry", "functionName": "Flaky", "input": None,
             "retryOptions": {"firstRetryIntervalInMilliseconds": 1000, "maxNumberOfAttempts": 2}}
    builder = HistoryBuilder().started().scheduled("Flaky").episode().failed(0, "boom", "Flaky")
    after_failure = run(builder, [retry])
    assert after_failure.completion is None
    assert after_failure.decisions == [CreateTimer(1, builder.now + timedelta(seconds=1))]

    builder.timer_created(builder.now + timedelta(seconds=1)).episode(after=timedelta(seconds=1)).timer_fired(1)
    after_timer = run(builder, [retry])
    assert after_timer.completion is None
    assert after_timer.decisions == [ScheduleTask(2, "Flaky", None)]


def test_when_all_waits_for_every_task() -> None:
    """WhenAll of two activities stays open with one result and completes with both."""
    fan_out = [{"actionType": "WhenAll", "compoundActions": [activity("Hello", "a"), activity("Hello", "b")]}]
    builder = HistoryBuilder().started().scheduled("Hello").scheduled("Hello").episode().completed(0, "A")
    one = run(builder, fan_out, done=True, output=["A", "B"])
    assert one.decisions == [] and one.completion is None  # the SDK's isDone cannot end it early

    builder.episode().completed(1, "B")
    both = run(builder, fan_out, done=True, output=["A", "B"])
    assert both.completion is not None and both.completion.status == OrchestrationStatus.Completed


def race(fire_at: str, *, cancelled: bool) -> list[dict[str, Any]]:
    return [{"actionType": "WhenAny", "compoundActions": [
        {"actionType": "CreateTimer", "fireAt": fire_at, "isCanceled": cancelled},
        {"actionType": "WaitForExternalEvent", "externalEventName": "Go"},
    ]}]


def test_when_any_completes_on_the_event_once_the_timer_is_cancelled() -> None:
    """WhenAny of a timer and an event: an open timer keeps the execution open, a cancelled one does not."""
    deadline = HistoryBuilder().now + timedelta(hours=1)
    fire_at = deadline.isoformat().replace("+00:00", "Z")
    builder = HistoryBuilder().started().timer_created(deadline)
    waiting = run(builder, race(fire_at, cancelled=False))
    assert waiting.decisions == [] and waiting.completion is None

    builder.episode().raised("Go", "now")
    still_open = run(builder, race(fire_at, cancelled=False), done=True, output="event")
    assert still_open.completion is None  # DTFx waits for every open task, timers included
    won = run(builder, race(fire_at, cancelled=True), done=True, output="event")
    assert won.decisions == []
    assert won.completion is not None and won.completion.status == OrchestrationStatus.Completed


def test_continue_as_new_carries_new_events_over() -> None:
    """ContinueAsNew ends the generation with its input; an event that arrived meanwhile moves on with it."""
    builder = HistoryBuilder(input=1).started().episode().raised("Next", 2)
    result = run(builder, [{"actionType": "ContinueAsNew", "input": "2"}], done=True)
    assert result.completion is not None
    assert (result.completion.status, result.completion.result) == (OrchestrationStatus.ContinuedAsNew, "2")
    assert [e["Name"] for e in result.completion.carryover_events] == ["Next"]


def test_entity_signal_and_call_take_sequence_ids_and_the_call_waits_for_its_answer() -> None:
    """signal_entity and call_entity each take the next id (EventSent); only the call keeps the episode open."""
    actions = [
        {"actionType": 9, "instanceId": "@counter@k", "operation": "add", "input": "1"},
        {"actionType": 7, "instanceId": "@counter@k", "operation": "get", "input": None},
    ]
    builder = HistoryBuilder().started()
    result = run(builder, actions[:2])
    assert [type(d).__name__ for d in result.decisions] == ["SendEntityOperation", "SendEntityOperation"]
    assert [d.id for d in result.decisions] == [0, 1]
    signal, call = (json.loads(d.request) for d in result.decisions)  # type: ignore[union-attr]
    assert (signal["signal"], signal["parent"], call["signal"], call["parent"]) == (True, None, False, "inst-001")
    assert signal["id"] != call["id"] and result.completion is None
    again = run(builder, actions[:2])  # a replay of the same point sends the same request ids
    assert [json.loads(d.request)["id"] for d in again.decisions] == [signal["id"], call["id"]]  # type: ignore


def test_a_call_http_action_schedules_the_built_in_http_activity() -> None:
    """CallHttp becomes BuiltIn::HttpActivity with the extension's DurableHttpRequest (async pattern on)."""
    http = {"method": "get", "uri": "http://127.0.0.1:1/x", "content": None, "headers": {"A": "b"},
            "tokenSource": {"resource": "https://graph.microsoft.com", "kind": "AzureManagedIdentity"}}
    result = run(HistoryBuilder().started(), [{"actionType": 8, "httpRequest": http}])
    (decision,) = result.decisions
    assert isinstance(decision, ScheduleTask) and decision.name == "BuiltIn::HttpActivity"
    request = json.loads(decision.input or "")
    assert request["method"] == "GET" and request["asynchronousPatternEnabled"] is True
    assert request["tokenSource"]["resource"] == "https://graph.microsoft.com/.default"


def test_an_operation_on_an_entity_the_app_lacks_fails_the_execution() -> None:
    """As the extension's existence check: the orchestration fails naming the known entity functions."""
    action = {"actionType": 7, "instanceId": "@meter@k", "operation": "get", "input": None}
    result = run(HistoryBuilder().started(), [action])
    assert result.completion is not None and result.completion.status == OrchestrationStatus.Failed
    assert ("The function 'meter' doesn't exist, is disabled, or is not an entity function. Additional info: "
            "The following are the known entity functions: 'Counter'.") in (result.completion.result or "")
