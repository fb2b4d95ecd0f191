"""What AzureStorageTaskHub leaves in Azurite, read back with the plain SDK clients (spec Part B)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient

from devhost.durable.history import EventType, OrchestrationStatus
from devhost.durable.taskhub import keys
from devhost.durable.taskhub.azure_storage import AzureStorageTaskHub
from devhost.durable.taskhub.base import InstanceQuery, InstanceRow, InstanceUpdate, OutboundMessage
from devhost.errors import TaskHubError
from tests.devhost.taskhub.conftest import run
from tests.devhost.taskhub.samples import ALL_EVENTS, TS7, ev, new_hub_name

OpenAzureHub = Callable[..., AbstractAsyncContextManager[AzureStorageTaskHub]]


def _entities(connection: str, table: str, pk: str) -> dict[str, Any]:
    with TableServiceClient.from_connection_string(connection) as service:
        client = service.get_table_client(table)
        return {e["RowKey"]: e for e in client.query_entities("PartitionKey eq @pk", parameters={"pk": pk})}


def _blob_names(connection: str, container: str, prefix: str = "") -> list[str]:
    with BlobServiceClient.from_connection_string(connection) as service:
        return [b.name for b in service.get_container_client(container).list_blobs(name_starts_with=prefix)]


def _is_datetime_column(value: Any) -> bool:
    # The SDK decodes only Edm.DateTime properties to datetime objects.
    return isinstance(value, datetime)


def _resource_names(connection: str, name: str) -> tuple[set[str], set[str], set[str], dict[str, Any]]:
    with TableServiceClient.from_connection_string(connection) as tables:
        table_names = {t.name for t in tables.list_tables() if t.name.startswith(name)}
    with QueueServiceClient.from_connection_string(connection) as queues:
        queue_names = {q.name for q in queues.list_queues(name_starts_with=name)}
    with BlobServiceClient.from_connection_string(connection) as blobs:
        containers = {c.name for c in blobs.list_containers(name_starts_with=name)}
        info: dict[str, Any] = {}
        if f"{name}-leases" in containers:
            info = json.loads(
                blobs.get_blob_client(f"{name}-leases", "taskhub.json").download_blob().readall()
            )
    return table_names, queue_names, containers, info


def test_create_makes_provider_resources(storage_connection: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables, queues, containers and taskhub.json exist after create; repeated creates are safe and cheap."""
    name = new_hub_name()

    async def body() -> None:
        hubs = [AzureStorageTaskHub(storage_connection, name, 4) for _ in range(3)]
        try:
            await asyncio.gather(*(hub.create_if_not_exists() for hub in hubs))  # concurrent first creates

            async def refuse(*_: Any) -> None:
                raise AssertionError("already-created hub must not create again")

            with monkeypatch.context() as patch:
                patch.setattr(AzureStorageTaskHub, "_create_table", refuse)
                await hubs[0].create_if_not_exists()  # one read of taskhub.json, nothing else

            tables, queues, containers, info = _resource_names(storage_connection, name)
            assert tables == {f"{name}History", f"{name}Instances"}
            assert queues == {f"{name}-control-0{i}" for i in range(4)} | {f"{name}-workitems"}
            assert containers == {f"{name}-largemessages", f"{name}-leases"}
            assert info["TaskHubName"] == name and info["PartitionCount"] == 4
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", info["CreatedAt"])

            await hubs[0].delete_if_exists()
            assert _resource_names(storage_connection, name) == (set(), set(), set(), {})
        finally:
            for hub in hubs:
                await hub.close()

    run(body())


def test_history_rows_as_stored(open_azure_hub: OpenAzureHub, storage_connection: str) -> None:
    """History rows carry B.3 columns and types; every event type loads back unchanged through Azurite."""
    instance_id = "inst#1"

    async def body() -> tuple[dict[str, Any], str]:
        async with open_azure_hub() as hub:
            etag = await hub.append_history(instance_id, "exec-1", 0, ALL_EVENTS, None)
            page = await hub.load_history(instance_id)
            assert page.events == ALL_EVENTS and page.etag == etag and page.execution_id == "exec-1"
            return _entities(storage_connection, hub.history_table_name, "inst^21"), etag

    rows, etag = run(body())
    assert len(rows) == len(ALL_EVENTS) + 1
    started = rows["0000000000000000"]
    assert started["EventType"] == "ExecutionStarted" and started["ExecutionId"] == "exec-1"
    assert _is_datetime_column(started["_Timestamp"]) and started["_Timestamp"].tables_service_value == TS7
    assert "Timestamp" not in started and "Correlation" not in started  # system column / null omitted
    assert started["EventId"] == -1 and started["IsPlayed"] is True and started["Generation"] == 2
    assert isinstance(started["OrchestrationInstance"], str)
    assert json.loads(started["OrchestrationInstance"])["InstanceId"] == "inst-001"
    assert _is_datetime_column(started["ScheduledStartTime"])
    assert rows["0000000000000001"]["OrchestrationStatus"] == "Completed"
    assert _is_datetime_column(rows["000000000000000A"]["FireAt"])
    assert rows["000000000000000A"]["EventType"] == "TimerCreated"
    sentinel = rows["sentinel"]
    assert sentinel["ExecutionId"] == "exec-1" and sentinel["IsCheckpointComplete"] is True
    assert _is_datetime_column(sentinel["CheckpointCompletedTimestamp"])
    assert sentinel.metadata["etag"] == etag


