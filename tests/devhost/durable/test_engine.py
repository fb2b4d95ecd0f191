"""The durable engine end to end on an in-memory task hub: episodes, activities, timers and failures."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devhost.durable import engine as engine_module
from devhost.durable.client import DurableClient, InstanceExists
from devhost.durable.history import Event, EventType, OrchestrationStatus
from devhost.durable.orchestration import Handoff
from devhost.durable.taskhub.base import InstanceUpdate, ReceivedMessage
from devhost.durable.taskhub.memory import MemoryTaskHub
from devhost.durable.taskhub.row_cache import RowCachingTaskHub
from tests.devhost.durable.conftest import lose_write, run, running_engine


class CountingHub(MemoryTaskHub):
    """The in-memory hub, counting checkpoints and the work items written."""

    def __init__(self) -> None:
        super().__init__("EngineToy")
        self.checkpoints = 0
        self.work_items = 0
        self.queued_events = 0  # EventRaised messages written to a control queue

    def _count(self, messages) -> None:  # type: ignore[no-untyped-def]
        self.work_items += sum(1 for m in messages if m.to_work_items)
        self.queued_events += sum(1 for m in messages if m.event["EventType"] == EventType.EventRaised)

    def write_leased(self, messages, lease):  # type: ignore[no-untyped-def]
        self._count(messages)
        return super().write_leased(messages, lease)

    async def send(self, messages) -> None:  # type: ignore[no-untyped-def]
        self._count(messages)
        await super().send(messages)

    async def append_history(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.checkpoints += 1
        return await super().append_history(*args, **kwargs)


CHAIN_HISTORY = [
    "OrchestratorStarted", "ExecutionStarted", "TaskScheduled", "OrchestratorCompleted",
    "OrchestratorStarted", "TaskCompleted", "TaskScheduled", "OrchestratorCompleted",
    "OrchestratorStarted", "TaskCompleted", "TaskScheduled", "OrchestratorCompleted",
    "OrchestratorStarted", "TaskCompleted", "ExecutionCompleted", "OrchestratorCompleted",
]


def kinds(events: list[dict]) -> list[str]:
    return [EventType(e["EventType"]).name for e in events]


def test_activity_event_and_cancelled_timer() -> None:
    """An activity result reaches the custom status; the event wins over the timer and completes it."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("Greeter", {"name": "Ada", "timeout": 60})
            row = await h.wait(instance, lambda r: r.custom_status != "null")
            assert json.loads(row.custom_status) == {"greeting": "Hello Ada!"}
            assert row.runtime_status == OrchestrationStatus.Running
            await h.client.raise_event(row, "Go", json.dumps("now"))  # as a raw HTTP caller sends it
            done = await h.wait(instance)
            assert done.runtime_status == OrchestrationStatus.Completed
            assert json.loads(done.output) == {"greeting": "Hello Ada!", "go": "now"}
            history = (await h.hub.load_history(instance)).events
            assert kinds(history) == [
                "OrchestratorStarted", "ExecutionStarted", "TaskScheduled", "OrchestratorCompleted",
                "OrchestratorStarted", "TaskCompleted", "TimerCreated", "OrchestratorCompleted",
                "OrchestratorStarted", "EventRaised", "ExecutionCompleted", "OrchestratorCompleted",
            ]
            assert [e["EventId"] for e in history if e["EventType"] in (4, 10, 1)] == [0, 1, 2]
    run(scenario())


def test_durable_timer_fires() -> None:
    """Without the event the durable timer fires and the orchestrator takes the timeout path."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("Greeter", {"name": "Bo", "timeout": 1})
            done = await h.wait(instance, within=10)
            assert json.loads(done.output) == {"greeting": "Hello Bo!", "go": None}
            history = (await h.hub.load_history(instance)).events
            fired = next(e for e in history if e["EventType"] == EventType.TimerFired)
            assert fired["TimerId"] == 1
    run(scenario())


def test_timers_that_fired_are_not_kept_for_a_running_instance() -> None:
    """An instance that keeps running after its timers fired (continue-as-new) holds none of them in memory."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("Ticker", 0)
            await h.wait(instance, lambda r: "2" in (r.input or ""), within=15)  # the last generation
            deadline = asyncio.get_running_loop().time() + 5
            while h.engine.timers.get(instance) or h.engine.inboxes:
                assert asyncio.get_running_loop().time() < deadline, h.engine.timers.get(instance)
                await asyncio.sleep(0.01)
            assert (await h.hub.get_instance(instance)).runtime_status == OrchestrationStatus.Running
    run(scenario())


