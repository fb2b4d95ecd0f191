"""``EpisodeRunner.triage``: which received messages become new events, are dropped, or wait.

Histories come from ``tests/history_builder.py``; the messages are what the task hub would hand over.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from devhost.durable.history import Event, EventType, OrchestrationStatus, new_event, parse_timestamp
from devhost.durable.orchestration import CachedHistory, EpisodeRunner, Triage
from devhost.durable.replay import FunctionCatalog
from devhost.durable.taskhub.base import InstanceRow, ReceivedMessage
from devhost.durable.taskhub.memory import MemoryTaskHub
from tests.history_builder import HistoryBuilder

EXECUTION = "8b1a9953c4611296a827abf8c47804d7"  # the ExecutionId HistoryBuilder writes
_counter = iter(range(1_000_000))


class NoWorker:
    async def invoke_orchestrator(self, name: str, context_json: str) -> str:
        raise AssertionError("triage runs no orchestrator")


def message(event: Event, *, execution_id: str | None = EXECUTION, dequeue_count: int = 1) -> ReceivedMessage:
    number = next(_counter)
    return ReceivedMessage(
        queue="hub-control-00", message_id=f"m{number}", receipt="r", dequeue_count=dequeue_count,
        inserted_on=parse_timestamp(event["Timestamp"]), event=event, instance_id="inst-001",
        execution_id=execution_id, sequence_number=number,
    )


def triage(builder: HistoryBuilder | None, messages: list[ReceivedMessage],
           row: InstanceRow | None = None) -> Triage:
    async def body() -> Triage:
        hub = MemoryTaskHub("TriageHub")
        if row is not None:
            await hub.write_instance(row, replace=True)
        runner = EpisodeRunner(hub, NoWorker(), lambda: FunctionCatalog([], []))
        events = builder.history() if builder is not None else []
        history = CachedHistory(EXECUTION if builder is not None else None, events, None)
        return await runner.triage("inst-001", history, messages)

    return asyncio.run(body())


def completed(task_id: int, result: Any = 1) -> Event:
    return new_event(EventType.TaskCompleted, TaskScheduledId=task_id, Result=str(result))


def test_a_result_for_a_scheduled_task_is_new() -> None:
    """A TaskCompleted for a task history scheduled becomes a new event and its message is consumed."""
    builder = HistoryBuilder().started().scheduled("Hello").episode()
    incoming = message(completed(0))
    result = triage(builder, [incoming])
    assert result.new_events == [incoming.event] and result.consumed == [incoming]
    assert not result.deferred and not result.redelivered


def test_a_redelivered_result_is_consumed_not_applied_again() -> None:
    """A result history already holds (a crash came before its delete) is only deleted."""
    builder = HistoryBuilder().started().scheduled("Hello").episode().completed(0, 1).episode()
    incoming = message(completed(0))
    result = triage(builder, [incoming])
    assert result.new_events == [] and result.consumed == [incoming] and result.redelivered


def test_a_result_ahead_of_its_checkpoint_waits() -> None:
    """A result for a task history has not scheduled yet is deferred, not dropped."""
    builder = HistoryBuilder().started().episode()
    incoming = message(completed(0))
    result = triage(builder, [incoming])
    assert result.deferred == [incoming] and result.new_events == [] and result.consumed == []


def test_a_duplicate_event_in_one_batch_is_applied_once() -> None:
    """The same raised event twice (same type, name and timestamp) counts once."""
    builder = HistoryBuilder().started().episode()
    raised = new_event(EventType.EventRaised, Name="Go", Input="1")
    first, again = message(raised), message(dict(raised))
    result = triage(builder, [first, again])
    assert result.new_events == [raised] and result.consumed == [first, again] and result.redelivered


def test_a_timer_fires_once() -> None:
    """A TimerFired for a created timer is new; one history already holds is consumed as a redelivery."""
    builder = HistoryBuilder().started()
    fire_at = builder.now + timedelta(seconds=5)
    builder.timer_created(fire_at).episode(fire_at)
    fired = new_event(EventType.TimerFired, TimerId=0, FireAt=fire_at.isoformat())
    assert triage(builder, [message(fired)]).new_events == [fired]
    builder.timer_fired(0).episode()
    assert triage(builder, [message(fired)]).redelivered


def test_messages_for_another_execution_or_a_finished_one_are_dropped() -> None:
    """An event addressed to a gone execution, or any event after completion, is only deleted."""
    builder = HistoryBuilder().started().episode()
    stale = message(new_event(EventType.EventRaised, Name="Go", Input="1"), execution_id="old-execution")
    assert triage(builder, [stale]).consumed == [stale]
    done = [*builder.history(), new_event(EventType.ExecutionCompleted, OrchestrationStatus=1, Result=None)]

    async def finished() -> Triage:
        runner = EpisodeRunner(MemoryTaskHub("TriageHub"), NoWorker(), lambda: FunctionCatalog([], []))
        late = message(new_event(EventType.EventRaised, Name="Go", Input="2"))
        return await runner.triage("inst-001", CachedHistory(EXECUTION, done, None), [late])

    result = asyncio.run(finished())
    assert result.new_events == [] and len(result.consumed) == 1 and result.redelivered


def test_a_new_start_replaces_the_history() -> None:
    """ExecutionStarted of a new execution (continue-as-new, restart) starts from an empty history."""
    builder = HistoryBuilder().started().episode()
    start = new_event(EventType.ExecutionStarted, Name="Orchestrator", Input=None,
                      OrchestrationInstance={"InstanceId": "inst-001", "ExecutionId": "e2"})
    raised = new_event(EventType.EventRaised, Name="Go", Input="1")
    result = triage(builder, [message(start, execution_id="e2", dequeue_count=0),
                              message(raised, execution_id="e2")])
    assert result.start == start and result.new_events == [start, raised]


def test_an_event_before_its_start_waits_while_the_instance_is_pending() -> None:
    """With no history yet and a Pending row, an early event is deferred until its start is taken."""
    raised = message(new_event(EventType.EventRaised, Name="Go", Input="1"))
    pending = InstanceRow(instance_id="inst-001", runtime_status=OrchestrationStatus.Pending)
    assert triage(None, [raised], pending).deferred == [raised]
    assert triage(None, [raised]).consumed == [raised]  # no row at all: an unknown instance