def test_many_rows_split_into_batches(open_azure_hub: OpenAzureHub) -> None:
    """A checkpoint above 99 rows is written as several transactions and loads back in order, paged."""

    async def body() -> None:
        async with open_azure_hub() as hub:
            events = [
                ev(EventType.EventRaised, Name=f"e{i}", Input=str(i), ParentTraceContext=None)
                for i in range(1005)  # > 1000: the partition query must follow continuation headers
            ]
            etag = await hub.append_history("big", "x1", 0, events, None)
            page = await hub.load_history("big")
            assert page.events == events and page.etag == etag

    run(body())


def test_instance_row_as_stored(open_azure_hub: OpenAzureHub, storage_connection: str) -> None:
    """The Instances row has the B.2 column names, DateTime-typed times and "null" custom status."""
    created = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)

    async def body() -> tuple[dict[str, Any], str]:
        async with open_azure_hub() as hub:
            await hub.write_instance(
                InstanceRow(
                    instance_id="inst?1",
                    name="MyOrch",
                    execution_id="e1",
                    input='"x"',
                    created_time=created,
                    last_updated_time=created,
                    scheduled_start_time=created,
                    tags='{"a":"b"}',
                ),
                replace=True,
            )
            await hub.update_instance(
                "inst?1",
                InstanceUpdate(runtime_status=OrchestrationStatus.Completed, completed_time=created, output='"done"'),
            )
            return _entities(storage_connection, hub.instances_table_name, "inst^31")[""], hub.name

    row, hub_name = run(body())
    assert set(row) == {
        "PartitionKey",
        "RowKey",
        "ExecutionId",
        "Name",
        "Version",
        "Input",
        "Output",
        "CustomStatus",
        "CreatedTime",
        "LastUpdatedTime",
        "CompletedTime",
        "RuntimeStatus",
        "ScheduledStartTime",
        "Generation",
        "Tags",
        "TaskHubName",
    }
    for column in ("CreatedTime", "LastUpdatedTime", "CompletedTime", "ScheduledStartTime"):
        assert _is_datetime_column(row[column]), column
    assert row["CreatedTime"].tables_service_value == "2024-05-01T12:00:00.123456Z"
    assert (row["CustomStatus"], row["RuntimeStatus"], row["Version"]) == ("null", "Completed", "")
    assert row["Generation"] == 0 and row["TaskHubName"] == hub_name


def test_queue_message_as_stored(open_azure_hub: OpenAzureHub, storage_connection: str) -> None:
    """Queue text is raw UTF-8 JSON MessageData with $type names, int EventType and infinite TTL."""

    async def body() -> tuple[str, Any]:
        async with open_azure_hub() as hub:
            await hub.send(
                [
                    OutboundMessage(
                        event=ALL_EVENTS[5],
                        instance_id="inst-001",
                        execution_id="e1",
                        episode=2,
                        sender={"InstanceId": "p", "ExecutionId": "pe"},
                    )
                ]
            )
            queue = hub.control_queue_name("inst-001")
            with QueueClient.from_connection_string(storage_connection, queue) as client:
                [peeked] = client.peek_messages(max_messages=5)
            return queue, peeked

    queue, peeked = run(body())
    assert queue.endswith("-control-03")
    assert peeked.content.startswith("{")
    envelope = json.loads(peeked.content)
    assert envelope["$type"] == "DurableTask.AzureStorage.MessageData"
    assert envelope["TaskMessage"]["Event"]["$type"] == "DurableTask.Core.History.TaskCompletedEvent"
    assert envelope["TaskMessage"]["Event"]["EventType"] == 5
    assert envelope["TaskMessage"]["OrchestrationInstance"]["InstanceId"] == "inst-001"
    assert envelope["Episode"] == 2 and envelope["Sender"] == {"InstanceId": "p", "ExecutionId": "pe"}
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", envelope["ActivityId"]
    )
    assert peeked.expires_on.year >= 9999  # time_to_live=-1