def test_nondeterminism_fails_the_instance() -> None:
    """Replaying into a different activity than history holds fails with DTFx's message."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("Drifting")
            done = await h.wait(instance)
            assert done.runtime_status == OrchestrationStatus.Failed
            assert done.output.startswith("Non-Deterministic workflow detected")
            assert "Hello" in done.output
    run(scenario())


def test_custom_status_over_16_kb_fails() -> None:
    """A custom status over the extension's 16 KB limit fails the orchestration with its message."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("Chatty")
            done = await h.wait(instance)
            assert done.runtime_status == OrchestrationStatus.Failed
            assert "The UTF-16 size of the JSON-serialized payload must not exceed 16 KB" in done.output
            assert done.output.startswith("Orchestrator function 'Chatty' failed:")
    run(scenario())


def test_continue_as_new_keeps_only_the_last_generation() -> None:
    """continue_as_new restarts with the new input; history holds only the newest execution."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("Looper", 0)
            done = await h.wait(instance)
            assert done.runtime_status == OrchestrationStatus.Completed and json.loads(done.output) == 3
            page = await h.hub.load_history(instance)
            assert page.execution_id == done.execution_id
            assert kinds(page.events)[:2] == ["OrchestratorStarted", "ExecutionStarted"]
            assert json.loads(json.loads(page.events[1]["Input"])) == 3
    run(scenario())


def test_sub_orchestration_result_reaches_parent() -> None:
    """A sub-orchestration runs as its own instance and its output resolves the parent's task."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("Parent")
            done = await h.wait(instance)
            assert done.runtime_status == OrchestrationStatus.Completed and json.loads(done.output) == 42
            history = (await h.hub.load_history(instance)).events
            created = next(e for e in history if e["EventType"] == EventType.SubOrchestrationInstanceCreated)
            child = await h.hub.get_instance(created["InstanceId"])
            assert child is not None and child.runtime_status == OrchestrationStatus.Completed and child.name == "Child"
    run(scenario())


def test_retry_until_success_numbers_ids_like_dtfx() -> None:
    """call_activity_with_retry: two failures, two retry timers, then success (ids 0..4)."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("Retrier", "retry-key")
            done = await h.wait(instance)
            assert done.runtime_status == OrchestrationStatus.Completed, done.output
            assert json.loads(done.output) == "ok after 3"
            history = (await h.hub.load_history(instance)).events
            scheduling = [(EventType(e["EventType"]).name, e["EventId"]) for e in history
                          if e["EventType"] in (EventType.TaskScheduled, EventType.TimerCreated)]
            assert scheduling == [("TaskScheduled", 0), ("TimerCreated", 1), ("TaskScheduled", 2),
                                  ("TimerCreated", 3), ("TaskScheduled", 4)]
    run(scenario())


def test_unknown_activity_fails_with_the_extension_message() -> None:
    """Calling an activity the app does not have fails the orchestration and names the known ones."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("CallsMissing")
            done = await h.wait(instance)
            assert done.runtime_status == OrchestrationStatus.Failed
            assert "The function 'NoSuchActivity' doesn't exist" in done.output
            assert "'Hello'" in done.output
    run(scenario())


