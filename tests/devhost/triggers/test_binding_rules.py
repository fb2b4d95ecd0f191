"""The rules storage bindings follow without storage: connection settings, binding expressions, queue
settings and message shapes, table entities, what is refused, and the timer's past-due check."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta

import pytest
from azure.functions import meta

from devhost.bindings.connection import BindingError, resolve_storage_connection
from devhost.bindings.expressions import resolve
from devhost.bindings.storage import _queue_messages, _table_entities
from devhost.bindings.support import unsupported_reason
from devhost.errors import ConfigError
from devhost.triggers.blob import BlobPathPattern, quoted_etag
from devhost.triggers.ncrontab import CronSchedule
from devhost.triggers.queue import QueueSettings
from devhost.triggers.timer import ScheduleStatus, check_past_due


def test_connection_names_resolve_like_the_host() -> None:
    """Empty means AzureWebJobsStorage; AzureWebJobs<name> wins over <name>; ConnectionStrings: is read."""
    env = {"AzureWebJobsStorage": "main", "Other": "other", "AzureWebJobsOther": "prefixed",
           "ConnectionStrings:Third": "third", "Fourth": "plain", "ConnectionStrings__Fourth": "section"}
    def text(name: str | None) -> str | None:
        return resolve_storage_connection(name, env, ("queue",)).connection_string

    assert text(None) == text("") == text("AzureWebJobsStorage") == "main"
    assert text("Other") == "prefixed"
    assert text("Third") == "third"
    assert text("fourth") == "section"  # ConnectionStrings:<name> before <name>; names are case-insensitive
    with pytest.raises(BindingError, match="'Missing' is not set"):
        resolve_storage_connection("Missing", env)


def test_identity_based_binding_connections() -> None:
    """__serviceUri serves whichever service the binding uses; <service>ServiceUri and accountName win over it."""
    uri = "https://acct.queue.core.windows.net/"
    env = {"Orders__serviceUri": uri, "Orders__credential": "managedidentity", "Orders__clientId": "id-1"}
    connection = resolve_storage_connection("Orders", env, ("queue",))
    assert connection.is_identity_based and connection.setting == "Orders"
    assert connection.binding_endpoint("queue") == uri.rstrip("/")
    assert connection.credential is not None and connection.credential.client_id == "id-1"

    both = {"Data__serviceUri": "https://a.blob.core.windows.net", "Data__queueServiceUri": "https://q.example"}
    assert resolve_storage_connection("Data", both, ("queue",)).binding_endpoint("queue") == "https://q.example"
    named = {**both, "Data__accountName": "acct"}
    assert resolve_storage_connection("Data", named).binding_endpoint("table") == "https://acct.table.core.windows.net"

    # An identity-based AzureWebJobs<name> section wins over a <name> connection string.
    prefixed = {"AzureWebJobsData__blobServiceUri": "https://b.example", "Data": "UseDevelopmentStorage=true"}
    assert resolve_storage_connection("Data", prefixed, ("blob",)).setting == "AzureWebJobsData"

    # A blob trigger needs the queue endpoint too; serviceUri cannot stand for two services.
    with pytest.raises(BindingError, match=r"no queue endpoint: set Data__accountName, or Data__queueServiceUri"):
        resolve_storage_connection("Data", {"Data__blobServiceUri": "https://b.example"}, ("blob", "queue"))
    with pytest.raises(BindingError, match="is not an absolute URL"):
        resolve_storage_connection("Bad", {"Bad__serviceUri": "acct.blob"}, ("blob",))
    with pytest.raises(BindingError, match="understands 'managedidentity'"):
        resolve_storage_connection("Bad", {"Bad__serviceUri": "https://b.example", "Bad__credential": "cert"})


def test_binding_expressions() -> None:
    """Trigger data (case-insensitive, dotted), app settings and system expressions fill templates."""
    data = {"QueueTrigger": "msg", "order": {"id": 7}, "name": "a/b"}
    env = {"CONTAINER": "box"}
    assert resolve("%CONTAINER%/{queueTrigger}.txt", data, env) == "box/msg.txt"
    assert resolve("{Order.Id}-{name}", data, env) == "7-a/b"
    assert len(resolve("{rand-guid}", data, env)) == 36
    with pytest.raises(BindingError, match=re.escape("'{missing}'")):
        resolve("x/{missing}", data, env)
    with pytest.raises(BindingError, match="NOPE"):
        resolve("%NOPE%/x", data, env)


def test_queue_settings_from_host_json() -> None:
    """extensions.queues with the host's defaults; bad values are configuration errors."""
    assert QueueSettings.from_host_json({}) == QueueSettings()
    settings = QueueSettings.from_host_json({"extensions": {"queues": {
        "batchSize": 4, "maxPollingInterval": "00:00:01", "visibilityTimeout": "00:00:30",
        "maxDequeueCount": 2, "messageEncoding": "none"}}})
    assert (settings.batch_size, settings.new_batch_threshold, settings.max_polling_interval) == (4, 2, 1.0)
    assert (settings.visibility_timeout, settings.max_dequeue_count, settings.base64) == (30.0, 2, False)
    with pytest.raises(ConfigError):
        QueueSettings.from_host_json({"extensions": {"queues": {"batchSize": 64}}})


