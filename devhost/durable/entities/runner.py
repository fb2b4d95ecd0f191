"""Runs entity batches: the messages waiting for one entity become one invocation of its function.

The engine hands every message for an ``@name@key`` instance here instead of to the orchestration
episode runner. One batch is: drop requests already applied (redeliveries), invoke the entity function
once with the rest in arrival order, send the answers of calls, then checkpoint the new state (history
generation and Instances row) and delete the consumed messages. The engine runs one batch per entity
at a time, so operations on one entity never interleave.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from devhost import ids
from devhost.durable.entities.ids import EntityId, parse_entity_id
from devhost.durable.entities.messages import OPERATION_EVENT, compact, response_event
from devhost.durable.history import EventType, OrchestrationStatus, execution_started, new_event, utcnow
from devhost.durable.settlement import until_stored
from devhost.durable.taskhub.base import InstanceUpdate, OutboundMessage, ReceivedMessage, TaskHub
from devhost.errors import FunctionInvocationError

log = logging.getLogger("devhost.durable")

MAX_REMEMBERED_REQUESTS = 5000  # request ids kept for deduplication when their deletion was not seen
CACHE_CAPACITY = 10_000


class EntityInvoker(Protocol):
    entities: dict[str, Any]

    async def invoke_entity(self, name: str, context_json: str) -> str: ...


class MessageSettler(Protocol):
    async def complete_all(self, messages: Sequence[ReceivedMessage]) -> None: ...


@dataclass
class SchedulerState:
    """What devhost keeps of an entity between batches (the ExecutionStarted input of its generation)."""

    exists: bool = False
    state: str | None = None  # the entity's state, JSON text as the SDK produced it
    processed: list[str] = field(default_factory=list)  # recent request ids, oldest first

    def to_json(self) -> str:
        return compact({"exists": self.exists, "state": self.state, "processed": self.processed})

    @classmethod
    def from_json(cls, text: str | None) -> SchedulerState:
        try:
            data = json.loads(text) if text else {}
        except json.JSONDecodeError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        return cls(bool(data.get("exists")), data.get("state"), list(data.get("processed") or []))


@dataclass
class LoadedEntity:
    execution_id: str | None
    created: datetime | None
    state: SchedulerState
    row_current: bool = True  # False: a crash came between the history and the row write


def read_scheduler_state(events: Sequence[dict[str, Any]]) -> SchedulerState:
    started = next((e for e in events if e["EventType"] == EventType.ExecutionStarted), None)
    return SchedulerState.from_json(None if started is None else started.get("Input"))


class EntityRunner:
    """Batches for entities; the engine guarantees one batch per entity at a time."""

    def __init__(self, hub: TaskHub, worker: EntityInvoker, settler: MessageSettler,
                 send: Callable[[Sequence[OutboundMessage]], Awaitable[None]]) -> None:
        self.hub = hub
        self.worker = worker
        self.settler = settler
        self.send = send
        self.cache: OrderedDict[str, LoadedEntity] = OrderedDict()
        self.deleted: dict[str, set[str]] = {}  # request ids whose messages are gone from the queues

    def forget(self, instance_id: str) -> None:
        self.cache.pop(instance_id, None)

    async def _load(self, instance_id: str) -> LoadedEntity:
        cached = self.cache.get(instance_id)
        if cached is not None:
            return cached
        page = await self.hub.load_history(instance_id)
        started = next((e for e in page.events if e["EventType"] == EventType.ExecutionStarted), None)
        row = await self.hub.get_instance(instance_id, fetch_input=False, fetch_output=False)
        created = row.created_time if row is not None else None
        execution_id = page.execution_id if started else None
        row_current = execution_id is None or (row is not None and row.execution_id == execution_id)
        return LoadedEntity(execution_id, created, read_scheduler_state(page.events), row_current)

    def _function_name(self, entity: EntityId) -> str | None:
        return next((n for n in self.worker.entities if n.lower() == entity.name.lower()), None)

    async def run(self, instance_id: str, batch: list[ReceivedMessage]) -> tuple[list[ReceivedMessage],
                                                                                   list[ReceivedMessage]]:
        """Apply ``batch``; returns (consumed, deferred) as the episode runner does (both empty: settled here)."""
        entity = parse_entity_id(instance_id)
        loaded = await self._load(instance_id)
        state = loaded.state
        seen = set(state.processed)
        requests: list[dict[str, Any]] = []
        for message in sorted(batch, key=lambda m: (m.inserted_on, m.sequence_number)):
            request = _request_of(message)
            if request is None:
                log.warning("Discarding a %s message for entity '%s'", EventType(message.event["EventType"]).name,
                            instance_id)
            elif request["id"] in seen:
                log.info("Entity '%s' already applied request %s (redelivered)", instance_id, request["id"])
            else:
                seen.add(request["id"])
                requests.append(request)
        # A signal handed over in memory while it is written may be here before its queue has it: nothing is
        # applied or written until it is stored, and a failed write (its sender was told) fails the batch,
        # whose other messages come back without it.
        await until_stored(batch)
        if requests:
            await self._apply(instance_id, entity, loaded, requests)
        elif not loaded.row_current and loaded.execution_id is not None:
            # Only redeliveries: the checkpoint they belong to is in history; bring the row up to it.
            await self._write_row(instance_id, entity, loaded.execution_id, loaded.created or utcnow(), loaded.state,
                                  utcnow())
            loaded.row_current = True
        await self.settler.complete_all(batch)
        self.deleted.setdefault(instance_id, set()).update(r for m in batch if (r := _request_id(m)))
        return [], []

    async def _apply(self, instance_id: str, entity: EntityId, loaded: LoadedEntity,
                     requests: list[dict[str, Any]]) -> None:
        state = loaded.state
        now = utcnow()
        results, new_entity_state = await self._invoke(entity, state, requests)
        answers: list[OutboundMessage] = []
        for request, (ok, result) in zip(requests, results, strict=True):
            if request.get("signal") or not request.get("parent"):
                continue
            event = response_event(request["id"], result, failed=not ok, timestamp=now)
            answers.append(OutboundMessage(event=event, instance_id=request["parent"],
                                           execution_id=request.get("parentExecution"),
                                           sender={"InstanceId": instance_id, "ExecutionId": ""}))
        done = self.deleted.pop(instance_id, set())
        processed = [i for i in state.processed if i not in done] + [r["id"] for r in requests]
        exists, entity_state = new_entity_state or (state.exists, state.state)
        new_state = SchedulerState(exists, entity_state, processed[-MAX_REMEMBERED_REQUESTS:])
        if answers:
            await self.send(answers)  # the provider's order: messages first, then the checkpoint
        await self._checkpoint(instance_id, entity, loaded, new_state, now)

    def missing_function_message(self, name: str) -> str | None:
        """The extension's message for a name that is no entity function of the app, else None.

        The extension decides between its two wordings by the count of *orchestrator* functions; the
        worker here does not say, so the listing form is used whenever the app has other durable functions.
        """
        if self._function_name(EntityId(name, "")) is not None:
            return None
        known = "', '".join(self.worker.entities)
        others = bool(self.worker.entities) or bool(getattr(self.worker, "orchestrators", None))
        extra = (f"The following are the known entity functions: '{known}'." if others
                 else "No entity functions are currently registered!")
        return (f"The function '{name.lower()}' doesn't exist, is disabled, or is not an entity function. "
                f"Additional info: {extra}")

    async def _invoke(self, entity: EntityId, state: SchedulerState, requests: list[dict[str, Any]]
                      ) -> tuple[list[tuple[bool, str | None]], tuple[bool, str | None] | None]:
        """Run the batch: (succeeded, result JSON text) per request, and the new (exists, state) if any."""
        name = self._function_name(entity)
        if name is None:
            message = self.missing_function_message(entity.name) or ""
            log.warning("Entity '%s': %s (%d operation(s) answered with this error)", entity.instance_id, message,
                        len(requests))
            return [(False, compact(message))] * len(requests), None
        payload = {
            "self": {"name": entity.name, "key": entity.key},
            "exists": state.exists,
            "state": state.state,
            # The SDK decodes an operation's input twice: the JSON text of the input travels as a JSON string.
            "batch": [{"name": r.get("op"), "input": "null" if r.get("input") is None else json.dumps(r["input"])}
                      for r in requests],
        }
        try:
            reply = json.loads(await self.worker.invoke_entity(name, json.dumps(payload)))
        except (FunctionInvocationError, json.JSONDecodeError) as exc:
            text = exc.message if isinstance(exc, FunctionInvocationError) else str(exc)
            return [(False, compact(f"Entity function '{name}' failed: {text}"))] * len(requests), None
        results = reply.get("results") or []
        if len(results) != len(requests):
            message = f"Entity function '{name}' answered {len(results)} results for {len(requests)} operations."
            return [(False, compact(message))] * len(requests), None
        if reply.get("signals"):
            log.warning("Entity '%s' sent signals from an operation; devhost does not deliver those", name)
        outcomes = [(not r.get("isError"), r.get("result")) for r in results]
        return outcomes, (bool(reply.get("entityExists")), reply.get("entityState"))

    async def _write_row(self, instance_id: str, entity: EntityId, execution_id: str, created: datetime,
                         state: SchedulerState, now: datetime) -> None:
        """The Instances row of a checkpoint: Running, with the scheduler state as input."""
        status = compact({"entityExists": state.exists, "queueSize": 0, "lockedBy": None})
        await self.hub.update_instance(instance_id, InstanceUpdate(
            execution_id=execution_id, name=entity.name.lower(), version="", runtime_status=OrchestrationStatus.Running,
            input=state.to_json(), custom_status=status, created_time=created, last_updated_time=now, generation=0,
        ))

    async def _checkpoint(self, instance_id: str, entity: EntityId, loaded: LoadedEntity, state: SchedulerState,
                          now: datetime) -> None:
        """Continue as new with ``state``: one generation of history, then the Instances row."""
        execution_id = ids.uuid4_hex()
        state_json = state.to_json()
        events = [
            new_event(EventType.OrchestratorStarted, timestamp=now),
            {**execution_started(instance_id, execution_id, entity.name.lower(), state_json, timestamp=now),
             "IsPlayed": True},
            new_event(EventType.OrchestratorCompleted, timestamp=now),
        ]
        await self.hub.append_history(instance_id, execution_id, 0, events, None)
        created = loaded.created or now
        await self._write_row(instance_id, entity, execution_id, created, state, now)
        self.cache[instance_id] = LoadedEntity(execution_id, created, state)
        self.cache.move_to_end(instance_id)
        while len(self.cache) > CACHE_CAPACITY:
            self.cache.popitem(last=False)


def _request_of(message: ReceivedMessage) -> dict[str, Any] | None:
    event = message.event
    if event["EventType"] != EventType.EventRaised or event.get("Name") != OPERATION_EVENT:
        return None
    try:
        request = json.loads(event.get("Input") or "")
    except json.JSONDecodeError:
        return None
    if not isinstance(request, dict) or not isinstance(request.get("id"), str):
        return None
    return request


def _request_id(message: ReceivedMessage) -> str | None:
    request = _request_of(message)
    return None if request is None else request["id"]