def test_fan_out_fan_in() -> None:
    """Fifty activities fanned out complete and their results are summed."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("FanOut", 50)
            done = await h.wait(instance)
            assert json.loads(done.output) == sum(range(50))
    run(scenario())


def test_terminate_pending_and_running() -> None:
    """Terminate ends a waiting instance with the reason; a second instance is unaffected."""
    async def scenario() -> None:
        async with running_engine() as h:
            first = await h.start("Greeter", {"name": "T", "timeout": 60})
            second = await h.start("Greeter", {"name": "U", "timeout": 60})
            row = await h.wait(first, lambda r: r.custom_status != "null")
            await h.client.terminate(row, "stop")
            done = await h.wait(first)
            assert done.runtime_status == OrchestrationStatus.Terminated and done.output == "stop"
            other = await h.wait(second, lambda r: r.custom_status != "null")
            assert other.runtime_status == OrchestrationStatus.Running
    run(scenario())


class ForgetfulHub(MemoryTaskHub):
    """Loses every delete, as a process killed between its checkpoint and its deletes would."""

    redelivered = 0

    async def delete(self, message: ReceivedMessage) -> None:
        return None

    async def receive(self, queue: str, max_messages: int, visibility_timeout: float) -> list[ReceivedMessage]:
        messages = await super().receive(queue, max_messages, visibility_timeout)
        self.redelivered += sum(1 for m in messages if m.dequeue_count > 1)
        return messages


def test_redelivered_messages_never_duplicate_history() -> None:
    """Every message delivered again after its checkpoint is recognised: no row twice, one completion."""
    async def scenario() -> None:
        hub = ForgetfulHub("EngineToy")
        # Every message through a queue: no activity run ahead, and the event sent as another process would.
        async with running_engine(hub, run_ahead_window=0.0) as h:
            instance = await h.start("Greeter", {"name": "Re", "timeout": 60})
            row = await h.wait(instance, lambda r: r.custom_status != "null")
            await DurableClient(hub).raise_event(row, "Go", json.dumps("again"))
            await h.wait(instance)
            # Leases of 0.3 s run out again and again: wait until every message came back at least twice.
            for _ in range(200):  # up to 10 s
                if hub.redelivered >= 8:
                    break
                await asyncio.sleep(0.05)
            assert hub.redelivered >= 8
            history = (await hub.load_history(instance)).events
            assert kinds(history).count("ExecutionCompleted") == 1
            assert kinds(history).count("TaskCompleted") == 1
            assert kinds(history).count("EventRaised") == 1
            assert kinds(history).count("ExecutionStarted") == 1
            row = await hub.get_instance(instance)
            assert row is not None and json.loads(row.output) == {"greeting": "Hello Re!", "go": "again"}
    run(scenario())


def test_rewind_reruns_the_failed_activity() -> None:
    """A failed instance rewound runs the failed activity again and completes; history keeps the rewound rows."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("FailsOnce", "rewind-key")
            failed = await h.wait(instance)
            assert failed.runtime_status == OrchestrationStatus.Failed
            assert "Activity function 'Flaky' failed: RuntimeError: attempt 1 failed" in failed.output
            # A second failure, then success: rewind twice.
            await h.client.rewind(failed, "try again")
            again = await h.wait(instance, lambda r: r.runtime_status == OrchestrationStatus.Failed
                                 and "attempt 2" in (r.output or ""))
            await h.client.rewind(again, "once more")
            done = await h.wait(instance, lambda r: r.runtime_status == OrchestrationStatus.Completed)
            assert json.loads(done.output) == "ok after 3"
            history = (await h.hub.load_history(instance)).events
            rewound = [e["Reason"] for e in history if e["EventType"] == EventType.GenericEvent and e.get("Reason")]
            assert rewound.count("Rewound: TaskFailed") == 2 and rewound.count("Rewound: ExecutionCompleted") == 2
    run(scenario())


class LosesFinalRowWrite(MemoryTaskHub):
    """Fails the first Instances write that would mark an instance finished, as a crash right before it would."""

    lost = False

    async def update_instance(self, instance_id: str, update: InstanceUpdate) -> None:
        if update.runtime_status == OrchestrationStatus.Completed and not self.lost:
            self.lost = True
            raise ConnectionError("process died between the history checkpoint and the Instances row")
        await super().update_instance(instance_id, update)


def test_row_repaired_after_crash_between_history_and_row() -> None:
    """When history holds the completion but the row write was lost, the redelivered message repairs the row."""
    async def scenario() -> None:
        hub = LosesFinalRowWrite("EngineToy")
        async with running_engine(hub) as h:
            instance = await h.start("Greeter", {"name": "Rep", "timeout": 60})
            row = await h.wait(instance, lambda r: r.custom_status != "null")
            await h.client.raise_event(row, "Go", json.dumps("late"))
            done = await h.wait(instance, within=15)
            assert hub.lost
            assert done.runtime_status == OrchestrationStatus.Completed
            assert json.loads(done.output) == {"greeting": "Hello Rep!", "go": "late"}
            assert json.loads(done.custom_status) == {"greeting": "Hello Rep!"}
            history = (await hub.load_history(instance)).events
            assert kinds(history).count("ExecutionCompleted") == 1
    run(scenario())


