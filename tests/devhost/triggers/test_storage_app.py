"""Timer, queue and blob triggers and storage bindings, end to end: devhost runs tests/devhost/apps/
storage_app against the session's Azurite and every effect is read back from storage."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devhost.secrets import host_id
from tests.hosts import RunningHost, launch_host, stop_host
from tests.http_client import request

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "tests" / "devhost" / "apps" / "storage_app"
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, within: float = 20.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"within {within} s: {what}")
        time.sleep(0.1)


@dataclass
class Names:
    """Fresh queue, container and table names for one run, given to the app as app settings."""

    suffix: str = uuid.uuid4().hex[:10]

    @property
    def settings(self) -> dict[str, str]:
        return {"ORDERS_QUEUE": f"orders-{self.suffix}", "CONTAINER": f"receipts-{self.suffix}",
                "UPLOADS": f"uploads-{self.suffix}", "TABLE": f"t{self.suffix}"}


@dataclass
class Storage:
    queues: QueueServiceClient
    blobs: BlobServiceClient
    tables: TableServiceClient


@pytest.fixture(scope="module")
def names() -> Names:
    return Names()


@pytest.fixture(scope="module")
def storage(storage_connection: str) -> Iterator[Storage]:
    yield Storage(QueueServiceClient.from_connection_string(storage_connection),
                  BlobServiceClient.from_connection_string(storage_connection),
                  TableServiceClient.from_connection_string(storage_connection))


def launch(storage_connection: str, names: Names, log_dir: Path) -> RunningHost:
    return launch_host(storage_connection, log_dir, hub_name=f"st{uuid.uuid4().hex[:12]}", extra_env=names.settings,
                       app_dir=APP)


def write_past_due_status(blobs: BlobServiceClient) -> datetime:
    """Record that nightly_report last ran days ago, so its next run (03:00 the day after) was missed."""
    now = datetime.now().astimezone()
    last = (now - timedelta(days=3)).replace(hour=3, minute=0, second=0, microsecond=0)
    status = {"Last": last.isoformat(), "Next": (last + timedelta(days=1)).isoformat(),
              "LastUpdated": last.isoformat()}
    container = blobs.get_container_client("azure-webjobs-hosts")
    if not container.exists():
        container.create_container()
    container.upload_blob(f"timers/{host_id(APP)}/Host.Functions.nightly_report/status", json.dumps(status),
                          overwrite=True)
    return last


@pytest.fixture(scope="module")
def app_host(storage_connection: str, storage: Storage, names: Names,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    write_past_due_status(storage.blobs)
    host = launch(storage_connection, names, tmp_path_factory.mktemp("storage-app"))
    try:
        yield host
    finally:
        stop_host(host)


def rows(storage: Storage, names: Names, partition: str) -> list[dict[str, Any]]:
    table = storage.tables.get_table_client(names.settings["TABLE"])
    try:
        return list(table.query_entities(f"PartitionKey eq '{partition}'"))
    except ResourceNotFoundError:
        return []


def blob_text(storage: Storage, container: str, name: str) -> str | None:
    try:
        return storage.blobs.get_blob_client(container, name).download_blob().readall().decode()
    except ResourceNotFoundError:
        return None


def send(storage: Storage, queue: str, body: Any) -> None:
    client = storage.queues.get_queue_client(queue)
    try:
        client.create_queue()
    except Exception:
        pass
    client.send_message(base64.b64encode(json.dumps(body).encode()).decode())


def test_timer_starts_an_orchestration_on_schedule(app_host: RunningHost) -> None:
    """The three-second timer starts Hello, which completes with its activity's result."""
    def completed() -> list[dict[str, Any]]:
        reply = request("GET", app_host.url("runtime/webhooks/durabletask/instances?runtimeStatus=Completed"))
        return [i for i in json.loads(reply.body) if i["name"] == "Hello" and i["output"] == "Hello timer!"]

    eventually(completed, "no Hello orchestration started by the timer completed")


def test_missed_timer_run_is_reported_past_due(app_host: RunningHost, storage: Storage, names: Names) -> None:
    """A recorded next run in the past makes the timer run at start with IsPastDue and its status."""
    found = eventually(lambda: rows(storage, names, "timer"), "nightly_report did not run past due at start")
    assert found[0]["IsPastDue"] is True
    assert json.loads(found[0]["Status"])["Last"].startswith((datetime.now() - timedelta(days=3)).strftime("%Y-%m-%d"))

    def status_moved_on() -> bool:
        # The status is written right after the run, so poll for it.
        status = json.loads(blob_text(storage, "azure-webjobs-hosts",
                                      f"timers/{host_id(APP)}/Host.Functions.nightly_report/status") or "{}")
        return datetime.fromisoformat(status["Next"]) > datetime.now().astimezone()

    eventually(status_moved_on, "the schedule status after the past-due run does not point to the next run")


def test_queue_message_writes_a_blob(app_host: RunningHost, storage: Storage, names: Names) -> None:
    """A base64 queue message reaches the function with its metadata; the blob output lands in Azurite."""
    order_id = uuid.uuid4().hex
    send(storage, names.settings["ORDERS_QUEUE"], {"id": order_id, "item": "book"})
    text = eventually(lambda: blob_text(storage, names.settings["CONTAINER"], f"{order_id}.json"),
                      "the queue trigger wrote no blob")
    receipt = json.loads(text)
    assert receipt["item"] == "book" and receipt["dequeueCount"] == 1 and receipt["messageId"]