def test_queue_output_values_become_messages() -> None:
    """str and bytes are one message; a list is one per item; a func.QueueMessage writes its body."""
    assert _queue_messages(meta.Datum("hi", "string")) == ["hi"]
    assert _queue_messages(meta.Datum(b"\x00", "bytes")) == [b"\x00"]
    assert _queue_messages(meta.Datum(json.dumps(["a", {"id": "1", "body": "b"}, {"k": 1}]), "json")) == [
        "a", "b", '{"k": 1}']
    assert _queue_messages(meta.Datum({"k": 1}, "dict")) == ['{"k": 1}']


def test_table_output_entities() -> None:
    """Binding keys fill in missing PartitionKey/RowKey; an entity without keys is refused."""
    raw = {"name": "row"}
    entities = _table_entities(meta.Datum('[{"RowKey": 1, "x": 2}]', "string"), raw, "p", None)
    assert entities == [{"RowKey": "1", "x": 2, "PartitionKey": "p"}]
    with pytest.raises(BindingError, match="PartitionKey and RowKey"):
        _table_entities(meta.Datum('{"x": 1}', "string"), raw, None, None)


def test_unsupported_bindings_get_a_reason() -> None:
    """Supported shapes pass; other triggers, inputs, outputs and event-grid blob triggers are named."""
    ok = [{"type": "queueTrigger", "direction": "IN", "name": "m"}, {"type": "blob", "direction": "OUT"},
          {"type": "table", "direction": "IN"}, {"type": "durableClient", "direction": "IN"}]
    assert unsupported_reason("queueTrigger", ok) is None
    reason = unsupported_reason("httpTrigger", [{"type": "httpTrigger", "direction": "IN"},
                                                {"type": "cosmosDB", "direction": "IN", "name": "docs"},
                                                {"type": "serviceBus", "direction": "OUT", "name": "out"}])
    assert reason == ("devhost cannot provide the cosmosDB input binding ('docs'); "
                      "devhost has no serviceBus output binding ('out')")
    assert "EventGrid" in (unsupported_reason("blobTrigger", [
        {"type": "blobTrigger", "direction": "IN", "name": "b", "source": "EventGrid"}]) or "")


def test_blob_path_patterns() -> None:
    """Parameters bind parts of the blob name; the literal container is kept apart; ETags get quotes."""
    pattern = BlobPathPattern.parse("Uploads/in/{name}.{ext}")
    assert pattern.container == "uploads" and pattern.prefix == "in/"
    assert pattern.match("in/report.final.txt") == {"name": "report", "ext": "final.txt"}
    assert pattern.match("out/report.txt") is None
    assert BlobPathPattern.parse("box").match("any/thing") == {"blobname": "any/thing"}
    assert quoted_etag("0x1") == '"0x1"' == quoted_etag('"0x1"')


class MemoryStatusStore:
    def __init__(self) -> None:
        self.writes: list[ScheduleStatus] = []

    async def put(self, timer_name: str, status: ScheduleStatus) -> None:
        self.writes.append(status)


def test_past_due_check_follows_the_host() -> None:
    """A recorded Next in the past is past due; a changed schedule or a first start is not."""
    daily = CronSchedule.parse("0 0 3 * * *")
    now = datetime(2026, 5, 10, 12, 0).astimezone()
    last = datetime(2026, 5, 7, 3, 0).astimezone()
    store = MemoryStatusStore()

    late, status = asyncio.run(check_past_due(store, "t", now, daily, ScheduleStatus(
        last, daily.next_after(last), last)))  # type: ignore[arg-type]
    assert late == now - datetime(2026, 5, 8, 3, 0).astimezone() and store.writes == []

    late, status = asyncio.run(check_past_due(store, "t", now, daily, ScheduleStatus(
        last, last + timedelta(hours=1), last)))  # type: ignore[arg-type]
    assert late == timedelta(0) and status.next == datetime(2026, 5, 11, 3, 0).astimezone()

    late, status = asyncio.run(check_past_due(store, "t", now, daily, None))  # type: ignore[arg-type]
    assert late == timedelta(0) and status.next == datetime(2026, 5, 11, 3, 0).astimezone()
