"""The count of a hub's storage calls in flight, and the wait for a lull that deletes make."""

from __future__ import annotations

import asyncio

from devhost.durable.taskhub.storage_http import Reply
from devhost.durable.taskhub.traffic import Traffic, TrafficTransport


class SlowTransport:
    """Answers each call once its gate opens."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes = b"", *,
                   table: bool) -> Reply:
        await self.gate.wait()
        return Reply(204, {}, b"")


def test_a_lull_comes_when_the_last_call_in_flight_ends() -> None:
    """A waiter returns as soon as no call is in flight, not after its patience."""
    async def scenario() -> None:
        traffic = Traffic()
        inner = SlowTransport()
        transport = TrafficTransport(inner, traffic)
        calls = [asyncio.create_task(transport.send("PUT", "http://x/y", {}, table=True)) for _ in range(2)]
        await asyncio.sleep(0)
        assert traffic.in_flight == 2
        waiter = asyncio.create_task(traffic.lull(30.0))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        inner.gate.set()
        await asyncio.wait_for(waiter, 1.0)
        await asyncio.gather(*calls)
        assert traffic.in_flight == 0
    asyncio.run(scenario())


def test_a_lull_waits_no_longer_than_its_patience() -> None:
    """Under steady traffic a waiter goes on after its patience; with none it does not wait at all."""
    async def scenario() -> None:
        traffic = Traffic()
        await asyncio.wait_for(traffic.lull(30.0), 0.5)
        inner = SlowTransport()
        call = asyncio.create_task(TrafficTransport(inner, traffic).send("GET", "http://x/y", {}, table=False))
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await traffic.lull(0.05)
        assert 0.04 <= loop.time() - began < 1.0 and traffic.in_flight == 1
        inner.gate.set()
        await call
    asyncio.run(scenario())


def test_a_failed_call_leaves_the_count() -> None:
    """A call that raises is no longer counted in flight."""
    class Failing:
        async def send(self, *args: object, **kwargs: object) -> Reply:
            raise ConnectionError("gone")

    async def scenario() -> None:
        traffic = Traffic()
        try:
            await TrafficTransport(Failing(), traffic).send("GET", "http://x/y", {}, table=False)  # type: ignore[arg-type]
        except ConnectionError:
            pass
        assert traffic.in_flight == 0
    asyncio.run(scenario())