class FailsFirstStartWrite(CountingHub):
    """The first ExecutionStarted write fails a moment after it was handed over, as a storage error would."""

    failed = False

    def write_leased(self, messages, lease):  # type: ignore[no-untyped-def]
        held = super().write_leased(messages, lease)
        for message in held:
            if message.event["EventType"] == EventType.ExecutionStarted and not self.failed:
                self.failed = True
                lose_write(self, message)
        return held


def test_a_start_whose_message_was_not_stored_leaves_no_trace() -> None:
    """A failed ExecutionStarted write fails the start and its episode writes nothing; the id starts again."""
    async def scenario() -> None:
        hub = FailsFirstStartWrite()
        async with running_engine(hub) as h:
            with pytest.raises(ConnectionError):
                await h.start("Greeter", {"name": "Lost", "timeout": 60}, instance_id="lost-start")
            await asyncio.sleep(0.3)  # long enough for the episode that ran in memory to have committed
            assert (await hub.load_history("lost-start")).events == []
            assert await hub.get_instance("lost-start") is None
            assert hub.checkpoints == 0
            assert hub.queue_length(hub.control_queue_name("lost-start")) == 0  # no timer of that episode
            assert h.engine.runner.row_writes == {}

            instance = await h.start("Greeter", {"name": "Found", "timeout": 60}, instance_id="lost-start")
            row = await h.wait(instance, lambda r: r.custom_status != "null")
            await h.client.raise_event(row, "Go", json.dumps("now"))
            done = await h.wait(instance)
            assert done.runtime_status == OrchestrationStatus.Completed
            assert json.loads(done.output) == {"greeting": "Hello Found!", "go": "now"}
            assert kinds((await hub.load_history(instance)).events).count("ExecutionStarted") == 1
    run(scenario())


def test_history_cache_is_bounded() -> None:
    """Beyond its capacity the history cache drops the least recently used instances, which still finish."""
    async def scenario() -> None:
        async with running_engine() as h:
            h.engine.runner.cache_capacity = 2
            ids = [await h.start("Greeter", {"name": f"c{i}", "timeout": 60}) for i in range(4)]
            rows = [await h.wait(i, lambda r: r.custom_status != "null") for i in ids]
            assert len(h.engine.runner.cache) <= 2
            for row in rows:
                await h.client.raise_event(row, "Go", json.dumps("ok"))
            for instance in ids:
                done = await h.wait(instance)
                assert json.loads(done.output)["go"] == "ok"
    run(scenario())


class SlowReads(MemoryTaskHub):
    """Instances reads that take a while, so a write can land while one is in flight."""

    async def get_instance(self, instance_id: str, *, fetch_input: bool = True, fetch_output: bool = True,
                           fresh: bool = False):  # type: ignore[no-untyped-def]
        row = await super().get_instance(instance_id, fetch_input=fetch_input, fetch_output=fetch_output, fresh=fresh)
        await asyncio.sleep(0.05)
        return row


def test_row_cache_never_keeps_a_read_overtaken_by_a_write() -> None:
    """A status read that started before a row write does not leave the older row in the cache."""
    from devhost.durable.taskhub.base import InstanceRow
    from devhost.durable.taskhub.row_cache import RowCachingTaskHub

    async def scenario() -> None:
        hub = RowCachingTaskHub(SlowReads("EngineToy"))
        running = InstanceRow(instance_id="i1", runtime_status=OrchestrationStatus.Running)
        await hub.inner.write_instance(running, replace=True)
        read = asyncio.ensure_future(hub.get_instance("i1"))
        await asyncio.sleep(0.01)
        await hub.update_instance("i1", InstanceUpdate(runtime_status=OrchestrationStatus.Completed))
        assert (await read).runtime_status == OrchestrationStatus.Running  # the read began before the write
        row = await hub.get_instance("i1")
        assert row is not None and row.runtime_status == OrchestrationStatus.Completed
    run(scenario())


