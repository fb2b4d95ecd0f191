"""A write-through cache of Instances rows in front of a task hub.

devhost's engine and client write every Instances row change of the hub they run, so the last row each
wrote is what storage holds: status reads (clients poll them many times a second) and the existence
checks of the management API can be answered from memory. Storage stays the truth: every write goes
there first, purges and rewinds drop the entry, unknown instances are read from storage, and a restart
starts with an empty cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Sequence
from dataclasses import fields, replace
from typing import Any

from devhost.durable.history import Event
from devhost.durable.taskhub.base import (
    HistoryPage,
    InstanceQuery,
    InstanceRow,
    InstanceUpdate,
    OutboundMessage,
    ReceivedMessage,
    TaskHub,
)

# The InstanceRow fields a merge may set: the same names in InstanceUpdate.
MERGED_FIELDS = tuple(f.name for f in fields(InstanceUpdate))


class RowCachingTaskHub:
    """Delegates to ``inner``; keeps up to ``capacity`` Instances rows, least recently used dropped first."""

    def __init__(self, inner: TaskHub, capacity: int = 20_000) -> None:
        self.inner = inner
        self.capacity = capacity
        self.rows: OrderedDict[str, InstanceRow] = OrderedDict()
        # Writes per instance, so that a storage read overtaken by a write is not cached (it is stale).
        self.writes: dict[str, int] = {}

    # -- pass-through ----------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # Hub-specific extras beyond the Protocol (delete_if_exists, table names) reach the inner hub.
        return getattr(self.inner, name)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def partition_count(self) -> int:
        return self.inner.partition_count

    @property
    def control_queue_names(self) -> list[str]:
        return self.inner.control_queue_names

    @property
    def work_item_queue_name(self) -> str:
        return self.inner.work_item_queue_name

    def control_queue_name(self, instance_id: str) -> str:
        return self.inner.control_queue_name(instance_id)

    async def create_if_not_exists(self) -> None:
        await self.inner.create_if_not_exists()

    async def close(self) -> None:
        await self.inner.close()

    async def send(self, messages: Sequence[OutboundMessage]) -> None:
        await self.inner.send(messages)

    def write_leased(self, messages: Sequence[OutboundMessage], lease: float) -> list[ReceivedMessage]:
        return self.inner.write_leased(messages, lease)

    async def receive(self, queue: str, max_messages: int, visibility_timeout: float) -> list[ReceivedMessage]:
        return await self.inner.receive(queue, max_messages, visibility_timeout)

    async def delete(self, message: ReceivedMessage) -> None:
        await self.inner.delete(message)

    async def set_visibility(self, message: ReceivedMessage, seconds: float) -> None:
        await self.inner.set_visibility(message, seconds)

    async def load_history(self, instance_id: str) -> HistoryPage:
        return await self.inner.load_history(instance_id)

    async def append_history(self, instance_id: str, execution_id: str, start_index: int, events: Sequence[Event],
                             etag: str | None, *, after: Awaitable[object] | None = None) -> str:
        return await self.inner.append_history(instance_id, execution_id, start_index, events, etag, after=after)

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceRow], str | None]:
        return await self.inner.query_instances(query)

    # -- the cached Instances rows -----------------------------------------------------------------
    def _remember(self, row: InstanceRow) -> None:
        self.rows[row.instance_id] = row
        self.rows.move_to_end(row.instance_id)
        while len(self.rows) > self.capacity:
            self.rows.popitem(last=False)

    def forget(self, instance_id: str) -> None:
        self.rows.pop(instance_id, None)

    def forget_all(self) -> None:
        """Storage may have lost writes (or restarted): every row is read from it again."""
        self.rows.clear()

    def _wrote(self, instance_id: str) -> None:
        self.writes[instance_id] = self.writes.get(instance_id, 0) + 1

    async def get_instance(self, instance_id: str, *, fetch_input: bool = True, fetch_output: bool = True,
                           fresh: bool = False) -> InstanceRow | None:
        # A kept row has no ETag (its writes' answers are not waited for): ``fresh`` reads storage for one.
        cached = None if fresh else self.rows.get(instance_id)
        if cached is not None:
            self.rows.move_to_end(instance_id)
            return replace(cached)
        writes_before = self.writes.get(instance_id, 0)
        row = await self.inner.get_instance(instance_id, fetch_input=fetch_input, fetch_output=fetch_output)
        if row is not None and fetch_input and fetch_output and self.writes.get(instance_id, 0) == writes_before:
            self._remember(_copy(row))
        return row

    async def write_instance(self, row: InstanceRow, *, replace: bool = False) -> None:
        self._wrote(row.instance_id)
        await self.inner.write_instance(row, replace=replace)
        if replace:
            self._remember(_copy(row))
        elif row.instance_id in self.rows:
            current = self.rows[row.instance_id]
            _merge(current, row)

    async def create_instance(self, row: InstanceRow, etag: str | None) -> bool:
        self._wrote(row.instance_id)
        created = await self.inner.create_instance(row, etag)
        if created:
            self._remember(_copy(row))
        else:  # the other writer's row stands: read it from storage rather than trust what is kept of it
            self.forget(row.instance_id)
        return created

    async def update_instance(self, instance_id: str, update: InstanceUpdate) -> None:
        # The engine merges only after the episode's history checkpoint is stored, so the cached row may
        # show the new state before the row write lands: it is durable already. Should the row write
        # fail, the episode's messages come back and the row is repaired from history.
        self._wrote(instance_id)
        current = self.rows.get(instance_id)
        if current is not None:
            _merge(current, update)
        await self.inner.update_instance(instance_id, update)

    async def purge_instance(self, instance_id: str) -> bool:
        self._wrote(instance_id)
        self.forget(instance_id)
        try:
            return await self.inner.purge_instance(instance_id)
        finally:
            self.forget(instance_id)


def _merge(row: InstanceRow, changes: InstanceRow | InstanceUpdate) -> None:
    """Set the fields ``changes`` gives; merges leave fields given as None alone, as storage does."""
    for name in MERGED_FIELDS:
        value = getattr(changes, name)
        if value is not None:
            setattr(row, name, value)


def _copy(row: InstanceRow) -> InstanceRow:
    return replace(row, etag=None)
