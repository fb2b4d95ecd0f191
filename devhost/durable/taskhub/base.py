"""What the durable engine needs from a task hub, independent of where it is stored.

``AzureStorageTaskHub`` keeps it in Azure Storage (Azurite) in the layout of the Durable Task Azure
Storage provider; ``MemoryTaskHub`` keeps it in a dict for fast engine unit tests. Both behave alike:
queue messages have visibility timeouts and pop receipts, history rows are append-only per execution
with a sentinel concurrency check, and the Instances row is merged column by column.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from devhost.durable.history import Event, OrchestrationStatus

WORK_ITEM_QUEUE = "workitems"  # symbolic target; the hub turns it into "{hub}-workitems"


@dataclass
class OutboundMessage:
    """One ``TaskMessage`` to send: an event for an instance, to its control queue or the work items."""

    event: Event
    instance_id: str  # the *target* instance
    execution_id: str | None  # target execution; None for client messages that do not pin one
    to_work_items: bool = False  # True for TaskScheduled (activities)
    visible_at: datetime | None = None  # durable timers and scheduled starts
    episode: int | None = None  # sender's episode number (count of OrchestratorStarted); None from clients
    sender: dict[str, str] | None = None  # {"InstanceId", "ExecutionId"} of the sending orchestration


class InMemorySettlement(Protocol):
    """How a message that no queue holds is settled (``devhost.durable.settlement``'s in-memory kinds)."""

    async def complete(self) -> None: ...
    async def abandon(self, delay: float) -> None: ...
    def recorded(self) -> bool:
        """History now holds the message (its checkpoint's rows are stored; the Instances row may follow).
        True when a client waiting for that is answered now."""
        ...


@dataclass
class ReceivedMessage:
    """A message taken from a queue; ``receipt`` is what delete/update need."""

    queue: str
    message_id: str
    receipt: str
    dequeue_count: int
    inserted_on: datetime
    event: Event
    instance_id: str
    execution_id: str | None
    sequence_number: int = 0
    episode: int | None = None
    activity_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict)  # the whole decoded MessageData envelope
    # For a message this process is still writing (see ``TaskHub.write_leased``): done once the queue has
    # it; until then ``message_id`` is provisional and there is no receipt.
    written: asyncio.Future[None] | None = field(default=None, compare=False, repr=False)
    # For a message that exists only in memory: how it is settled instead of through a receipt.
    in_memory: InMemorySettlement | None = field(default=None, compare=False, repr=False)

    async def wait_written(self) -> bool:
        """Wait until the queue holds this message; False if writing it failed (nothing to delete)."""
        if self.written is None:
            return True
        try:
            await asyncio.shield(self.written)
        except Exception:
            return False
        return True


@dataclass
class HistoryPage:
    """An instance's current execution: events in RowKey order and the sentinel's concurrency token."""

    execution_id: str | None
    events: list[Event]
    etag: str | None  # sentinel ETag; None when no sentinel exists yet


@dataclass
class InstanceRow:
    """The ``{hub}Instances`` row of one instance (one field per provider column)."""

    instance_id: str
    name: str = ""
    execution_id: str = ""
    runtime_status: OrchestrationStatus = OrchestrationStatus.Pending
    input: str | None = None
    output: str | None = None
    custom_status: str = "null"
    created_time: datetime | None = None
    last_updated_time: datetime | None = None
    completed_time: datetime | None = None
    scheduled_start_time: datetime | None = None
    generation: int = 0
    version: str = ""
    tags: str | None = None
    etag: str | None = None


@dataclass
class InstanceUpdate:
    """What a checkpoint changes on an Instances row (the provider's UpdateStateAsync).

    Fields left None leave their column as it is.
    """

    execution_id: str | None = None
    name: str | None = None
    version: str | None = None
    runtime_status: OrchestrationStatus | None = None
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    created_time: datetime | None = None
    last_updated_time: datetime | None = None
    completed_time: datetime | None = None
    scheduled_start_time: datetime | None = None
    generation: int | None = None
    tags: str | None = None


@dataclass
class InstanceQuery:
    """Filters of the list/purge APIs; every value is applied without string-building OData by hand."""

    runtime_status: Sequence[OrchestrationStatus] = ()
    created_from: datetime | None = None
    created_to: datetime | None = None
    instance_id_prefix: str | None = None
    top: int | None = None
    continuation: str | None = None
    fetch_input: bool = True


class TaskHub(Protocol):
    name: str
    partition_count: int

    async def create_if_not_exists(self) -> None: ...
    async def close(self) -> None: ...

    def control_queue_name(self, instance_id: str) -> str: ...
    @property
    def control_queue_names(self) -> list[str]: ...
    @property
    def work_item_queue_name(self) -> str: ...

    # queues
    async def send(self, messages: Sequence[OutboundMessage]) -> None: ...
    def write_leased(self, messages: Sequence[OutboundMessage], lease: float) -> list[ReceivedMessage]:
        """Send messages leased to the sender from the start (hidden ``lease`` s); returns at once.

        Each message's ``written`` future says when it is stored; then it holds its receipt.
        """
        ...

    async def receive(self, queue: str, max_messages: int, visibility_timeout: float) -> list[ReceivedMessage]: ...
    async def delete(self, message: ReceivedMessage) -> None: ...
    async def set_visibility(self, message: ReceivedMessage, seconds: float) -> None:
        """Hide the message for ``seconds`` more (abandon with delay, or renew a lease); updates receipt."""
        ...

    # history
    async def load_history(self, instance_id: str) -> HistoryPage: ...
    async def append_history(self, instance_id: str, execution_id: str, start_index: int, events: Sequence[Event],
                             etag: str | None, *, after: Awaitable[object] | None = None) -> str:
        """Write ``events`` at RowKeys ``start_index``.. and move the sentinel; return its new ETag.

        ``etag`` None means this is a new execution's first checkpoint (insert the sentinel, or
        replace it when an older execution's sentinel exists). Raises ``CheckpointConflict`` when the
        sentinel moved since ``etag`` was read. With ``after`` (the checkpoint's messages being stored),
        nothing is written before it is done, and it raises what ``after`` raises; the rows may be
        prepared meanwhile.
        """
        ...

    # instances
    async def get_instance(self, instance_id: str, *, fetch_input: bool = True, fetch_output: bool = True,
                           fresh: bool = False) -> InstanceRow | None:
        """The Instances row, or None; ``fresh`` reads storage even where a cache has the row (for its ETag)."""
        ...

    async def write_instance(self, row: InstanceRow, *, replace: bool = False) -> None:
        """Insert-or-merge the row's columns (``replace`` writes the whole row)."""
        ...

    async def create_instance(self, row: InstanceRow, etag: str | None) -> bool:
        """A new execution's row, as the provider's client writes it: Insert when ``etag`` is None, else Replace
        while the row still has that ETag. False, and nothing written, when the row was there first (409) or had
        changed since it was read (412): the other writer's row stands."""
        ...

    async def update_instance(self, instance_id: str, update: InstanceUpdate) -> None:
        """Insert-or-merge the columns ``update`` sets."""
        ...

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceRow], str | None]: ...
    async def purge_instance(self, instance_id: str) -> bool:
        """Delete the history rows, the instance row and large-message blobs; False if nothing was there."""
        ...