def test_failed_sub_orchestration_hands_its_details_to_the_parent() -> None:
    """SubOrchestrationInstanceFailed carries the shim's Details, which the parent's SDK shows after the reason."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("ParentOfBroken")
            done = await h.wait(instance)
            history = (await h.hub.load_history(instance)).events
            failed = next(e for e in history if e["EventType"] == EventType.SubOrchestrationInstanceFailed)
            assert failed["Reason"] == "Orchestrator function 'BrokenChild' failed: child broke"
            assert failed["Details"].startswith("Message: child broke, StackTrace: ")
            assert 'raise ValueError("child broke")' in failed["Details"]
            seen = json.loads(done.output)
            assert seen.startswith(failed["Reason"] + " \n Message: child broke, StackTrace: ")
    run(scenario())


def test_activity_failure_details_are_the_serialized_exception() -> None:
    """TaskFailed.Details is the error data converter's System.Exception wrapping the worker's RpcException."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("CatchesActivityFailure")
            await h.wait(instance)
            history = (await h.hub.load_history(instance)).events
            failed = next(e for e in history if e["EventType"] == EventType.TaskFailed)
            assert failed["Reason"] == "Activity function 'Explode' failed: KeyError: 'x'"
            details = json.loads(failed["Details"])
            assert details["$type"] == "System.Exception, System.Private.CoreLib"
            assert details["Message"] == "KeyError: 'x'"
            inner = details["InnerException"]
            assert inner["ClassName"] == "Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException"
            assert inner["Message"].startswith("Result: Failure\nException: KeyError: 'x'\nStack: ")
    run(scenario())


def test_unknown_orchestrator_fails_with_the_extension_wording() -> None:
    """A start of an orchestrator the app lacks fails as the extension's shim words it."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("NoSuchOrchestrator")
            done = await h.wait(instance)
            assert done.runtime_status == OrchestrationStatus.Failed
            assert done.output.startswith(
                "Orchestrator function 'NoSuchOrchestrator' failed: The function 'NoSuchOrchestrator' doesn't "
                "exist, is disabled, or is not an orchestrator function. Additional info: The following are the "
                "known orchestrator functions: 'Greeter', ")
    run(scenario())


def test_custom_status_over_16_kb_schedules_nothing() -> None:
    """The oversized status fails the episode before its activity is scheduled."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("Chatty")
            await h.wait(instance)
            history = (await h.hub.load_history(instance)).events
            assert kinds(history) == ["OrchestratorStarted", "ExecutionStarted", "ExecutionCompleted",
                                      "OrchestratorCompleted"]
    run(scenario())


def test_any_state_lets_a_start_replace_an_active_instance() -> None:
    """With overridableExistingInstanceStates AnyState a start naming a running instance is accepted."""
    async def scenario() -> None:
        async with running_engine() as h:
            instance = await h.start("Greeter", {"name": "Ada", "timeout": 60}, "replaced-one")
            await h.wait(instance, lambda r: r.custom_status != "null")
            with pytest.raises(InstanceExists):
                await h.client.start("Greeter", instance, None)
            h.client.override_active = True
            await h.start("Greeter", {"name": "Bo", "timeout": 60}, instance)
            row = await h.wait(instance, lambda r: "Bo" in r.custom_status)
            assert json.loads(row.custom_status) == {"greeting": "Hello Bo!"}
    run(scenario())


def test_a_restart_replaces_the_row_the_cache_keeps_without_its_etag() -> None:
    """Starting a finished id again, with its row kept by the row cache, replaces the stored row (no old output)."""
    async def scenario() -> None:
        memory = MemoryTaskHub("EngineToy")
        async with running_engine(RowCachingTaskHub(memory)) as h:
            instance = await h.start("Greeter", {"name": "Ada", "timeout": 60}, "restarted-one")
            row = await h.wait(instance, lambda r: r.custom_status != "null")
            await h.client.raise_event(row, "Go", json.dumps("now"))
            await h.wait(instance)
            assert (await memory.get_instance(instance)).output is not None
            await h.start("Greeter", {"name": "Bo", "timeout": 60}, instance)
            stored = await memory.get_instance(instance)
            assert stored is not None and stored.output is None and stored.completed_time is None
            assert stored.runtime_status in (OrchestrationStatus.Pending, OrchestrationStatus.Running)
            again = await h.wait(instance, lambda r: "Bo" in r.custom_status)
            assert again.runtime_status == OrchestrationStatus.Running
    run(scenario())


