"""The engine on an in-memory task hub, driving the toy app through the real worker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from devhost.config import DurableSettings, load_config
from devhost.durable.client import DurableClient
from devhost.durable.engine import Engine
from devhost.durable.history import TERMINAL_STATUSES
from devhost.durable.taskhub.base import InstanceRow, ReceivedMessage, TaskHub
from devhost.durable.taskhub.memory import MemoryTaskHub
from devhost.worker.invoker import Worker

APP_DIR = Path(__file__).parent / "app"
_worker: Worker | None = None


def toy_worker() -> Worker:
    """The toy app loaded once per process (get_functions() can only run once per app object)."""
    global _worker
    if _worker is None:
        _worker = Worker(load_config(APP_DIR, environ={}))
        _worker.load()
    return _worker


# Fast settings: short leases so redelivery tests do not wait, quick idle polls.
FAST = DurableSettings(hub_name="EngineToy", control_queue_visibility_timeout=0.3,
                       work_item_visibility_timeout=0.3, max_queue_polling_interval=0.05)


@dataclass
class Harness:
    hub: TaskHub
    engine: Engine
    client: DurableClient

    async def start(self, name: str, value: Any = None, instance_id: str | None = None) -> str:
        # Stored the way Microsoft's Python client sends it: JSON text inside a JSON string.
        text = None if value is None else json.dumps(json.dumps(value))
        return await self.client.start(name, instance_id, text)

    async def wait(self, instance_id: str, until: Callable[[InstanceRow], bool] | None = None,
                   within: float = 10.0) -> InstanceRow:
        until = until or (lambda row: row.runtime_status in TERMINAL_STATUSES)
        deadline = asyncio.get_running_loop().time() + within
        while True:
            row = await self.hub.get_instance(instance_id)
            if row is not None and until(row):
                return row
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"instance {instance_id} not there in {within} s: {row}")
            await asyncio.sleep(0.01)


@asynccontextmanager
async def running_engine(hub: TaskHub | None = None, **overrides: Any) -> AsyncIterator[Harness]:
    hub = hub or MemoryTaskHub("EngineToy")
    await hub.create_if_not_exists()
    engine = Engine(hub, toy_worker(), replace(FAST, **overrides))
    await engine.start()
    try:
        yield Harness(hub, engine, DurableClient(hub, engine))
    finally:
        await engine.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def lose_write(hub: MemoryTaskHub, message: ReceivedMessage, after: float = 0.05) -> None:
    """Turn a message just handed over into a write that fails ``after`` seconds later: the queue never has it,
    and whoever got it in memory may be well into its work when the failure is known."""
    hub._queue(message.queue).pop(message.message_id)
    loop = asyncio.get_running_loop()
    message.written = loop.create_future()
    loop.call_later(after, message.written.set_exception, ConnectionError("the queue put failed"))
