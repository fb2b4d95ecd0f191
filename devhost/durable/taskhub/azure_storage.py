"""``AzureStorageTaskHub``: the task hub in Azure Storage (Azurite) in the DurableTask.AzureStorage layout.

Tables ``{hub}Instances`` / ``{hub}History``, queues ``{hub}-control-NN`` / ``{hub}-workitems``, containers
``{hub}-largemessages`` / ``{hub}-leases`` (spec Part B). One service client per storage service, created
once; table/queue/container clients are cached and share their service client's HTTP session, because
on two cores the Python-side cost of each storage call matters as much as the number of calls. For the
same reason the per-message and per-episode calls go through ``rest`` and ``table_batch`` (plain REST
requests on the SDK clients' pipelines); the rare ones use the SDK methods directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from devhost.durable.history import Event, format_timestamp, utcnow
from devhost.durable.taskhub import codec, keys, rest, storage_http, table_batch
from devhost.durable.taskhub.base import (
    WORK_ITEM_QUEUE,
    HistoryPage,
    InstanceQuery,
    InstanceRow,
    OutboundMessage,
    ReceivedMessage,
)
from devhost.durable.taskhub.large_payloads import (
    BLOB_NAME_SUFFIX,
    MAX_QUEUE_MESSAGE_BYTES,
    OFFLOADABLE_PROPERTIES,
    BlobPayloadStore,
    blob_folder,
    exceeds_table_property_limit,
    history_blob_name,
    message_blob_name,
)
from devhost.durable.taskhub.table_batch import BatchError, BatchOperation
from devhost.errors import CheckpointConflict, TaskHubError
from devhost.storage_clients import open_service_clients
from devhost.storage_settings import StorageConnection

log = logging.getLogger("devhost.taskhub")

T = TypeVar("T")

_HUB_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,49}")
MAX_BATCH_ROWS = 99  # + the sentinel = the 100-operation limit of one table transaction
MAX_BATCH_BYTES = 3 * 1024 * 1024  # stay well below the 4 MB transaction payload limit
_INSTANCE_BLOB_COLUMNS = ("Input", "Output")
# A few quick retries. The SDK defaults back off for up to a minute, which suits a remote service; a
# local emulator either answers at once or is down.
_TABLE_RETRY: dict[str, Any] = {"retry_total": 3, "retry_backoff_factor": 0.1, "retry_backoff_max": 1.0}
_STORAGE_RETRY: dict[str, Any] = {
    "retry_total": 3,
    "initial_backoff": 0.2,
    "increment_base": 0.3,
    "random_jitter_range": 0.1,
}


def quiet_azure_logging() -> None:
    """The SDK logs every request at INFO; that costs CPU and floods devhost's own log."""
    azure_logger = logging.getLogger("azure")
    if azure_logger.level == logging.NOTSET or azure_logger.level < logging.WARNING:
        azure_logger.setLevel(logging.WARNING)


def _local_transport() -> AioHttpTransport:
    """An HTTP transport that ignores proxy/netrc environment settings.

    With the SDK default (``trust_env=True``) aiohttp looks up ``~/.netrc`` and the proxy variables in a
    worker thread on every request: two thread hand-offs per storage call, and a proxy could even
    capture loopback traffic to Azurite.
    """
    return AioHttpTransport(use_env_settings=False)


def _plainly_inline(text: str) -> bool:
    """Raw JSON with a TaskMessage: decodable at once. Anything else may be (Base64 of) a blob wrapper."""
    return text.startswith("{") and '"TaskMessage"' in text


def _utf8_length_exceeds(text: str, limit: int) -> bool:
    if len(text) * 4 <= limit:  # even 4-byte characters throughout would fit
        return False
    if text.isascii():
        return len(text) > limit
    return len(text.encode("utf-8", "surrogatepass")) > limit


def _estimated_bytes(entity: dict[str, Any]) -> int:
    """Pessimistic request size of one row in ``table_batch.entity_json`` (ASCII-escaped JSON)."""
    size = 300
    for key, value in entity.items():
        size += len(key) + 40
        if isinstance(value, str):
            # Escaped quotes/backslashes double ASCII text; anything else becomes a 6-byte \uXXXX.
            size += len(value) * (2 if value.isascii() else 6)
    return size


