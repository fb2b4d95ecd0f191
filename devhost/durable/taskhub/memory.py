"""``MemoryTaskHub``: the ``TaskHub`` contract in dicts, for fast engine unit tests.

It behaves like ``AzureStorageTaskHub`` where the engine can tell: messages are stored as the same JSON
envelopes, have whole-second ``inserted_on``, visibility timeouts rounded up to seconds, pop receipts
that change on every receive/update (stale ones fail ``set_visibility`` and are ignored by ``delete``),
dequeue counts; history rows go through the same table codec and the sentinel ETag check; Instances rows
are merged column by column. ``clock`` can be replaced to drive timers in tests.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from devhost import ids
from devhost.durable.history import Event, utcnow
from devhost.durable.taskhub import codec, keys
from devhost.durable.taskhub.base import (
    WORK_ITEM_QUEUE,
    HistoryPage,
    InstanceQuery,
    InstanceRow,
    InstanceUpdate,
    OutboundMessage,
    ReceivedMessage,
)
from devhost.errors import CheckpointConflict, TaskHubError


@dataclass
class _StoredMessage:
    id: str
    text: str
    inserted_on: datetime
    visible_at: datetime
    dequeue_count: int = 0
    receipt: str = ""


class MemoryTaskHub:
    """An in-process task hub with the same observable behaviour as the Azure Storage one."""

    def __init__(
        self, name: str = "memoryhub", partition_count: int = 4, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        keys.check_hub(name, partition_count)
        self.name = name
        self.partition_count = partition_count
        self.clock = clock
        self._control_names = [keys.control_queue_name(name, i) for i in range(partition_count)]
        self._work_items_name = keys.work_item_queue_name(name)
        self._queues: dict[str, dict[str, _StoredMessage]] = {
            queue: {} for queue in [*self._control_names, self._work_items_name]
        }
        self._history: dict[str, dict[str, dict[str, Any]]] = {}  # PartitionKey -> RowKey -> entity
        self._instances: dict[str, dict[str, Any]] = {}  # PartitionKey -> entity
        self._etags = itertools.count(1)

    def _new_etag(self) -> str:
        return f'W/"memory-{next(self._etags)}"'

    async def create_if_not_exists(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def delete_if_exists(self) -> None:
        """Forget every message, row and instance (mirrors ``AzureStorageTaskHub.delete_if_exists``)."""
        for store in self._queues.values():
            store.clear()
        self._history.clear()
        self._instances.clear()

    # ---------------------------------------------------------------------------------------- names

    def control_queue_name(self, instance_id: str) -> str:
        return self._control_names[keys.partition_index(instance_id, self.partition_count)]

    @property
    def control_queue_names(self) -> list[str]:
        return list(self._control_names)

    @property
    def work_item_queue_name(self) -> str:
        return self._work_items_name

    def _queue(self, queue: str) -> dict[str, _StoredMessage]:
        if queue == WORK_ITEM_QUEUE:
            queue = self._work_items_name
        found = self._queues.get(queue)
        if found is None:
            raise TaskHubError(f"{queue!r} is not a queue of task hub {self.name}")
        return found

    def queue_length(self, queue: str) -> int:
        """Messages in ``queue``, visible or not (a test helper; Azure only estimates this)."""
        return len(self._queue(queue))

    # --------------------------------------------------------------------------------------- queues

    async def send(self, messages: Sequence[OutboundMessage]) -> None:
        self._put(messages, None)

    def write_leased(self, messages: Sequence[OutboundMessage], lease: float) -> list[ReceivedMessage]:
        held = self._put(messages, lease)
        for message in held:
            message.written = asyncio.get_running_loop().create_future()
            message.written.set_result(None)
        return held

    def _put(self, messages: Sequence[OutboundMessage], lease: float | None) -> list[ReceivedMessage]:
        now = self.clock()
        held: list[ReceivedMessage] = []
        for message in messages:
            queue = (
                self._work_items_name
                if message.to_work_items
                else self.control_queue_name(message.instance_id)
            )
            envelope = codec.build_envelope(message, ids.uuid4_text(), codec.next_sequence_number())
            delay = 0
            if message.visible_at is not None:
                delay = codec.visibility_seconds((message.visible_at - now).total_seconds())
            if lease:
                delay = max(delay, max(1, codec.visibility_seconds(lease)))
            stored = _StoredMessage(
                id=ids.uuid4_text(),
                text=codec.dumps_envelope(envelope),
                inserted_on=now.replace(microsecond=0),  # the queue service keeps whole seconds
                visible_at=now + timedelta(seconds=delay),
                receipt=ids.uuid4_hex(),
            )
            self._queues[queue][stored.id] = stored
            if lease is not None:
                held.append(ReceivedMessage(
                    queue=queue, message_id=stored.id, receipt=stored.receipt, dequeue_count=0,
                    inserted_on=stored.inserted_on, event=message.event, instance_id=message.instance_id,
                    execution_id=message.execution_id, sequence_number=envelope.get("SequenceNumber") or 0,
                    episode=message.episode, activity_id=envelope.get("ActivityId") or "", raw=envelope,
                ))
        return held

    async def receive(
        self, queue: str, max_messages: int, visibility_timeout: float
    ) -> list[ReceivedMessage]:
        store = self._queue(queue)
        name = self._work_items_name if queue == WORK_ITEM_QUEUE else queue
        now = self.clock()
        hidden_until = now + timedelta(seconds=max(1, codec.visibility_seconds(visibility_timeout)))
        count = max(1, min(32, max_messages))
        received: list[ReceivedMessage] = []
        for stored in store.values():
            if len(received) >= count:
                break
            if stored.visible_at > now:
                continue
            stored.dequeue_count += 1
            stored.receipt = ids.uuid4_hex()
            stored.visible_at = hidden_until
            envelope = codec.parse_message_text(stored.text)
            received.append(codec.received_message(
                name, stored.id, stored.receipt, stored.dequeue_count, stored.inserted_on, envelope
            ))
        return received

    async def delete(self, message: ReceivedMessage) -> None:
        store = self._queue(message.queue)
        stored = store.get(message.message_id)
        if stored is not None and stored.receipt == message.receipt:
            del store[message.message_id]
        # else: already gone or re-leased by another receiver; Azure answers 404, which is ignored too

    async def set_visibility(self, message: ReceivedMessage, seconds: float) -> None:
        stored = self._queue(message.queue).get(message.message_id)
        if stored is None or stored.receipt != message.receipt:
            raise TaskHubError(f"message {message.message_id} is gone or its receipt is stale")
        stored.visible_at = self.clock() + timedelta(seconds=codec.visibility_seconds(seconds))
        stored.receipt = ids.uuid4_hex()
        message.receipt = stored.receipt

    # -------------------------------------------------------------------------------------- history

    async def load_history(self, instance_id: str) -> HistoryPage:
        partition = self._history.get(keys.escape_partition_key(instance_id))
        if not partition:
            return HistoryPage(None, [], None)
        sentinel = partition.get(keys.SENTINEL_ROW_KEY)
        ordered = [partition[rk] for rk in sorted(partition)]
        execution_id = (sentinel or ordered[0]).get("ExecutionId")
        events: list[Event] = []
        for entity in ordered:
            if entity.get("ExecutionId") != execution_id:
                break
            if entity is not sentinel:
                events.append(codec.entity_to_event(entity))
        return HistoryPage(execution_id, events, sentinel["etag"] if sentinel else None)

    async def append_history(
        self, instance_id: str, execution_id: str, start_index: int, events: Sequence[Event], etag: str | None,
        *, after: Awaitable[object] | None = None,
    ) -> str:
        if after is not None:
            await after
        pk = keys.escape_partition_key(instance_id)
        partition = self._history.setdefault(pk, {})
        sentinel = partition.get(keys.SENTINEL_ROW_KEY)
        if etag is None:
            if sentinel is not None and sentinel.get("ExecutionId") == execution_id:
                raise CheckpointConflict(
                    f"history of {instance_id!r} execution {execution_id} was written concurrently"
                )
        elif sentinel is None or sentinel["etag"] != etag:
            raise CheckpointConflict(f"history sentinel of {instance_id!r} moved")
        for i, event in enumerate(events):
            rk = keys.row_key(start_index + i)
            partition[rk] = codec.event_to_entity(event, pk, rk, execution_id)
        new_etag = self._new_etag()
        partition[keys.SENTINEL_ROW_KEY] = {
            "PartitionKey": pk,
            "RowKey": keys.SENTINEL_ROW_KEY,
            "ExecutionId": execution_id,
            "IsCheckpointComplete": True,
            "CheckpointCompletedTimestamp": codec.dt_column(utcnow()),
            "etag": new_etag,
        }
        return new_etag

    def history_rows(self, instance_id: str) -> dict[str, dict[str, Any]]:
        """The raw History entities of an instance by RowKey (a test helper)."""
        return dict(self._history.get(keys.escape_partition_key(instance_id), {}))

    # ------------------------------------------------------------------------------------ instances

    async def get_instance(
        self, instance_id: str, *, fetch_input: bool = True, fetch_output: bool = True, fresh: bool = False
    ) -> InstanceRow | None:
        entity = self._instances.get(keys.escape_partition_key(instance_id))
        if entity is None:
            return None
        row = codec.entity_to_instance(entity, entity["etag"])
        if not fetch_input:
            row.input = None
        if not fetch_output:
            row.output = None
        return row

    async def write_instance(self, row: InstanceRow, *, replace: bool = False) -> None:
        entity = codec.instance_to_entity(row, self.name, full=replace)
        self._upsert(entity, replace=replace)

    async def create_instance(self, row: InstanceRow, etag: str | None) -> bool:
        entity = codec.instance_to_entity(row, self.name, full=True)
        current = self._instances.get(entity["PartitionKey"])
        if etag is None and current is not None:
            return False  # the provider's insert: 409
        if etag is not None and current is None:
            raise TaskHubError(f"writing an Instances row failed: {row.instance_id!r} is gone (404)")
        if etag is not None and current["etag"] != etag:
            return False  # its replace of the row it read: 412
        self._upsert(entity, replace=True)
        return True

    async def update_instance(self, instance_id: str, update: InstanceUpdate) -> None:
        self._upsert(codec.instance_update_to_entity(instance_id, update, self.name), replace=False)

    def _upsert(self, entity: dict[str, Any], *, replace: bool) -> None:
        pk = entity["PartitionKey"]
        current = self._instances.get(pk)
        if replace or current is None:
            current = {}
        merged = {**current, **entity, "etag": self._new_etag()}
        self._instances[pk] = merged

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceRow], str | None]:
        token = codec.decode_continuation(query.continuation)
        start = token.get("PartitionKey", "") if token else ""
        statuses = {getattr(s, "name", s) if not isinstance(s, str) else s for s in query.runtime_status}
        low = high = None
        if query.instance_id_prefix:
            low = keys.escape_partition_key(query.instance_id_prefix)
            high = low[:-1] + chr(ord(low[-1]) + 1)
        matches: list[dict[str, Any]] = []
        for pk in sorted(self._instances):
            if pk < start or ("@" <= pk < "A" and not (query.instance_id_prefix or "").startswith("@")):
                continue
            if low is not None and high is not None and not low <= pk < high:
                continue
            entity = self._instances[pk]
            if statuses and entity.get("RuntimeStatus") not in statuses:
                continue
            created = codec.table_datetime(entity.get("CreatedTime"))
            if query.created_from is not None and (
                created is None or created < codec.aware(query.created_from)
            ):
                continue
            if query.created_to is not None and (created is None or created > codec.aware(query.created_to)):
                continue
            matches.append(entity)
        next_token = None
        if query.top is not None and len(matches) > query.top:
            next_token = codec.encode_continuation(
                {"PartitionKey": matches[query.top]["PartitionKey"], "RowKey": ""}
            )
            matches = matches[: query.top]
        rows = [codec.entity_to_instance(entity, entity["etag"]) for entity in matches]
        if not query.fetch_input:
            for row in rows:
                row.input = None
        return rows, next_token

    async def purge_instance(self, instance_id: str) -> bool:
        pk = keys.escape_partition_key(instance_id)
        had_history = bool(self._history.pop(pk, None))
        had_row = self._instances.pop(pk, None) is not None
        return had_history or had_row