def test_http_queue_output_feeds_the_queue_trigger(app_host: RunningHost, storage: Storage, names: Names) -> None:
    """An HTTP function's queue output is a base64 message that the queue trigger processes, and the
    blob and table inputs read back what the triggers wrote."""
    order_id = uuid.uuid4().hex
    reply = request("POST", app_host.url("api/enqueue"), {"id": order_id, "item": "pen"})
    assert reply.status == 202
    eventually(lambda: blob_text(storage, names.settings["CONTAINER"], f"{order_id}.json"),
               "the message from the HTTP queue output was not processed")
    back = json.loads(request("GET", app_host.url(f"api/orders/{order_id}")).body)
    assert back["receipt"]["item"] == "pen" and back["uploads"] == []
    missing = json.loads(request("GET", app_host.url(f"api/orders/{uuid.uuid4().hex}")).body)
    assert missing == {"receipt": None, "uploads": []}


def test_failing_message_ends_in_poison_queue(app_host: RunningHost, storage: Storage, names: Names) -> None:
    """A message that fails maxDequeueCount (3) times moves, unchanged, to <queue>-poison."""
    order_id = uuid.uuid4().hex
    queue = names.settings["ORDERS_QUEUE"]
    send(storage, queue, {"id": order_id, "item": "fail"})
    poison = storage.queues.get_queue_client(f"{queue}-poison")

    def poisoned() -> list[Any]:
        try:
            return [m for m in poison.peek_messages(max_messages=32)
                    if order_id in base64.b64decode(m.content).decode()]
        except ResourceNotFoundError:
            return []

    eventually(poisoned, "the failing message did not reach the poison queue")
    attempts = app_host.log_text().count(f"cannot process order {order_id}")
    assert attempts >= 3  # each failure is logged (message and stack)
    assert "(attempt 3)" in app_host.log_text() and "(attempt 4)" not in app_host.log_text()


def test_admin_route_runs_a_queue_function(app_host: RunningHost, storage: Storage, names: Names) -> None:
    """POST /admin/functions/{name} with {"input": ...} runs the queue function with that message (202)."""
    order_id = uuid.uuid4().hex
    body = json.dumps({"input": json.dumps({"id": order_id, "item": "by hand"})}).encode()
    assert request("POST", app_host.url("admin/functions/on_order"), raw=body, content_type=None).status == 202
    eventually(lambda: blob_text(storage, names.settings["CONTAINER"], f"{order_id}.json"),
               "the admin invocation wrote no blob")
    assert request("POST", app_host.url("admin/functions/nope"), raw=b"{}", content_type=None).status == 404
    reply = request("POST", app_host.url("admin/functions/enqueue"), raw=b"{}", content_type=None)
    assert reply.status == 400 and b"httpTrigger" in reply.body
    assert request("POST", app_host.url("admin/functions/on_order"), raw=b"[1]", content_type=None).status == 400


def test_failing_blob_ends_in_the_blob_trigger_poison_queue(app_host: RunningHost, storage: Storage,
                                                             names: Names) -> None:
    """A blob whose function fails maxDequeueCount times is reported in webjobs-blobtrigger-poison."""
    container = storage.blobs.get_container_client(names.settings["UPLOADS"])
    if not container.exists():
        container.create_container()
    name = f"fail-{uuid.uuid4().hex}"
    container.upload_blob(f"{name}.txt", b"bad")
    poison = storage.queues.get_queue_client("webjobs-blobtrigger-poison")

    def poisoned() -> list[dict[str, Any]]:
        try:
            messages = [json.loads(base64.b64decode(m.content)) for m in poison.peek_messages(max_messages=32)]
        except ResourceNotFoundError:
            return []
        return [m for m in messages if m["BlobName"] == f"{name}.txt"]

    message = eventually(poisoned, "the failing blob's message did not reach the poison queue")[0]
    assert message["Type"] == "BlobTrigger" and message["FunctionId"] == "Host.Functions.on_upload"
    assert message["ContainerName"] == names.settings["UPLOADS"] and message["ETag"].startswith('"')
    assert app_host.log_text().count(f"cannot process upload {name}") >= 3


def test_blob_trigger_writes_a_row_once_across_restarts(app_host: RunningHost, storage: Storage, names: Names,
                                                        storage_connection: str,
                                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A new blob runs the function once (table output row); a restarted host does not run it again."""
    uploads = names.settings["UPLOADS"]
    container = storage.blobs.get_container_client(uploads)
    if not container.exists():
        container.create_container()
    first = uuid.uuid4().hex
    container.upload_blob(f"{first}.txt", b"hello blob")
    container.upload_blob(f"{first}.bin", b"not matching the pattern")
    row = eventually(lambda: rows(storage, names, f"upload-{first}"), "the blob trigger wrote no row")[0]
    assert row["Content"] == "hello blob" and row["Length"] == len(b"hello blob")
    assert row["Path"] == f"{uploads}/{first}.txt"

    stop_host(app_host)
    again = launch(storage_connection, names, tmp_path_factory.mktemp("storage-app-again"))
    try:
        second = uuid.uuid4().hex
        container.upload_blob(f"{second}.txt", b"after restart")
        eventually(lambda: rows(storage, names, f"upload-{second}"), "the restarted host missed a new blob")
        assert len(rows(storage, names, f"upload-{first}")) == 1
        receipts = storage.blobs.get_container_client("azure-webjobs-hosts").list_blobs(
            name_starts_with=f"blobreceipts/{host_id(APP)}/Host.Functions.on_upload/")
        assert sum(1 for r in receipts if r.name.endswith(f"/{uploads}/{first}.txt")) == 1
    finally:
        stop_host(again)