async def _guard(what: str, call: Awaitable[T]) -> T:
    """Await a storage call, turning SDK and REST errors into ``TaskHubError``."""
    try:
        return await call
    except (AzureError, rest.StorageCallError) as exc:
        raise TaskHubError(f"{what} failed: {exc}") from exc


def _log_failed_put(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("Writing a message failed: %s", future.exception())


class AzureStorageTaskHub:
    """A task hub in Azure Storage; see ``devhost.durable.taskhub.base.TaskHub`` for the contract."""

    def __init__(self, connection: str | StorageConnection, hub_name: str, partition_count: int = 4) -> None:
        if not 1 <= partition_count <= 16:
            raise ValueError("partition_count must be between 1 and 16")
        if not _HUB_NAME.fullmatch(hub_name):
            # Table names allow only these; the extension enforces the same rule.
            raise ValueError(
                f"task hub name {hub_name!r} must be 3-50 letters or digits, starting with a letter"
            )
        quiet_azure_logging()
        self.name = hub_name
        self.partition_count = partition_count
        # A connection string, or identity-based settings (service URIs and a token credential).
        services = open_service_clients(connection, _local_transport, _TABLE_RETRY, _STORAGE_RETRY)
        self._table_service: TableServiceClient = services[0]
        self._queue_service: QueueServiceClient = services[1]
        self._blob_service: BlobServiceClient = services[2]

        self.history_table_name = keys.history_table_name(hub_name)
        self.instances_table_name = keys.instances_table_name(hub_name)
        self._history: TableClient = self._table_service.get_table_client(self.history_table_name)
        self._table_base_url = self._table_service.url.rstrip("/") + "/"  # account endpoint for $batch
        self._instances: TableClient = self._table_service.get_table_client(self.instances_table_name)

        self._control_names = [keys.control_queue_name(hub_name, i) for i in range(partition_count)]
        self._work_items_name = keys.work_item_queue_name(hub_name)
        self._queue_clients: dict[str, QueueClient] = {
            name: self._queue_service.get_queue_client(name)
            for name in [*self._control_names, self._work_items_name]
        }
        self.large_messages_container_name = keys.large_messages_container_name(hub_name)
        self.leases_container_name = keys.leases_container_name(hub_name)
        self._payloads = BlobPayloadStore(
            self._blob_service.get_container_client(self.large_messages_container_name),
            self._blob_service.url,
        )
        self._leases = self._blob_service.get_container_client(self.leases_container_name)
        # The hot calls (rest, table_batch) go on one lean aiohttp session (account key or bearer token);
        # with a SAS the lean client is None and they stay on the SDK pipelines.
        self._http = storage_http.for_clients(connection, self._table_service, self._queue_service)
        if self._http is not None:
            for client in [self._history, self._instances, *self._queue_clients.values()]:
                storage_http.attach(client, self._http)

    # ---------------------------------------------------------------------------------------- setup

    async def create_if_not_exists(self) -> None:
        """Create tables, queues, containers and ``taskhub.json``; one read when they already exist.

        ``taskhub.json`` is written last, so its presence means an earlier call finished everything.
        Every create tolerates "already exists", so concurrent or repeated calls are safe.
        """
        try:
            await self._create_all()
        except AzureError as exc:
            raise TaskHubError(f"cannot create task hub {self.name} in storage: {exc}") from exc

    async def _create_all(self) -> None:
        info = await self._read_taskhub_info()
        if info is not None and info.get("PartitionCount") == self.partition_count:
            return
        await asyncio.gather(
            self._create_table(self.history_table_name),
            self._create_table(self.instances_table_name),
            *(self._create_queue(client) for client in self._queue_clients.values()),
            self._create_container(self._payloads.container),
            self._create_container(self._leases),
        )
        if info is None:
            body = json.dumps(
                {
                    "TaskHubName": self.name,
                    "CreatedAt": format_timestamp(utcnow()),
                    "PartitionCount": self.partition_count,
                }
            )
            try:
                await self._leases.upload_blob(keys.TASKHUB_INFO_BLOB, body.encode(), overwrite=False)
            except ResourceExistsError:
                pass  # another process finished first
        else:
            log.warning(
                "Task hub %s was created with %s partitions; this host uses %s",
                self.name,
                info.get("PartitionCount"),
                self.partition_count,
            )

    async def _read_taskhub_info(self) -> dict[str, Any] | None:
        try:
            downloader = await self._leases.download_blob(keys.TASKHUB_INFO_BLOB)
            value = json.loads(await downloader.readall())
        except ResourceNotFoundError:
            return None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    async def _create_table(self, name: str) -> None:
        try:
            await self._table_service.create_table(name)
        except ResourceExistsError:
            pass

    @staticmethod
    async def _create_queue(client: QueueClient) -> None:
        try:
            await client.create_queue()
        except ResourceExistsError:
            pass

    @staticmethod
    async def _create_container(client: Any) -> None:
        try:
            await client.create_container()
        except ResourceExistsError:
            pass

    async def delete_if_exists(self) -> None:
        """Drop every table, queue and container of this hub (not in ``TaskHub``: tests and benchmarks).

        Leftover messages matter: Azurite's queue calls slow down with the number of messages it holds.
        """

        async def ignore_missing(call: Awaitable[Any]) -> None:
            try:
                await call
            except ResourceNotFoundError:
                pass

        await _guard(
            f"deleting task hub {self.name}",
            asyncio.gather(
                self._table_service.delete_table(self.history_table_name),
                self._table_service.delete_table(self.instances_table_name),
                *(ignore_missing(client.delete_queue()) for client in self._queue_clients.values()),
                ignore_missing(self._payloads.container.delete_container()),
                ignore_missing(self._leases.delete_container()),
            ),
        )

    async def close(self) -> None:
        await asyncio.gather(
            self._table_service.close(), self._queue_service.close(), self._blob_service.close()
        )
        if self._http is not None:
            await self._http.close()

    # ---------------------------------------------------------------------------------------- names

    def control_queue_name(self, instance_id: str) -> str:
        return self._control_names[keys.partition_index(instance_id, self.partition_count)]

    @property
    def control_queue_names(self) -> list[str]:
        return list(self._control_names)

    @property
    def work_item_queue_name(self) -> str:
        return self._work_items_name

    def _queue_client(self, queue: str) -> QueueClient:
        if queue == WORK_ITEM_QUEUE:
            queue = self._work_items_name
        client = self._queue_clients.get(queue)
        if client is None:
            raise TaskHubError(f"{queue!r} is not a queue of task hub {self.name}")
        return client

    # --------------------------------------------------------------------------------------- queues

    async def send(self, messages: Sequence[OutboundMessage]) -> None:
        """Send every message to its queue (concurrently); delayed ones start invisible."""
        if not messages:
            return
        now = utcnow()
        if len(messages) == 1:
            await self._send_one(messages[0], now)
        else:
            await asyncio.gather(*(self._send_one(message, now) for message in messages))

    async def send_held(self, messages: Sequence[OutboundMessage], lease: float) -> list[ReceivedMessage]:
        """Send messages already leased to this process: hidden for ``lease`` s, with their receipts.

        The sender hands them to its own consumer in memory; the queue copy is what survives a crash
        (it becomes visible when the lease runs out and is then received as usual).
        """
        held = self.start_held(messages, lease)
        await asyncio.gather(*(message.written for message in held if message.written is not None))
        return held

    def start_held(self, messages: Sequence[OutboundMessage], lease: float) -> list[ReceivedMessage]:
        """``send_held`` without waiting: each message's ``written`` completes when the queue has it."""
        now = utcnow()
        held: list[ReceivedMessage] = []
        for message in messages:
            queue, activity_id, envelope, text = self._encode(message)
            received = ReceivedMessage(
                queue=queue, message_id=f"pending:{activity_id}", receipt="", dequeue_count=0, inserted_on=now,
                event=message.event, instance_id=message.instance_id, execution_id=message.execution_id,
                sequence_number=envelope.get("SequenceNumber") or 0, episode=message.episode,
                activity_id=activity_id, raw=envelope,
            )
            received.written = asyncio.ensure_future(self._put_held(received, message, text, now, lease))
            received.written.add_done_callback(_log_failed_put)
            held.append(received)
        return held

    async def _put_held(self, received: ReceivedMessage, message: OutboundMessage, text: str, now: datetime,
                        lease: float) -> None:
        item = await self._put(message, received.queue, received.activity_id, text, now, lease)
        received.message_id, received.receipt, received.inserted_on = (
            item.message_id, item.pop_receipt, item.inserted_on)

    async def _send_one(self, message: OutboundMessage, now: datetime) -> None:
        queue, activity_id, _, text = self._encode(message)
        await self._put(message, queue, activity_id, text, now, None)

    def _encode(self, message: OutboundMessage) -> tuple[str, str, dict[str, Any], str]:
        queue = (
            self._work_items_name if message.to_work_items else self.control_queue_name(message.instance_id)
        )
        activity_id = str(uuid.uuid4())
        envelope = codec.build_envelope(message, activity_id, codec.next_sequence_number())
        return queue, activity_id, envelope, codec.dumps_envelope(envelope)

    async def _put(self, message: OutboundMessage, queue: str, activity_id: str, text: str, now: datetime,
                   lease: float | None) -> rest.QueueItem:
        if _utf8_length_exceeds(text, MAX_QUEUE_MESSAGE_BYTES):
            blob_name = message_blob_name(
                message.instance_id, activity_id, codec.event_type_name(message.event["EventType"])
            )
            envelope = codec.parse_message_text(text)
            await _guard("uploading a large message", self._payloads.upload(blob_name, text))
            text = codec.dumps_envelope(codec.wrapper_envelope(envelope, blob_name))
        delay = 0
        if message.visible_at is not None:
            delay = codec.visibility_seconds((message.visible_at - now).total_seconds())
        if lease:
            delay = max(delay, max(1, codec.visibility_seconds(lease)))
        return await _guard(f"sending to {queue}", rest.put_message(self._queue_clients[queue], text, delay))

    async def receive(
        self, queue: str, max_messages: int, visibility_timeout: float
    ) -> list[ReceivedMessage]:
        """Up to ``max_messages`` (≤ 32) visible messages, hidden for ``visibility_timeout`` s; one call.

        The service accepts 1 s to 7 days of visibility on receive, so shorter values become 1 s.
        """
        client = self._queue_client(queue)
        count = max(1, min(32, max_messages))
        visibility = max(1, codec.visibility_seconds(visibility_timeout))
        items = await _guard(
            f"receiving from {client.queue_name}", rest.get_messages(client, count, visibility)
        )
        if not items:
            return []
        name = client.queue_name
        if all(_plainly_inline(item.text) for item in items):
            # The common case decodes inline, without a task per message.
            decoded = [self._decode(name, item, self._parse(name, item)) for item in items]
        else:
            envelopes = await asyncio.gather(*(self._envelope(name, item) for item in items))
            decoded = [self._decode(name, i, e) for i, e in zip(items, envelopes, strict=True)]
        return [message for message in decoded if message is not None]

    @staticmethod
    def _parse(queue: str, item: rest.QueueItem) -> dict[str, Any] | None:
        try:
            return codec.parse_message_text(item.text)
        except ValueError as exc:
            log.error("Cannot parse message %s in %s: %s", item.message_id, queue, exc)
            return None

    async def _envelope(self, queue: str, item: rest.QueueItem) -> dict[str, Any] | None:
        """The message's envelope, loaded from its blob when the queue holds only a wrapper (B.4.3)."""
        envelope = self._parse(queue, item)
        if envelope is None or "TaskMessage" in envelope or not envelope.get("CompressedBlobName"):
            return envelope
        try:
            return codec.parse_message_text(await self._payloads.download(envelope["CompressedBlobName"]))
        except (ValueError, AzureError) as exc:
            log.error("Cannot load large message %s in %s: %s", item.message_id, queue, exc)
            return None

    @staticmethod
    def _decode(queue: str, item: rest.QueueItem, envelope: dict[str, Any] | None) -> ReceivedMessage | None:
        if envelope is None:
            return None
        try:
            event, instance_id, execution_id = codec.envelope_event(envelope)
        except (ValueError, KeyError, TypeError) as exc:
            # Left in the queue: it reappears after the visibility timeout and can be inspected there.
            log.error("Cannot decode message %s in %s: %s", item.message_id, queue, exc)
            return None
        return ReceivedMessage(
            queue=queue,
            message_id=item.message_id,
            receipt=item.pop_receipt,
            dequeue_count=item.dequeue_count,
            inserted_on=item.inserted_on,
            event=event,
            instance_id=instance_id,
            execution_id=execution_id,
            sequence_number=envelope.get("SequenceNumber") or 0,
            episode=envelope.get("Episode"),
            activity_id=envelope.get("ActivityId") or "",
            raw=envelope,
        )

    async def delete(self, message: ReceivedMessage) -> None:
        """Delete a received message; a message already gone (or re-leased by someone else) is ignored."""
        try:
            await rest.delete_message(self._queue_client(message.queue), message.message_id, message.receipt)
        except rest.StorageCallError as exc:
            # 404 MessageNotFound, or 400 PopReceiptMismatch when another receive re-leased it: as in
            # DTFx, only a warning-worthy race, never a reason to fail the episode.
            if exc.status != 404 and exc.code != "PopReceiptMismatch":
                raise TaskHubError(f"deleting message {message.message_id} failed: {exc}") from exc
            log.debug("Message %s was already deleted or re-leased", message.message_id)
        except AzureError as exc:
            raise TaskHubError(f"deleting message {message.message_id} failed: {exc}") from exc

    async def set_visibility(self, message: ReceivedMessage, seconds: float) -> None:
        """Hide the message for ``seconds`` more; its ``receipt`` is replaced in place.

        Raises ``TaskHubError`` when the receipt is stale (the lease was lost).
        """
        client = self._queue_client(message.queue)
        try:
            receipt = await rest.update_visibility(
                client, message.message_id, message.receipt, codec.visibility_seconds(seconds)
            )
        except (rest.StorageCallError, AzureError) as exc:
            raise TaskHubError(f"updating message {message.message_id} failed: {exc}") from exc
        message.receipt = receipt

    # -------------------------------------------------------------------------------------- history

    async def load_history(self, instance_id: str) -> HistoryPage:
        """The current execution's events (one partition query) and the sentinel's ETag."""
        pk = keys.escape_partition_key(instance_id)
        entities = await _guard(
            f"loading history of {instance_id!r}",
            rest.query_partition(self._history, self._table_base_url, pk),
        )
        if not entities:
            return HistoryPage(None, [], None)
        entities.sort(key=_row_key)  # the service returns RowKey order already; cheap insurance
        sentinel = entities[-1] if entities[-1]["RowKey"] == keys.SENTINEL_ROW_KEY else None
        execution_id = (sentinel or entities[0]).get("ExecutionId")
        rows: list[rest.Row] = []
        for entity in entities:
            if entity.get("ExecutionId") != execution_id:
                break  # older executions' tails carry their own ExecutionId
            if entity is not sentinel:
                rows.append(entity)
        await self._inline_blob_columns(rows)
        events = [codec.entity_to_event(entity) for entity in rows]
        return HistoryPage(execution_id, events, sentinel.etag if sentinel is not None else None)

    async def _inline_blob_columns(self, rows: list[rest.Row]) -> None:
        """Replace ``<Prop>BlobName`` columns by the blob's text in ``<Prop>`` (downloads concurrently)."""
        jobs: list[tuple[Any, str, str]] = []
        for entity in rows:
            for key in entity:
                if key.endswith(BLOB_NAME_SUFFIX) and entity[key]:
                    jobs.append((entity, key[: -len(BLOB_NAME_SUFFIX)], key))
        if not jobs:
            return
        texts = await _guard(
            "downloading large history properties",
            asyncio.gather(*(self._payloads.download(entity[key]) for entity, _, key in jobs)),
        )
        for (entity, prop, key), text in zip(jobs, texts, strict=True):
            entity[prop] = text
            del entity[key]

    async def append_history(
        self, instance_id: str, execution_id: str, start_index: int, events: Sequence[Event], etag: str | None
    ) -> str:
        """Write ``events`` at RowKeys ``start_index``.. plus the sentinel, one transaction per ≤ 99 rows.

        ``etag`` None: the sentinel is created; if one from an older execution exists, it is replaced
        under that row's own ETag (read only in that case). A sentinel already naming this execution,
        or any ETag mismatch, raises ``CheckpointConflict``.
        """
        pk = keys.escape_partition_key(instance_id)
        entities = [
            codec.event_to_entity(event, pk, keys.row_key(start_index + i), execution_id)
            for i, event in enumerate(events)
        ]
        await self._offload_history_columns(entities)
        batches = _split_batches(entities)
        for number, batch in enumerate(batches):
            final = number == len(batches) - 1
            sentinel: dict[str, Any] = {
                "PartitionKey": pk,
                "RowKey": keys.SENTINEL_ROW_KEY,
                "ExecutionId": execution_id,
                "IsCheckpointComplete": final,
            }
            if final:
                sentinel["CheckpointCompletedTimestamp"] = codec.dt_column(utcnow())
            etag = await self._submit_checkpoint(instance_id, execution_id, batch, sentinel, etag)
        assert etag is not None
        return etag

    async def _submit_checkpoint(
        self,
        instance_id: str,
        execution_id: str,
        batch: list[dict[str, Any]],
        sentinel: dict[str, Any],
        etag: str | None,
    ) -> str:
        operations = [BatchOperation("upsert_replace", entity) for entity in batch]
        if etag is None:
            operations.append(BatchOperation("create", sentinel))
        else:
            operations.append(BatchOperation("update_merge", sentinel, etag))
        try:
            result = await table_batch.submit(self._history, self._table_base_url, operations)
        except BatchError as exc:
            if exc.status == 409 and etag is None:
                # A sentinel exists: fine if it belongs to an older execution (continue-as-new or a
                # reused id), a split brain if it already names this one.
                current = await self._read_sentinel(instance_id)
                if current is None or current[0] == execution_id:
                    raise CheckpointConflict(
                        f"history of {instance_id!r} execution {execution_id} was written concurrently"
                    ) from exc
                return await self._submit_checkpoint(instance_id, execution_id, batch, sentinel, current[1])
            if exc.status in (404, 409, 412):
                raise CheckpointConflict(f"history sentinel of {instance_id!r} moved ({exc})") from exc
            raise TaskHubError(f"writing history of {instance_id!r} failed: {exc}") from exc
        except AzureError as exc:
            raise TaskHubError(f"writing history of {instance_id!r} failed: {exc}") from exc
        new_etag = result[-1] if result else None
        if new_etag:
            return str(new_etag)
        # Only if a service ever omitted per-operation ETags in the batch response.
        current = await self._read_sentinel(instance_id)
        if current is None:
            raise TaskHubError(f"history sentinel of {instance_id!r} vanished after a checkpoint")
        return current[1]

    async def _read_sentinel(self, instance_id: str) -> tuple[str | None, str] | None:
        entity = await _guard(
            f"reading the history sentinel of {instance_id!r}",
            rest.get_entity(
                self._history,
                self._table_base_url,
                keys.escape_partition_key(instance_id),
                keys.SENTINEL_ROW_KEY,
                ["ExecutionId"],
            ),
        )
        if entity is None or not entity.etag:
            return None
        return entity.get("ExecutionId"), entity.etag

    async def _offload_history_columns(self, entities: list[dict[str, Any]]) -> None:
        """Move oversized string columns to blobs before the transaction (B.5)."""
        uploads: list[Awaitable[None]] = []
        for entity in entities:
            for prop in OFFLOADABLE_PROPERTIES:
                value = entity.get(prop)
                if isinstance(value, str) and exceeds_table_property_limit(value):
                    name = history_blob_name(
                        entity["PartitionKey"], entity["RowKey"], entity.get("EventType", prop), prop
                    )
                    uploads.append(self._payloads.upload(name, value))
                    entity[prop + BLOB_NAME_SUFFIX] = name
                    entity[prop] = ""
        if uploads:
            await _guard("uploading large history properties", asyncio.gather(*uploads))

    # ------------------------------------------------------------------------------------ instances

    async def get_instance(
        self, instance_id: str, *, fetch_input: bool = True, fetch_output: bool = True
    ) -> InstanceRow | None:
        """Point read of the Instances row; blob URLs in Input/Output are downloaded."""
        select: list[str] | None = None
        if not (fetch_input and fetch_output):
            select = [
                c
                for c in codec.INSTANCE_COLUMNS
                if (c != "Input" or fetch_input) and (c != "Output" or fetch_output)
            ]
        pk = keys.escape_partition_key(instance_id)
        entity = await _guard(
            f"reading instance {instance_id!r}",
            rest.get_entity(self._instances, self._table_base_url, pk, "", select),
        )
        if entity is None:
            return None
        entity.setdefault("PartitionKey", pk)
        row = codec.entity_to_instance(entity, entity.etag)
        await self._resolve_instance_blobs([row])
        return row

    async def write_instance(self, row: InstanceRow, *, replace: bool = False) -> None:
        """Upsert the row: ``replace`` writes the whole row, otherwise its non-None columns are merged."""
        entity = codec.instance_to_entity(row, self.name, full=replace)
        await self._upsert_instance(entity, replace=replace)

    async def merge_instance(self, instance_id: str, columns: dict[str, Any]) -> None:
        """Insert-or-merge only ``columns`` (provider column names)."""
        entity = codec.instance_columns_to_entity(instance_id, columns, self.name)
        await self._upsert_instance(entity, replace=False)

    async def _upsert_instance(self, entity: dict[str, Any], *, replace: bool) -> None:
        for column in _INSTANCE_BLOB_COLUMNS:
            value = entity.get(column)
            if isinstance(value, str) and exceeds_table_property_limit(value):
                # Instances rows hold the blob's full URL in the column itself (B.5).
                name = history_blob_name(entity["PartitionKey"], "", column, column)
                await _guard(f"uploading large {column}", self._payloads.upload(name, value))
                entity[column] = self._payloads.url(name)
        await _guard(
            "writing an Instances row",
            rest.upsert_entity(self._instances, self._table_base_url, entity, replace=replace),
        )

    async def _resolve_instance_blobs(self, rows: list[InstanceRow]) -> None:
        jobs: list[tuple[InstanceRow, str, str]] = []
        for row in rows:
            if row.input and self._payloads.is_blob_url(row.input):
                jobs.append((row, "input", row.input))
            if row.output and self._payloads.is_blob_url(row.output):
                jobs.append((row, "output", row.output))
        if not jobs:
            return
        texts = await _guard(
            "downloading large instance data",
            asyncio.gather(*(self._payloads.resolve(url) for _, _, url in jobs)),
        )
        for (row, attr, _), text in zip(jobs, texts, strict=True):
            setattr(row, attr, text)

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceRow], str | None]:
        """Instances matching ``query`` (entities excluded); with ``top``, one page and its continuation."""
        query_filter, parameters = build_instance_filter(query)
        select = (
            None
            if query.fetch_input
            else ["PartitionKey", *(c for c in codec.INSTANCE_COLUMNS if c != "Input")]
        )
        token = codec.decode_continuation(query.continuation)
        pager = self._instances.query_entities(
            query_filter, parameters=parameters, select=select, results_per_page=query.top
        )
        entities: list[Any] = []
        next_token: dict[str, Any] | None = None
        try:
            pages = pager.by_page(continuation_token=token)
            async for page in pages:
                entities.extend([entity async for entity in page])
                if query.top is not None:
                    next_token = pages.continuation_token
                    break
        except AzureError as exc:
            raise TaskHubError(f"querying instances failed: {exc}") from exc
        rows = [codec.entity_to_instance(entity, entity.metadata.get("etag")) for entity in entities]
        await self._resolve_instance_blobs(rows)
        return rows, codec.encode_continuation(next_token)

    async def purge_instance(self, instance_id: str) -> bool:
        """Delete history rows, the Instances row and large-message blobs; False if none existed."""
        pk = keys.escape_partition_key(instance_id)

        async def history_keys() -> list[str]:
            return [
                e["RowKey"]
                async for e in self._history.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": pk}, select=["RowKey"]
                )
            ]

        try:
            row_keys, instance_existed, blob_count = await asyncio.gather(
                history_keys(),
                self._delete_instance_row(pk),
                self._payloads.delete_prefix({f"{pk}/", f"{blob_folder(instance_id)}/"}),
            )
            await asyncio.gather(
                *(self._delete_history_rows(pk, row_keys[i : i + 100]) for i in range(0, len(row_keys), 100))
            )
        except AzureError as exc:
            raise TaskHubError(f"purging {instance_id!r} failed: {exc}") from exc
        return bool(row_keys) or instance_existed or blob_count > 0

    async def _delete_instance_row(self, pk: str) -> bool:
        # A one-operation transaction reports 404, unlike delete_entity, so no read is needed first.
        try:
            await table_batch.submit(
                self._instances,
                self._table_base_url,
                [BatchOperation("delete", {"PartitionKey": pk, "RowKey": ""})],
            )
        except BatchError as exc:
            if exc.status == 404:
                return False
            raise TaskHubError(f"deleting Instances row {pk!r} failed: {exc}") from exc
        return True

    async def _delete_history_rows(self, pk: str, row_keys: list[str]) -> None:
        operations = [BatchOperation("delete", {"PartitionKey": pk, "RowKey": rk}) for rk in row_keys]
        try:
            await table_batch.submit(self._history, self._table_base_url, operations)
        except BatchError as exc:
            if exc.status != 404:
                raise TaskHubError(f"purging history rows of {pk!r} failed: {exc}") from exc
            # Someone deleted a row meanwhile; delete the rest one by one (delete_entity ignores 404).
            await asyncio.gather(*(self._history.delete_entity(pk, rk) for rk in row_keys))