class CheckpointsFirst(MemoryTaskHub):
    """Another worker takes the ExecutionStarted as soon as it is stored and checkpoints before the client's row."""

    async def send(self, messages):  # type: ignore[no-untyped-def]
        await super().send(messages)
        for message in messages:
            await self.update_instance(message.instance_id, InstanceUpdate(
                execution_id=message.execution_id, runtime_status=OrchestrationStatus.Running, custom_status='"busy"'))


def test_the_clients_pending_row_never_overwrites_a_checkpoint_that_came_first() -> None:
    """As with the provider, the client's row is an insert: the worker's Running row stands (409 ignored)."""
    async def scenario() -> None:
        hub = CheckpointsFirst("EngineToy")
        await hub.create_if_not_exists()
        instance = await DurableClient(hub).start("Greeter", None, '"{}"')
        row = await hub.get_instance(instance)
        assert row is not None and row.runtime_status == OrchestrationStatus.Running and row.custom_status == '"busy"'
    run(scenario())


def run_chain(**settings: Any) -> tuple[list[Event], int, int]:
    """``Chain`` of 3 steps to completion on an engine with ``settings``, its stored history checked; the
    history, the checkpoints and the work items written."""
    async def scenario() -> tuple[list[Event], int, int]:
        hub = CountingHub()
        async with running_engine(hub, **settings) as h:
            instance = await h.start("Chain", 3)
            done = await h.wait(instance)
            assert done.runtime_status == OrchestrationStatus.Completed and json.loads(done.output) == 3
            history = (await hub.load_history(instance)).events
            assert kinds(history) == CHAIN_HISTORY
            return history, hub.checkpoints, hub.work_items
    result: tuple[list[Event], int, int] = run(scenario())
    return result


def test_quick_activities_run_ahead_into_one_checkpoint() -> None:
    """A chain of activities that finish within the window is one checkpoint and writes no work item,
    yet stores the history the separate episodes would have."""
    history, checkpoints, work_items = run_chain(run_ahead_window=10.0)
    assert [e["TaskScheduledId"] for e in history if e["EventType"] == EventType.TaskCompleted] == [0, 1, 2]
    assert (checkpoints, work_items) == (1, 0)


def test_without_run_ahead_each_episode_checkpoints() -> None:
    """With the window at 0 every episode commits on its own and each activity is a written work item."""
    _, checkpoints, work_items = run_chain(run_ahead_window=0.0)
    assert (checkpoints, work_items) == (4, 3)


def test_slow_activity_outlasting_the_window_runs_once() -> None:
    """An activity still running when the window closes gets its work item written and is not run again."""
    async def scenario() -> None:
        hub = CountingHub()
        async with running_engine(hub, run_ahead_window=0.02) as h:
            instance = await h.start("SlowStep", {"key": "once", "seconds": 0.3})
            done = await h.wait(instance)
            assert done.runtime_status == OrchestrationStatus.Completed and json.loads(done.output) == 1
            assert (hub.checkpoints, hub.work_items) == (2, 1)
            deadline = asyncio.get_running_loop().time() + 5
            while hub.queue_length(hub.work_item_queue_name):  # deleted once the result is checkpointed
                assert asyncio.get_running_loop().time() < deadline, "the work item was never deleted"
                await asyncio.sleep(0.01)
    run(scenario())


@pytest.mark.parametrize("chained", [True, False])
def test_each_activity_run_ahead_and_the_episode_it_leads_to_share_a_worker_thread(
        chained: bool, caplog: pytest.LogCaptureFixture) -> None:
    """Run ahead, an episode, its activity and the next episode run one after the other on one worker thread
    (with the chaining off, each episode is started from the loop); the stored history is the same."""
    caplog.set_level(logging.INFO)
    _, checkpoints, work_items = run_chain(run_ahead_window=10.0, run_ahead_chained=chained)
    assert (checkpoints, work_items) == (1, 0)
    records = [r for r in caplog.records if r.name.startswith("Function.")]
    steps = [(done, then) for done, then in itertools.pairwise(records)
             if done.getMessage().startswith("Executed 'Functions.Echo'")]
    assert len(steps) == 3
    for done, then in steps:
        assert then.getMessage().startswith("Executing 'Functions.Chain'")
        if chained:
            assert then.thread == done.thread and then.threadName.startswith("worker-sync")
        else:
            assert then.threadName == threading.main_thread().name
    # The first episode too: chained, its thread goes straight on into the first activity.
    first, executed, activity = records[0], records[1], records[2]
    assert [r.getMessage().split(" (")[0] for r in (first, executed, activity)] == [
        "Executing 'Functions.Chain'", "Executed 'Functions.Chain'", "Executing 'Functions.Echo'"]
    if chained:
        assert first.thread == executed.thread == activity.thread and first.threadName.startswith("worker-sync")
    else:
        assert first.threadName == threading.main_thread().name


