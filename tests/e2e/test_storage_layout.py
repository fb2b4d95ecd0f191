"""The task hub on Azurite is laid out where the Durable Task Azure Storage provider puts it."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from tests.e2e.flows import start, wait_for_custom, wait_until_finished
from tests.hosts import RunningHost
from tests.http_client import request

pytestmark = pytest.mark.local_only("reads the task hub's tables, queues and blobs in storage")


def test_tables_queues_and_rows(host: RunningHost) -> None:
    """Instances and History tables, control and work-item queues, and rows with the provider's columns."""
    urls = start(host, "ReserveTicket", "layout-user")
    wait_for_custom(urls, "discount")
    request("POST", host.api(f"reservations/{urls['id']}/confirmation"), {"confirmed": True})
    wait_until_finished(urls)
    hub = host.hub_name
    conn = host.storage_connection

    tables = TableServiceClient.from_connection_string(conn)
    names = {t.name for t in tables.list_tables()}
    assert {f"{hub}Instances", f"{hub}History"} <= names

    queues = {q.name for q in QueueServiceClient.from_connection_string(conn).list_queues()}
    expected = {f"{hub.lower()}-control-{n:02d}" for n in range(4)} | {f"{hub.lower()}-workitems"}
    assert expected <= queues

    containers = {c.name for c in BlobServiceClient.from_connection_string(conn).list_containers()}
    assert f"{hub.lower()}-largemessages" in containers

    row = tables.get_table_client(f"{hub}Instances").get_entity(partition_key=urls["id"], row_key="")
    assert row["RuntimeStatus"] == "Completed" and row["Name"] == "ReserveTicket"
    assert row["Output"] == "true"
    # The starter passes the normalised input; the Python client sends it as JSON text inside a JSON string.
    assert json.loads(json.loads(row["Input"])) == {"userId": "layout-user", "discountTimeout": 60}
    assert row["TaskHubName"] == hub
    assert isinstance(row["CreatedTime"], datetime) and isinstance(row["CompletedTime"], datetime)
    assert row["CustomStatus"].startswith('{"outcome":"confirmed"') or '"message"' in row["CustomStatus"]

    history = list(tables.get_table_client(f"{hub}History").query_entities(
        "PartitionKey eq @pk", parameters={"pk": urls["id"]}))
    keys = [r["RowKey"] for r in history]
    assert keys[-1] == "sentinel"
    assert keys[:-1] == [f"{i:016X}" for i in range(len(keys) - 1)]
    events = [r["EventType"] for r in history[:-1]]
    assert events[:3] == ["OrchestratorStarted", "ExecutionStarted", "TaskScheduled"]
    assert events.count("ExecutionCompleted") == 1
    completed = next(r for r in history if r.get("EventType") == "ExecutionCompleted")
    assert completed["OrchestrationStatus"] == "Completed" and completed["Result"] == "true"
    assert all(r["ExecutionId"] == row["ExecutionId"] for r in history)
    assert history[-1]["IsCheckpointComplete"] is True
    scheduled = next(r for r in history if r.get("EventType") == "TaskScheduled")
    assert scheduled["Name"] == "CalculateDiscount" and scheduled["EventId"] == 0
    assert isinstance(scheduled["_Timestamp"], datetime)
