"""kill -9 devhost mid-flight: after a restart every instance completes, once, with the right output."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from devhost.durable.client import DurableClient
from devhost.durable.taskhub.azure_storage import AzureStorageTaskHub
from tests.e2e.flows import start, wait_for_custom, wait_until_finished
from tests.hosts import launch_host, stop_host
from tests.http_client import request

# Short leases so that messages the killed process had taken come back quickly.
SHORT_LEASES = {
    "AzureFunctionsJobHost__extensions__durableTask__storageProvider__controlQueueVisibilityTimeout": "00:00:02",
    "AzureFunctionsJobHost__extensions__durableTask__storageProvider__workItemQueueVisibilityTimeout": "00:00:02",
}


async def raise_while_down(connection: str, hub_name: str, instance_ids: list[str]) -> None:
    """Another process (this test) writes BookingConfirmed straight into the task hub's queues."""
    hub = AzureStorageTaskHub(connection, hub_name, 4)
    try:
        client = DurableClient(hub)
        for instance_id in instance_ids:
            row = await client.get(instance_id)
            assert row is not None
            await client.raise_event(row, "BookingConfirmed", "true")
    finally:
        await hub.close()


def history_fingerprints(connection: str, hub_name: str, instance_id: str) -> list[tuple]:
    table = TableServiceClient.from_connection_string(connection).get_table_client(f"{hub_name}History")
    rows = [r for r in table.query_entities("PartitionKey eq @pk", parameters={"pk": instance_id})
            if r["RowKey"] != "sentinel"]
    return [(r["EventType"], r.get("TaskScheduledId"), r.get("TimerId"), r.get("Name"), r["_Timestamp"])
            for r in rows if r["EventType"] not in ("OrchestratorStarted", "OrchestratorCompleted")]


def storage_state(connection: str, hub_name: str, instance_id: str) -> str:
    """What the task hub holds for a stuck instance: its history rows and what its queues hold."""
    rows = history_fingerprints(connection, hub_name, instance_id)
    lines = [f"{r[0]} id={r[1]} timer={r[2]} at {r[4]}" for r in rows]
    queues = QueueServiceClient.from_connection_string(connection)
    for queue in queues.list_queues(name_starts_with=hub_name.lower()):
        for message in queues.get_queue_client(queue.name).peek_messages(max_messages=32):
            lines.append(f"visible in {queue.name}: {message.content[:300]}")
        count = queues.get_queue_client(queue.name).get_queue_properties().approximate_message_count
        lines.append(f"{queue.name}: about {count} messages")
    return "\n".join(lines)


@pytest.mark.skipif(os.environ.get("E2E_HOST", "devhost") != "devhost", reason="kills the devhost process")
@pytest.mark.local_only("kills and restarts the host process and writes into its task hub")
def test_kill_nine_and_restart(storage_connection: str, tmp_path: Path) -> None:
    """20 instances in flight survive kill -9; events raised while down are delivered; no duplicate rows."""
    first = launch_host(storage_connection, tmp_path, extra_env=SHORT_LEASES)
    hub_name = first.hub_name
    try:
        steps = [start(first, "SetStatusTest", {"stepDelaySeconds": 1}) for _ in range(10)]
        tickets = [start(first, "ReserveTicket", {"userId": f"crash-{i}", "discountTimeout": 300})
                   for i in range(10)]
        for urls in tickets:
            wait_for_custom(urls, "discount")
        for urls in tickets[:5]:
            assert request("POST", first.api(f"reservations/{urls['id']}/confirmation"), {"confirmed": True}).status \
                == 202
    finally:
        stop_host(first, hard=True)

    asyncio.run(raise_while_down(storage_connection, hub_name, [u["id"] for u in tickets[5:]]))

    second = launch_host(storage_connection, tmp_path, hub_name=hub_name, extra_env=SHORT_LEASES)
    try:
        for urls in steps + tickets:
            moved = {**urls, "statusQueryGetUri": urls["statusQueryGetUri"].replace(
                f"localhost:{first.port}", f"localhost:{second.port}")}
            try:
                final = wait_until_finished(moved, timeout=60)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{storage_state(storage_connection, hub_name, urls['id'])}") from None
            assert final["runtimeStatus"] == "Completed", final
            if urls in tickets:
                assert final["output"] is True
            else:
                assert final["output"]["completedActions"] == ["A", "B", "C"]
            rows = history_fingerprints(storage_connection, hub_name, urls["id"])
            duplicates = [row for row, n in Counter(rows).items() if n > 1]
            assert not duplicates, duplicates
            assert sum(1 for row in rows if row[0] == "ExecutionCompleted") == 1
    finally:
        stop_host(second)
