"""The entity runner on an in-memory task hub: redelivered operations apply once, state lives in the hub."""

from __future__ import annotations

import asyncio
import json

import pytest

from devhost.durable.entities.client import read_entity_state
from devhost.durable.entities.ids import EntityId
from devhost.durable.entities.messages import operation_message, request_message
from devhost.durable.history import EventType, OrchestrationStatus, utcnow
from devhost.durable.taskhub.base import InstanceUpdate
from devhost.durable.taskhub.memory import MemoryTaskHub
from tests.devhost.durable.conftest import lose_write, run, running_engine

CLIENT = {"InstanceId": "", "ExecutionId": ""}


def add(entity: EntityId, request_id: str, amount: int):  # type: ignore[no-untyped-def]
    now = utcnow()
    request = request_message(request_id=request_id, operation="add", input_text=json.dumps(amount), signal=True,
                              parent=None, parent_execution=None, timestamp=now)
    return operation_message(entity.instance_id, request, sender=CLIENT, timestamp=now)


def test_a_request_delivered_twice_is_applied_once() -> None:
    """The same request in two messages (a redelivery after a crash) changes the state once."""
    async def scenario() -> None:
        async with running_engine() as h:
            entity = EntityId("Tally", "t1")
            twice = add(entity, "request-1", 2)
            await h.engine.send([twice])
            await h.engine.send([twice])
            await h.engine.send([add(entity, "request-2", 3)])
            deadline = asyncio.get_running_loop().time() + 10
            while (await read_entity_state(h.client, entity)) != (True, "5"):
                assert asyncio.get_running_loop().time() < deadline, await read_entity_state(h.client, entity)
                await asyncio.sleep(0.01)
            while h.engine.inboxes:  # every message handled, the duplicate included
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)
            assert await read_entity_state(h.client, entity) == (True, "5")
    run(scenario())


def test_a_batch_checkpoints_one_generation() -> None:
    """After a batch the entity's history is one generation whose input is the scheduler state; its row runs."""
    async def scenario() -> None:
        async with running_engine() as h:
            entity = EntityId("Tally", "t2")
            await h.engine.send([add(entity, "r-1", 4)])
            deadline = asyncio.get_running_loop().time() + 10
            while (await read_entity_state(h.client, entity))[0] is False:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)
            history = (await h.hub.load_history(entity.instance_id)).events
            assert [EventType(e["EventType"]).name for e in history] == [
                "OrchestratorStarted", "ExecutionStarted", "OrchestratorCompleted"]
            state = json.loads(history[1]["Input"])
            assert state["exists"] is True and state["state"] == "4"
            row = await h.hub.get_instance(entity.instance_id)
            assert row is not None and row.runtime_status == OrchestrationStatus.Running and row.name == "tally"
    run(scenario())


def test_a_redelivery_after_a_crash_before_the_row_write_repairs_the_row() -> None:
    """History holds the checkpoint, the row does not: the redelivery is not applied again, the row is fixed."""
    async def scenario() -> None:
        async with running_engine() as h:
            entity = EntityId("Tally", "t3")
            once = add(entity, "r-1", 6)
            await h.engine.send([once])
            deadline = asyncio.get_running_loop().time() + 10
            while (await read_entity_state(h.client, entity))[0] is False:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)
            # The row as it was before that checkpoint, and a restarted process that remembers nothing.
            await h.hub.update_instance(entity.instance_id, InstanceUpdate(
                execution_id="before", input='{"exists":false,"state":null,"processed":[]}'))
            h.engine.forget(entity.instance_id)
            await h.engine.send([once])
            while await read_entity_state(h.client, entity) != (True, "6"):
                assert asyncio.get_running_loop().time() < deadline, await read_entity_state(h.client, entity)
                await asyncio.sleep(0.01)
            while h.engine.inboxes:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)
            assert await read_entity_state(h.client, entity) == (True, "6")
    run(scenario())


class FailsOneSignalWrite(MemoryTaskHub):
    """The write of the signal carrying ``lost_request`` fails a moment after it was handed over."""

    lost_request = "lost"

    def write_leased(self, messages, lease):  # type: ignore[no-untyped-def]
        held = super().write_leased(messages, lease)
        for message in held:
            if self.lost_request in (message.event.get("Input") or ""):
                lose_write(self, message)
        return held


def test_a_signal_whose_write_failed_is_not_applied() -> None:
    """A signal its sender was told failed changes nothing; the next one applies to the state before it."""
    async def scenario() -> None:
        hub = FailsOneSignalWrite("EngineToy")
        async with running_engine(hub) as h:
            entity = EntityId("Tally", "t4")
            with pytest.raises(ConnectionError):
                await h.engine.send([add(entity, "lost", 100)])
            await h.engine.send([add(entity, "kept", 7)])
            deadline = asyncio.get_running_loop().time() + 10
            while (await read_entity_state(h.client, entity))[0] is False or h.engine.inboxes:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)
            assert await read_entity_state(h.client, entity) == (True, "7")
    run(scenario())
