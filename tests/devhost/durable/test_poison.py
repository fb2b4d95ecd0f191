"""Poison messages are set aside with their reason and their instance is failed saying why."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

from devhost.durable.client import DurableClient
from devhost.durable.history import OrchestrationStatus
from devhost.durable.poison import POISON_DEQUEUE_COUNT, PoisonHandler, is_poison, poison_queue_name
from devhost.durable.taskhub.memory import MemoryTaskHub


def test_poison_message_is_set_aside_and_its_instance_failed() -> None:
    """After the provider's threshold the message is copied to {hub}-poison and the instance is Failed."""
    put: list[tuple[str, str]] = []

    async def keep(queue: str, text: str) -> None:
        put.append((queue, text))

    async def scenario() -> None:
        hub = MemoryTaskHub("PoisonHub")
        await hub.create_if_not_exists()
        instance = await DurableClient(hub).start("Greeter", "poisoned", json.dumps("x"))
        (received,) = await hub.receive(hub.control_queue_name(instance), 32, 30.0)
        assert not is_poison([received])
        poisoned = replace(received, dequeue_count=POISON_DEQUEUE_COUNT)
        assert is_poison([poisoned])
        await PoisonHandler(hub, put=keep).set_aside(instance, [poisoned], "ValueError: history cannot be written")
        row = await hub.get_instance(instance)
        assert row is not None and row.runtime_status == OrchestrationStatus.Failed
        assert "set aside a message" in (row.output or "") and "history cannot be written" in (row.output or "")

    asyncio.run(scenario())
    ((queue, text),) = put
    assert queue == poison_queue_name("PoisonHub") == "poisonhub-poison"
    record = json.loads(text)
    assert record["reason"] == "ValueError: history cannot be written"
    assert record["instanceId"] == "poisoned" and record["dequeueCount"] == POISON_DEQUEUE_COUNT


def test_storage_queue_writer_keeps_the_record_where_a_person_finds_it(storage_connection: str) -> None:
    """The poison queue is created on first use and holds the record as readable JSON text."""
    from azure.storage.queue import QueueClient

    from devhost.durable.poison import storage_queue_writer

    put = storage_queue_writer(storage_connection)

    async def scenario() -> None:
        await put("writerhub-poison", json.dumps({"reason": "r1"}))
        await put("writerhub-poison", "x" * 100_000)

    asyncio.run(scenario())
    client = QueueClient.from_connection_string(storage_connection, "writerhub-poison")
    texts = [m.content for m in client.peek_messages(max_messages=2)]
    assert json.loads(texts[0]) == {"reason": "r1"} and 0 < len(texts[1]) <= 60_000


def test_engine_sets_aside_an_episode_that_keeps_failing() -> None:
    """Row 4: a message whose episode always fails is not retried forever; its instance fails saying why."""
    from devhost.durable.history import TERMINAL_STATUSES
    from tests.devhost.durable.conftest import running_engine

    class BrokenHistoryHub(MemoryTaskHub):
        """History of one instance cannot be written, as with a key storage refuses."""

        async def append_history(self, instance_id: str, *args: object, **kwargs: object) -> str:
            if instance_id == "cursed":
                raise ValueError("the History table refuses this partition key")
            return await super().append_history(instance_id, *args, **kwargs)  # type: ignore[arg-type]

    set_aside: list[str] = []

    async def keep(queue: str, text: str) -> None:
        set_aside.append(text)

    async def scenario() -> None:
        async with running_engine(BrokenHistoryHub("EngineToy")) as h:
            h.engine.poison.threshold = 2  # the provider's 10 would take minutes of back-off here
            h.engine.poison.put = keep
            await h.start("Greeter", {"name": "X", "timeout": 60}, instance_id="cursed")
            row = await h.wait("cursed", lambda r: r.runtime_status in TERMINAL_STATUSES, within=30)
            assert row.runtime_status == OrchestrationStatus.Failed
            assert "set aside a message" in (row.output or "") and "refuses this partition key" in (row.output or "")
            healthy = await h.start("Greeter", {"name": "Y", "timeout": 60})
            assert (await h.wait(healthy, lambda r: r.custom_status != "null")).runtime_status == \
                OrchestrationStatus.Running

    asyncio.run(scenario())
    assert len(set_aside) == 1 and json.loads(set_aside[0])["instanceId"] == "cursed"
