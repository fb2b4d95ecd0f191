"""Client operations on a task hub, as the extension's DurableClient performs them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace as replace_fields
from datetime import datetime
from typing import Protocol

from devhost import ids
from devhost.durable.entities.ids import is_entity
from devhost.durable.history import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    Event,
    EventType,
    OrchestrationStatus,
    execution_started,
    new_event,
    utcnow,
)
from devhost.durable.taskhub.base import InstanceQuery, InstanceRow, OutboundMessage, TaskHub
from devhost.errors import DevhostError

REWOUND_FAILURES = {EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed}
REWOUND_SCHEDULES = {EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated}


class InstanceExists(DevhostError):
    """An active instance already uses the id (the extension's OrchestrationAlreadyExistsException)."""

    def __init__(self, status: OrchestrationStatus) -> None:
        super().__init__(f"An Orchestration instance with the status {status.name} already exists.")
        self.status = status


class Dispatch(Protocol):
    """The engine's side of sending: messages it will consume are handed over in memory."""

    async def send(self, messages: Sequence[OutboundMessage]) -> None: ...
    async def send_client_event(self, message: OutboundMessage) -> None: ...
    def seed_new(self, instance_id: str) -> None: ...
    def expect_row(self, instance_id: str) -> asyncio.Future[None]: ...
    def forget(self, instance_id: str) -> None: ...
    def on_instance_change(self, instance_id: str, callback: Callable[[], None]) -> Callable[[], None]: ...


class DurableClient:
    """Start, signal and read instances; with an engine in this process, it gets the messages in memory."""

    def __init__(self, hub: TaskHub, engine: Dispatch | None = None, *, override_active: bool = False) -> None:
        self.hub = hub
        self.engine = engine
        self.override_active = override_active  # overridableExistingInstanceStates is AnyState

    async def _post(self, messages: Sequence[OutboundMessage]) -> None:
        """Send; the engine here may start on the messages before they are stored, the caller may not."""
        await (self.engine or self.hub).send(messages)

    async def start(self, name: str, instance_id: str | None, input_text: str | None, *,
                    scheduled_start: datetime | None = None, allow_override_active: bool = False) -> str:
        """Send ExecutionStarted, then write the Pending row (the provider's order); return the id."""
        # A fresh GUID cannot be in use: only a caller-chosen id needs the existence check.
        existing = None
        if instance_id:
            existing = await self.hub.get_instance(instance_id, fetch_input=False, fetch_output=False, fresh=True)
        instance_id = instance_id or ids.uuid4_hex()
        overridable = allow_override_active or self.override_active
        if existing is not None and existing.runtime_status in ACTIVE_STATUSES and not overridable:
            raise InstanceExists(existing.runtime_status)
        execution_id = ids.uuid4_hex()
        now = utcnow()
        generation = existing.generation + 1 if existing is not None else 0
        event = execution_started(instance_id, execution_id, name, input_text, generation=generation,
                                  scheduled_start=scheduled_start, timestamp=now)
        message = OutboundMessage(event=event, instance_id=instance_id, execution_id=execution_id,
                                  visible_at=scheduled_start, sender={"InstanceId": "", "ExecutionId": ""})
        row = InstanceRow(
            instance_id=instance_id, name=name, execution_id=execution_id, runtime_status=OrchestrationStatus.Pending,
            input=input_text, custom_status="null", created_time=now, last_updated_time=now,
            scheduled_start_time=scheduled_start, generation=generation, version="",
        )
        # The row as the provider's client writes it: inserted, or replacing the row just read while it still has
        # that ETag. A conflict means another writer's row got there first, and that one stands.
        etag = existing.etag if existing is not None else None
        if self.engine is None:
            await self.hub.send([message])
            await self.hub.create_instance(row, etag)
            return instance_id
        # The engine may run the first episode while the message and the Pending row are being written;
        # that episode's row merge waits for the row, which waits for the message (the provider's order).
        self.engine.seed_new(instance_id)  # a new execution starts from an empty history
        row_written = self.engine.expect_row(instance_id)
        try:
            await self._post([message])
            await self.hub.create_instance(row, etag)
        finally:
            row_written.set_result(None)
        return instance_id

    async def _send(self, row: InstanceRow, event: Event, *, recognisable: bool = True) -> None:
        """Send a client event; with an engine here, one it can recognise when it sees it twice goes to the
        instance in memory and is stored by the checkpoint that records it."""
        message = OutboundMessage(event=event, instance_id=row.instance_id, execution_id=row.execution_id or None,
                                  sender={"InstanceId": "", "ExecutionId": ""})
        if self.engine is not None and recognisable and not is_entity(row.instance_id):
            await self.engine.send_client_event(message)
        else:
            await self._post([message])

    async def raise_event(self, row: InstanceRow, name: str, data_text: str | None) -> None:
        await self._send(row, new_event(EventType.EventRaised, Name=name, Input=data_text))

    async def terminate(self, row: InstanceRow, reason: str | None) -> None:
        await self._send(row, new_event(EventType.ExecutionTerminated, Input=reason))

    async def suspend(self, row: InstanceRow, reason: str | None) -> None:
        await self._send(row, new_event(EventType.ExecutionSuspended, Reason=reason))

    async def resume(self, row: InstanceRow, reason: str | None) -> None:
        await self._send(row, new_event(EventType.ExecutionResumed, Reason=reason))

    async def rewind(self, row: InstanceRow, reason: str | None) -> None:
        """Rewrite the failure out of history, as the Azure Storage provider does, and run the instance again.

        Failed task and sub-orchestration rows, the rows that scheduled them and the failed completion
        become ``GenericEvent`` rows reading ``Rewound: <old type>`` (same RowKeys; replay skips them), so
        the orchestrator schedules that work again. A failed sub-orchestration is started afresh rather
        than rewound in place.
        """
        page = await self.hub.load_history(row.instance_id)
        failed = {e["TaskScheduledId"] for e in page.events if e["EventType"] in REWOUND_FAILURES}
        events: list[Event] = []
        for event in page.events:
            kind = event["EventType"]
            if (kind in REWOUND_FAILURES or kind == EventType.ExecutionCompleted
                    or (kind in REWOUND_SCHEDULES and event["EventId"] in failed)):
                event = {**event, "EventType": int(EventType.GenericEvent),
                         "Reason": f"Rewound: {EventType(kind).name}"}
            events.append(event)
        await self.hub.append_history(row.instance_id, page.execution_id or row.execution_id, 0, events, page.etag)
        now = utcnow()
        running = replace_fields(row, runtime_status=OrchestrationStatus.Running, output=None, completed_time=None,
                                 last_updated_time=now)
        await self.hub.write_instance(running, replace=True)
        await self._send(row, new_event(EventType.GenericEvent, Data=reason), recognisable=False)
        self._forget(row.instance_id)

    def _forget(self, instance_id: str) -> None:
        """History this process remembers of ``instance_id`` is stale: the next episode reads storage."""
        if self.engine is not None:
            self.engine.forget(instance_id)

    async def get(self, instance_id: str, *, fetch_input: bool = True) -> InstanceRow | None:
        return await self.hub.get_instance(instance_id, fetch_input=fetch_input)

    async def history(self, instance_id: str) -> list[Event]:
        return (await self.hub.load_history(instance_id)).events

    async def query(self, query: InstanceQuery) -> tuple[list[InstanceRow], str | None]:
        return await self.hub.query_instances(query)

    async def purge(self, instance_id: str) -> bool:
        deleted = await self.hub.purge_instance(instance_id)
        self._forget(instance_id)
        return deleted

    async def wait_for_terminal(self, instance_id: str, wait_seconds: float) -> InstanceRow | None:
        """The instance's row once it is terminal, or None after ``wait_seconds``."""
        changed = asyncio.Event()
        unsubscribe = self.engine.on_instance_change(instance_id, changed.set) if self.engine else lambda: None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        try:
            while True:
                changed.clear()
                row = await self.get(instance_id)
                if row is not None and row.runtime_status in TERMINAL_STATUSES:
                    return row
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                # Another process may complete it too, so look again at least once a second.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(remaining, 1.0))
        finally:
            unsubscribe()