def test_a_handoff_goes_to_whichever_side_takes_it_first() -> None:
    """The worker thread and the loop race for an activity's next episode; exactly one of them wins."""
    claimed = Handoff()
    assert claimed.claim() and claimed.claim() and not claimed.abandon()
    abandoned = Handoff()
    assert abandoned.abandon() and not abandoned.claim()
    for _ in range(200):
        handoff = Handoff()
        wins: list[bool] = []
        racer = threading.Thread(target=lambda h=handoff, w=wins: w.append(h.claim()))
        racer.start()
        loop_won = handoff.abandon()
        racer.join()
        assert wins[0] != loop_won


def test_a_long_chain_run_ahead_checkpoints_within_one_transaction_each() -> None:
    """Running ahead stops before a checkpoint would outgrow one table transaction, then goes on."""
    async def scenario() -> None:
        hub = CountingHub()
        async with running_engine(hub, run_ahead_window=10.0) as h:
            instance = await h.start("Chain", 30)
            done = await h.wait(instance, within=30)
            assert json.loads(done.output) == sum(range(30))
            history = (await hub.load_history(instance)).events
            assert sum(1 for e in history if e["EventType"] == EventType.TaskCompleted) == 30
            # each checkpoint but the last leaves its next step to a written work item
            assert 2 <= hub.checkpoints <= 4 and hub.work_items == hub.checkpoints - 1
    run(scenario())


def test_an_event_its_instance_cannot_take_yet_is_queued_before_the_answer() -> None:
    """An event for an instance that has not started is written to its control queue before the raise returns."""
    async def scenario() -> None:
        hub = CountingHub()
        async with running_engine(hub) as h:
            later = datetime.now(UTC) + timedelta(seconds=30)
            instance = await h.client.start("Greeter", None, json.dumps(json.dumps({"name": "Bo"})),
                                            scheduled_start=later)
            row = await hub.get_instance(instance)
            assert row is not None and row.runtime_status == OrchestrationStatus.Pending
            await h.client.raise_event(row, "Go", json.dumps("early"))
            assert hub.queued_events == 1
            assert "EventRaised" not in kinds((await hub.load_history(instance)).events)
    run(scenario())


def test_an_event_behind_waiting_messages_is_queued_to_gather_with_them() -> None:
    """While messages wait for the instance's next episode, a raised event is answered once its queue holds it."""
    async def scenario() -> None:
        hub = CountingHub()
        async with running_engine(hub) as h:
            instance = await h.start("Greeter", {"name": "Cy", "timeout": 60})
            row = await h.wait(instance, lambda r: r.custom_status != "null")
            await asyncio.gather(h.client.raise_event(row, "Go", json.dumps("first")),
                                 h.client.raise_event(row, "Go", json.dumps("second")))
            assert hub.queued_events == 1
            done = await h.wait(instance)
            assert json.loads(done.output)["go"] == "first"
    run(scenario())


def test_an_event_raised_during_an_episode_with_nothing_waiting_skips_the_queue() -> None:
    """An event raised while an episode runs, with no message waiting behind it, goes to the next episode in memory."""
    async def scenario() -> None:
        hub = CountingHub()
        async with running_engine(hub) as h:
            instance = await h.start("Greeter", {"name": "Di", "timeout": 60})
            deadline = asyncio.get_running_loop().time() + 5
            while not ((inbox := h.engine.inboxes.get(instance)) and inbox.running and not inbox.pending):
                assert asyncio.get_running_loop().time() < deadline, "the first episode never ran"
                await asyncio.sleep(0)
            row = await hub.get_instance(instance)
            assert row is not None
            await h.client.raise_event(row, "Go", json.dumps("during"))
            assert "EventRaised" in kinds((await hub.load_history(instance)).events)
            assert hub.queued_events == 0
            done = await h.wait(instance)
            assert json.loads(done.output)["go"] == "during"
    run(scenario())


