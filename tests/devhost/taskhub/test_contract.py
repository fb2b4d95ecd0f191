"""The TaskHub contract, run against both MemoryTaskHub and AzureStorageTaskHub (on Azurite)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from devhost.durable.history import EventType, OrchestrationStatus, utcnow
from devhost.durable.taskhub.base import (
    HistoryPage,
    InstanceQuery,
    InstanceRow,
    InstanceUpdate,
    OutboundMessage,
    ReceivedMessage,
)
from devhost.errors import CheckpointConflict, TaskHubError
from tests.devhost.taskhub.conftest import HubEnv, HubFactory, run
from tests.devhost.taskhub.samples import ALL_EVENTS, TS0, TS3, episode, ev


async def _receive_until(
    env: HubEnv, queue: str, count: int, deadline: float = 5.0, visibility: float = 30
) -> list[ReceivedMessage]:
    """Poll ``queue`` until ``count`` messages arrived or the deadline passes (no fixed sleeps)."""
    got: list[ReceivedMessage] = []
    waited = 0.0
    while len(got) < count and waited < deadline:
        got.extend(await env.hub.receive(queue, 32, visibility))
        if len(got) < count:
            await env.sleep(0.05)
            waited += 0.05
    return got


def test_history_rows_wait_for_the_messages_they_follow(open_hub: HubFactory) -> None:
    """With ``after`` (the checkpoint's messages being stored), no row is written before it is done, and none
    at all when it fails."""

    async def body() -> None:
        async with open_hub() as env:
            hub = env.hub
            seen: list[HistoryPage] = []

            async def messages_stored() -> None:
                seen.append(await hub.load_history("inst-after"))  # what storage holds meanwhile

            etag = await hub.append_history("inst-after", "exec-1", 0, episode(), None, after=messages_stored())
            assert seen == [HistoryPage(None, [], None)]
            page = await hub.load_history("inst-after")
            assert page.events == episode() and page.etag == etag

            async def messages_lost() -> None:
                raise TaskHubError("sending to the control queue failed")

            with pytest.raises(TaskHubError):
                await hub.append_history("inst-lost", "exec-1", 0, episode(), None, after=messages_lost())
            assert await hub.load_history("inst-lost") == HistoryPage(None, [], None)

    run(body())


def test_history_append_load_and_etag_conflict(open_hub: HubFactory) -> None:
    """Appends write X16 rows plus a sentinel; loads return them; a stale ETag raises CheckpointConflict."""

    async def body() -> None:
        async with open_hub() as env:
            hub = env.hub
            assert await hub.load_history("inst-001") == HistoryPage(None, [], None)
            first = episode()
            etag1 = await hub.append_history("inst-001", "exec-1", 0, first, None)
            page = await hub.load_history("inst-001")
            assert page.execution_id == "exec-1" and page.events == first and page.etag == etag1

            second = [
                ev(EventType.OrchestratorStarted, ts=TS0),
                ALL_EVENTS[5],
                ALL_EVENTS[1],
                ev(EventType.OrchestratorCompleted, ts=TS3),
            ]
            etag2 = await hub.append_history("inst-001", "exec-1", 4, second, etag1)
            assert etag2 != etag1
            page = await hub.load_history("inst-001")
            assert page.events == first + second and page.etag == etag2

            with pytest.raises(CheckpointConflict):
                await hub.append_history("inst-001", "exec-1", 8, second, etag1)  # stale
            with pytest.raises(CheckpointConflict):
                await hub.append_history("inst-001", "exec-1", 0, first, None)  # duplicate first checkpoint
            assert (await hub.load_history("inst-001")).events == first + second

    run(body())


def test_new_execution_overwrites_rows_and_load_stops_at_old_execution(open_hub: HubFactory) -> None:
    """A second execution rewrites RowKeys from 0; loading stops at the older execution's leftover tail."""

    async def body() -> None:
        async with open_hub() as env:
            hub = env.hub
            old = [
                *episode(),
                ev(EventType.OrchestratorStarted),
                ALL_EVENTS[5],
                ALL_EVENTS[16],
                ev(EventType.OrchestratorCompleted),
            ]
            etag = await hub.append_history("inst-can", "exec-1", 0, old, None)
            new = episode(started_ts=TS3)[:2]
            # etag None for a new execution: replaces the older execution's sentinel.
            etag_new = await hub.append_history("inst-can", "exec-2", 0, new, None)
            page = await hub.load_history("inst-can")
            assert page.execution_id == "exec-2" and page.events == new and page.etag == etag_new
            with pytest.raises(CheckpointConflict):
                await hub.append_history("inst-can", "exec-1", 8, [ALL_EVENTS[12]], etag)
            # Passing the old sentinel's ETag (as DTFx does after continue-as-new) also works.
            etag3 = await hub.append_history("inst-can", "exec-3", 0, new, etag_new)
            assert (await hub.load_history("inst-can")).execution_id == "exec-3"
            assert etag3 != etag_new

    run(body())


def test_instance_write_merge_get(open_hub: HubFactory) -> None:
    """write_instance replaces or merges, update_instance merges the fields it sets, get_instance reads them."""

    async def body() -> None:
        async with open_hub() as env:
            hub = env.hub
            assert await hub.get_instance("nope") is None
            created = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
            row = InstanceRow(
                instance_id="inst/1",
                name="MyOrch",
                execution_id="e1",
                input='"x"',
                created_time=created,
                last_updated_time=created,
                tags='{"a":"b"}',
            )
            await hub.write_instance(row, replace=True)
            got = await hub.get_instance("inst/1")
            assert got is not None and got.etag
            got.etag = None
            assert got == row

            await hub.update_instance(
                "inst/1",
                InstanceUpdate(
                    runtime_status=OrchestrationStatus.Completed,
                    output='"done"',
                    completed_time=created + timedelta(seconds=2),
                    custom_status='{"s":1}',
                ),
            )
            got = await hub.get_instance("inst/1")
            assert got is not None
            assert (got.runtime_status, got.output, got.custom_status) == (
                OrchestrationStatus.Completed, '"done"', '{"s":1}')
            assert got.completed_time == created + timedelta(seconds=2) and got.input == '"x"'
            no_io = await hub.get_instance("inst/1", fetch_input=False, fetch_output=False)
            assert (
                no_io is not None and no_io.input is None and no_io.output is None and no_io.name == "MyOrch"
            )

            # replace=False merges the non-None fields: Output survives, Input/Name are overwritten.
            await hub.write_instance(
                InstanceRow(
                    instance_id="inst/1",
                    name="Other",
                    execution_id="e2",
                    runtime_status=OrchestrationStatus.Running,
                    input='"y"',
                )
            )
            got = await hub.get_instance("inst/1")
            assert got is not None and (got.name, got.input, got.output) == ("Other", '"y"', '"done"')

            # replace=True writes the whole row: Output and CompletedTime are gone.
            await hub.write_instance(
                InstanceRow(instance_id="inst/1", name="MyOrch", execution_id="e3"), replace=True
            )
            got = await hub.get_instance("inst/1")
            assert got is not None and got.output is None and got.completed_time is None
            assert got.runtime_status == OrchestrationStatus.Pending and got.custom_status == "null"

    run(body())


def test_a_new_executions_row_is_inserted_or_replaces_the_row_read(open_hub: HubFactory) -> None:
    """create_instance inserts where no row is, replaces a row that still has the ETag read, and writes nothing
    when the row was there first or has changed since (the provider's 409 and 412, both ignored)."""

    async def body() -> None:
        async with open_hub() as env:
            hub = env.hub
            first = InstanceRow(instance_id="inst-new", name="Orch", execution_id="e1", input='"a"')
            assert await hub.create_instance(first, None) is True
            again = InstanceRow(instance_id="inst-new", name="Orch", execution_id="e2", input='"b"')
            assert await hub.create_instance(again, None) is False  # a row is there: it stands
            stored = await hub.get_instance("inst-new")
            assert stored is not None and stored.execution_id == "e1" and stored.etag

            await hub.update_instance("inst-new", InstanceUpdate(
                runtime_status=OrchestrationStatus.Completed, output='"done"'))
            assert await hub.create_instance(again, stored.etag) is False  # the row changed since it was read
            done = await hub.get_instance("inst-new")
            assert done is not None and done.runtime_status == OrchestrationStatus.Completed and done.etag

            assert await hub.create_instance(again, done.etag) is True  # a restart replaces the whole row
            restarted = await hub.get_instance("inst-new")
            assert restarted is not None
            assert (restarted.execution_id, restarted.input, restarted.output) == ("e2", '"b"', None)
            assert restarted.runtime_status == OrchestrationStatus.Pending

            gone = InstanceRow(instance_id="inst-gone", name="Orch", execution_id="e1")
            with pytest.raises(TaskHubError):  # a replace of a row that no longer exists is an error, not a 412
                await hub.create_instance(gone, restarted.etag)
            assert await hub.get_instance("inst-gone") is None

    run(body())


def test_queue_send_receive_visibility_delete(open_hub: HubFactory) -> None:
    """Messages route by instance hash, have receipts, dequeue counts and visibility timeouts."""

    async def body() -> None:
        async with open_hub() as env:
            hub = env.hub
            assert hub.control_queue_name("inst-001") == hub.control_queue_names[3]
            started = ALL_EVENTS[0]
            scheduled = ALL_EVENTS[4]
            await hub.send(
                [
                    OutboundMessage(event=started, instance_id="inst-001", execution_id=None),
                    OutboundMessage(
                        event=scheduled,
                        instance_id="inst-001",
                        execution_id="e1",
                        to_work_items=True,
                        episode=1,
                        sender={"InstanceId": "inst-001", "ExecutionId": "e1"},
                    ),
                ]
            )
            control = hub.control_queue_name("inst-001")
            [msg] = await hub.receive(control, 32, 30)
            assert msg.queue == control and msg.event == started and msg.instance_id == "inst-001"
            assert msg.execution_id is None and msg.dequeue_count == 1 and msg.activity_id
            assert abs((msg.inserted_on - utcnow()).total_seconds()) < 5 and msg.raw["TaskMessage"]
            assert await hub.receive(control, 32, 30) == []  # invisible while leased

            [work] = await hub.receive(hub.work_item_queue_name, 32, 30)
            assert work.event == scheduled and work.episode == 1 and work.execution_id == "e1"
            assert work.sequence_number > msg.sequence_number

            old_receipt = msg.receipt
            await hub.set_visibility(msg, 0)  # abandon: visible again at once
            assert msg.receipt != old_receipt
            stale = ReceivedMessage(**{**msg.__dict__, "receipt": old_receipt})
            with pytest.raises(TaskHubError):
                await hub.set_visibility(stale, 10)
            [again] = await _receive_until(env, control, 1)
            assert again.message_id == msg.message_id and again.dequeue_count == 2
            await hub.delete(msg)  # stale receipt: ignored, the message stays
            await hub.delete(again)
            await hub.delete(work)
            await env.sleep(0)
            assert await hub.receive(control, 32, 0) == []
            assert await hub.receive(hub.work_item_queue_name, 32, 0) == []

    run(body())


def test_delayed_message_becomes_visible_later(open_hub: HubFactory) -> None:
    """A message sent with visible_at 1.5 s ahead is not received at once, but is within a deadline."""

    async def body() -> None:
        async with open_hub() as env:
            hub = env.hub
            fire_at = utcnow() + timedelta(seconds=1.5)
            timer = ev(EventType.TimerFired, TimerId=0, FireAt=TS0)
            await hub.send(
                [OutboundMessage(event=timer, instance_id="inst-t", execution_id="e1", visible_at=fire_at)]
            )
            queue = hub.control_queue_name("inst-t")
            started = time.monotonic()
            assert await hub.receive(queue, 32, 30) == []
            got = await _receive_until(env, queue, 1, deadline=5.0)
            assert [m.event for m in got] == [timer]
            if env.kind == "azure":
                assert time.monotonic() - started >= 1.0

    run(body())


def test_query_filters_paging_and_injection(open_hub: HubFactory) -> None:
    """Status/time/prefix filters, paging with continuation tokens, entity rows hidden, no OData injection."""

    async def body() -> None:
        async with open_hub() as env:
            hub = env.hub
            base = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
            rows = [
                InstanceRow(
                    instance_id=f"order-{i:02d}",
                    name="Orch",
                    execution_id=f"e{i}",
                    runtime_status=OrchestrationStatus.Completed if i % 3 == 0 else OrchestrationStatus.Running,
                    input=f'"{i}"',
                    created_time=base + timedelta(minutes=i),
                    last_updated_time=base,
                )
                for i in range(25)
            ]
            rows.append(
                InstanceRow(
                    instance_id="other-1",
                    name="Orch",
                    runtime_status=OrchestrationStatus.Running,
                    created_time=base,
                    last_updated_time=base,
                )
            )
            rows.append(
                InstanceRow(
                    instance_id="@counter@c1",
                    name="counter",
                    runtime_status=OrchestrationStatus.Running,
                    created_time=base,
                    last_updated_time=base,
                )
            )
            await asyncio.gather(*(hub.write_instance(r, replace=True) for r in rows))

            everything, token = await hub.query_instances(InstanceQuery())
            assert token is None and len(everything) == 26
            assert "@counter@c1" not in {r.instance_id for r in everything}

            pages: list[list[str]] = []
            token = None
            while True:
                page, token = await hub.query_instances(
                    InstanceQuery(instance_id_prefix="order-", top=10, continuation=token)
                )
                pages.append([r.instance_id for r in page])
                if token is None:
                    break
            assert [len(p) for p in pages] == [10, 10, 5]
            assert [i for page in pages for i in page] == [f"order-{i:02d}" for i in range(25)]

            completed, _ = await hub.query_instances(InstanceQuery(runtime_status=[OrchestrationStatus.Completed]))
            assert sorted(r.instance_id for r in completed) == [f"order-{i:02d}" for i in range(0, 25, 3)]
            both, _ = await hub.query_instances(
                InstanceQuery(runtime_status=[OrchestrationStatus.Completed, OrchestrationStatus.Running],
                              instance_id_prefix="order-")
            )
            assert len(both) == 25
            window, _ = await hub.query_instances(
                InstanceQuery(
                    created_from=base + timedelta(minutes=5),
                    created_to=base + timedelta(minutes=7),
                    fetch_input=False,
                )
            )
            assert [r.instance_id for r in window] == ["order-05", "order-06", "order-07"]
            assert all(r.input is None and r.name == "Orch" for r in window)

            for hostile in ("x' or PartitionKey ne '", "order-' or PartitionKey ne 'x"):
                found, _ = await hub.query_instances(InstanceQuery(instance_id_prefix=hostile))
                assert found == []
            found, _ = await hub.query_instances(
                InstanceQuery(runtime_status=["Running' or RuntimeStatus ne '"])
            )
            assert found == []

    run(body())


def test_purge_removes_history_and_instance(open_hub: HubFactory) -> None:
    """purge_instance deletes history rows and the Instances row, and reports whether anything existed."""

    async def body() -> None:
        async with open_hub() as env:
            hub = env.hub
            events = [ALL_EVENTS[12]] * 150  # more than one delete batch
            await hub.append_history("inst-p", "e1", 0, events, None)
            await hub.write_instance(InstanceRow(instance_id="inst-p", name="Orch"), replace=True)
            await hub.write_instance(InstanceRow(instance_id="inst-keep", name="Orch"), replace=True)
            assert len((await hub.load_history("inst-p")).events) == 150
            assert await hub.purge_instance("inst-p") is True
            assert await hub.load_history("inst-p") == HistoryPage(None, [], None)
            assert await hub.get_instance("inst-p") is None
            assert await hub.get_instance("inst-keep") is not None
            assert await hub.purge_instance("inst-p") is False

    run(body())


def test_awkward_instance_ids(open_hub: HubFactory) -> None:
    """Ids with quotes, escaped and control characters work for history, rows, queries, messages and purge."""

    async def body() -> None:
        async with open_hub() as env:
            hub = env.hub
            instance_id = "o'brien/x?#^\x01é"
            etag = await hub.append_history(instance_id, "e1", 0, episode(), None)
            etag = await hub.append_history(instance_id, "e1", 4, [ALL_EVENTS[5]], etag)
            page = await hub.load_history(instance_id)
            assert page.events == [*episode(), ALL_EVENTS[5]] and page.etag == etag
            await hub.write_instance(InstanceRow(instance_id=instance_id, name="Orch"), replace=True)
            got = await hub.get_instance(instance_id)
            assert got is not None and got.instance_id == instance_id
            found, _ = await hub.query_instances(InstanceQuery(instance_id_prefix="o'brien/"))
            assert [r.instance_id for r in found] == [instance_id]
            await hub.send(
                [OutboundMessage(event=ALL_EVENTS[15], instance_id=instance_id, execution_id="e1")]
            )
            [msg] = await _receive_until(env, hub.control_queue_name(instance_id), 1)
            assert msg.instance_id == instance_id and msg.event == ALL_EVENTS[15]
            assert await hub.purge_instance(instance_id) is True
            assert await hub.get_instance(instance_id) is None

    run(body())