def test_base64_queue_text_is_accepted(open_azure_hub: OpenAzureHub, storage_connection: str) -> None:
    """A Base64-encoded envelope (AzS 1.x style) is decoded like raw JSON."""

    async def body() -> None:
        async with open_azure_hub() as hub:
            queue = hub.control_queue_name("inst-b64")
            text = json.dumps(
                {
                    "$type": "DurableTask.AzureStorage.MessageData",
                    "ActivityId": "a",
                    "SequenceNumber": 1,
                    "TaskMessage": {
                        "Event": ALL_EVENTS[15],
                        "OrchestrationInstance": {"InstanceId": "inst-b64", "ExecutionId": "e"},
                    },
                }
            )
            with QueueClient.from_connection_string(storage_connection, queue) as raw:
                raw.send_message(base64.b64encode(text.encode()).decode())
            [msg] = await hub.receive(queue, 32, 30)
            assert msg.event == ALL_EVENTS[15] and msg.instance_id == "inst-b64" and msg.execution_id == "e"

    run(body())


def test_large_payloads_through_blobs_and_purge(
    open_azure_hub: OpenAzureHub, storage_connection: str
) -> None:
    """100 KB message, history property and instance input go through gzip blobs; purge removes them."""
    big = json.dumps("x" * 40_000 + "".join(chr(0x3041 + i % 80) for i in range(60_000)))
    instance_id = "big/1"

    async def body() -> None:
        async with open_azure_hub() as hub:
            started = dict(ALL_EVENTS[0], Input=big)
            await hub.send([OutboundMessage(event=started, instance_id=instance_id, execution_id="e1")])
            queue = hub.control_queue_name(instance_id)
            with QueueClient.from_connection_string(storage_connection, queue) as raw:
                [peeked] = raw.peek_messages()
            wrapper = json.loads(peeked.content)
            assert "TaskMessage" not in wrapper and wrapper["$type"] == "DurableTask.AzureStorage.MessageData"
            activity = wrapper["ActivityId"].replace("-", "")
            assert (
                wrapper["CompressedBlobName"] == f"{instance_id}/message-{activity}-ExecutionStarted.json.gz"
            )
            [msg] = await hub.receive(queue, 32, 30)
            assert msg.event == started and msg.raw["TaskMessage"]["Event"]["Input"] == big

            completed = dict(ALL_EVENTS[5], Result=big)
            await hub.append_history(instance_id, "e1", 0, [ALL_EVENTS[12], completed], None)
            rows = _entities(storage_connection, hub.history_table_name, "big^01")
            row = rows["0000000000000001"]
            assert row["Result"] == ""
            assert re.fullmatch(
                r"big\^01/history-0000000000000001-TaskCompleted-[0-9A-F]{8}-Result\.json\.gz",
                row["ResultBlobName"],
            )
            assert (await hub.load_history(instance_id)).events == [ALL_EVENTS[12], completed]

            await hub.write_instance(
                InstanceRow(instance_id=instance_id, name="Orch", input=big), replace=True
            )
            stored = _entities(storage_connection, hub.instances_table_name, "big^01")[""]
            assert stored["Input"].startswith("http://") and stored["Input"].endswith("-Input.json.gz")
            got = await hub.get_instance(instance_id)
            assert got is not None and got.input == big
            listed, _ = await hub.query_instances(InstanceQuery(instance_id_prefix="big/"))
            assert [r.input for r in listed] == [big]

            # An Instances Input pointing at a large ExecutionStarted message yields that message's Input.
            message_url = hub._payloads.url(wrapper["CompressedBlobName"])
            await hub.update_instance(instance_id, InstanceUpdate(input=message_url))
            got = await hub.get_instance(instance_id)
            assert got is not None and got.input == big

            container = hub.large_messages_container_name
            assert len(_blob_names(storage_connection, container, "big")) == 3
            assert await hub.purge_instance(instance_id) is True
            assert _blob_names(storage_connection, container, "big") == []
            assert await hub.get_instance(instance_id) is None
            assert _entities(storage_connection, hub.history_table_name, "big^01") == {}

    run(body())


def test_unknown_queue_is_refused(open_azure_hub: OpenAzureHub) -> None:
    """Receiving from a queue that is not the hub's raises TaskHubError instead of creating clients."""

    async def body() -> None:
        async with open_azure_hub() as hub:
            with pytest.raises(TaskHubError):
                await hub.receive("someone-else-control-00", 1, 1)
            assert keys.work_item_queue_name(hub.name) == hub.work_item_queue_name

    run(body())