class HoldingHub(CountingHub):
    """Holds one kind of write while ``hold`` is clear (once ``armed``), as slow storage would; counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.hold = asyncio.Event()
        self.held = 0

    async def _wait_if_held(self) -> None:
        if self.armed and not self.hold.is_set():
            self.held += 1
            await self.hold.wait()


class HeldRowMerges(HoldingHub):
    """Holds Instances merges, as a slow row write would."""

    async def update_instance(self, instance_id, update):  # type: ignore[no-untyped-def]
        await self._wait_if_held()
        await super().update_instance(instance_id, update)


def test_a_raised_event_is_answered_once_history_holds_it_before_the_row_merge() -> None:
    """The raise returns when the checkpoint's history rows are stored; the Instances merge may still be on its way."""
    async def scenario() -> None:
        hub = HeldRowMerges()
        async with running_engine(hub) as h:
            instance = await h.start("Greeter", {"name": "Ed", "timeout": 60})
            row = await h.wait(instance, lambda r: r.custom_status != "null")
            hub.armed = True
            await asyncio.wait_for(h.client.raise_event(row, "Go", json.dumps("soon")), 5)
            assert "EventRaised" in kinds((await hub.load_history(instance)).events)
            stored = await hub.get_instance(instance)
            assert stored is not None and stored.runtime_status == OrchestrationStatus.Running  # no merge yet
            assert hub.queued_events == 0
            hub.hold.set()
            done = await h.wait(instance)
            assert json.loads(done.output)["go"] == "soon"
    run(scenario())


class HeldCheckpoints(HoldingHub):
    """Holds history checkpoints, as a slow batch would."""

    async def append_history(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        await self._wait_if_held()
        return await super().append_history(*args, **kwargs)


def test_an_event_that_waits_too_long_in_memory_is_written_to_its_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind an episode that does not finish within the patience, the raise is answered once the queue holds
    the event; the instance still takes it once, from memory or from the queue."""
    monkeypatch.setattr(engine_module, "CLIENT_EVENT_PATIENCE", 0.05)

    async def scenario() -> None:
        hub = HeldCheckpoints()
        async with running_engine(hub) as h:
            instance = await h.start("Greeter", {"name": "Ed", "timeout": 60})
            row = await h.wait(instance, lambda r: r.custom_status != "null")
            hub.armed = True  # the event's episode runs, then waits at its checkpoint
            await asyncio.wait_for(h.client.raise_event(row, "Go", json.dumps("late")), 5)
            assert hub.queued_events == 1
            hub.hold.set()
            done = await h.wait(instance)
            assert json.loads(done.output)["go"] == "late"
            queue = hub.control_queue_name(instance)
            deadline = asyncio.get_running_loop().time() + 5
            while hub.queue_length(queue):  # the queue copy comes back (0.3 s leases) and is dropped
                assert asyncio.get_running_loop().time() < deadline, "the queued copy was never settled"
                await asyncio.sleep(0.02)
            history = (await hub.load_history(instance)).events
            assert [e.get("Name") for e in history if e["EventType"] == EventType.EventRaised] == ["Go"]
    run(scenario())


def test_a_status_read_after_the_raise_is_answered_shows_the_checkpoint_state() -> None:
    """Any request read after the raise's answer (a later loop iteration) finds the new state in the row cache,
    though the Instances merge is still on its way."""
    async def scenario() -> None:
        held = HeldRowMerges()
        hub = RowCachingTaskHub(held)
        async with running_engine(hub) as h:
            instance = await h.start("Greeter", {"name": "Ed", "timeout": 60})
            row = await h.wait(instance, lambda r: r.custom_status != "null")
            held.armed = True
            await h.client.raise_event(row, "Go", json.dumps("now"))
            await asyncio.sleep(0)  # the client's next request can be read no sooner than the next iteration
            seen = await hub.get_instance(instance)
            assert seen is not None and seen.runtime_status == OrchestrationStatus.Completed
            assert held.held == 1, "the merge has not reached storage yet"
            held.hold.set()
            await h.wait(instance)
    run(scenario())
