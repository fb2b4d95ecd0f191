"""Idle queue polls: each queue keeps to its own slot of the polling interval, so their calls never bunch up."""

from __future__ import annotations

import asyncio
from typing import Any

from devhost.durable.taskhub.memory import MemoryTaskHub
from tests.devhost.durable.conftest import run, running_engine

INTERVAL = 0.2


class RecordingHub(MemoryTaskHub):
    """The in-memory hub, noting when each queue is read (on the loop's clock, the one the engine waits on)."""

    def __init__(self) -> None:
        super().__init__("EngineToy")
        self.reads: list[tuple[str, float]] = []

    async def receive(self, queue: str, count: int, visibility: float) -> Any:
        self.reads.append((queue, asyncio.get_running_loop().time()))
        return await super().receive(queue, count, visibility)


def _apart(a: float, b: float) -> float:
    """How far apart two places in the interval are, going round it."""
    gap = abs(a - b) % INTERVAL
    return min(gap, INTERVAL - gap)


def test_idle_polls_of_the_queues_are_spread_over_the_interval() -> None:
    """Pollers started together do not stay in step: each queue's idle reads fall in a slot of its own."""

    async def scenario() -> tuple[RecordingHub, int]:
        hub = RecordingHub()
        async with running_engine(hub, max_queue_polling_interval=INTERVAL) as harness:
            await asyncio.sleep(INTERVAL * 6)
            queues = len(harness.engine.wake)
        return hub, queues

    hub, queues = run(scenario())
    first = min(t for _, t in hub.reads)
    later = [(q, t) for q, t in hub.reads if t > first + INTERVAL * 1.5]  # past the reads at start
    places: dict[str, list[float]] = {}
    for queue, at in later:
        places.setdefault(queue, []).append(at % INTERVAL)
    assert len(places) == queues and all(len(p) >= 3 for p in places.values()), places
    for queue, mine in places.items():
        for other, theirs in places.items():
            if queue != other:
                closest = min(_apart(a, b) for a in mine for b in theirs)
                assert closest > INTERVAL / queues / 3, (queue, other, closest)
    for queue, mine in places.items():  # and each keeps its own slot, read after read
        assert max(_apart(a, mine[0]) for a in mine) < INTERVAL / queues / 3, (queue, mine)