def _row_key(entity: Any) -> str:
    return str(entity["RowKey"])


def _split_batches(entities: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Chunks of ≤ 99 rows and ≤ ~3 MB; always at least one (possibly empty) chunk for the sentinel."""
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for entity in entities:
        entity_size = _estimated_bytes(entity)
        current = batches[-1]
        if current and (len(current) >= MAX_BATCH_ROWS or size + entity_size > MAX_BATCH_BYTES):
            batches.append([])
            size = 0
        batches[-1].append(entity)
        size += entity_size
    return batches


def _increment_last_char(text: str) -> str:
    """The smallest string above every string starting with ``text`` (DTFx bumps the last char)."""
    code = ord(text[-1]) + 1
    if 0xD800 <= code <= 0xDFFF:
        code = 0xE000  # skip the surrogate block: it cannot be sent as UTF-8
    if code > 0x10FFFF:
        return text + "\U0010ffff"
    return text[:-1] + chr(code)


def build_instance_filter(query: InstanceQuery) -> tuple[str, dict[str, Any]]:
    """OData filter text with ``@name`` placeholders and their values; values are never spliced in.

    The SDK substitutes each whitespace-separated ``@name`` word and quotes/escapes the value, so
    every placeholder stands alone between spaces (hence ``( ... )`` with inner spaces).
    """
    clauses: list[str] = []
    parameters: dict[str, Any] = {}
    if query.runtime_status:
        alternatives = []
        for i, status in enumerate(query.runtime_status):
            parameters[f"rs{i}"] = getattr(status, "name", status) if not isinstance(status, str) else status
            alternatives.append(f"RuntimeStatus eq @rs{i}")
        clauses.append("( " + " or ".join(alternatives) + " )")
    if query.created_from is not None:
        parameters["createdFrom"] = codec.aware(query.created_from)
        clauses.append("CreatedTime ge @createdFrom")
    if query.created_to is not None:
        parameters["createdTo"] = codec.aware(query.created_to)
        clauses.append("CreatedTime le @createdTo")
    if query.instance_id_prefix:
        # PartitionKeys are escaped ids, so the range is over the escaped prefix (as DTFx does).
        low = keys.escape_partition_key(query.instance_id_prefix)
        high = _increment_last_char(low)
        parameters["pkLow"] = low
        parameters["pkHigh"] = high
        clauses.append("PartitionKey ge @pkLow and PartitionKey lt @pkHigh")
    # Entities share the table with ids "@name@key": keep them out of orchestration listings.
    parameters["entLow"] = "@"
    parameters["entHigh"] = "A"
    clauses.append("( PartitionKey lt @entLow or PartitionKey ge @entHigh )")
    return " and ".join(clauses), parameters
