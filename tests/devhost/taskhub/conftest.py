"""Task hub fixtures: a factory that opens a fresh hub on Azurite or in memory inside a test's event loop.

There is no pytest-asyncio here, so each test runs its coroutine with ``asyncio.run``; hubs are created
inside that loop (the SDK's HTTP sessions bind to the loop that first uses them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest

from devhost.durable.history import utcnow
from devhost.durable.taskhub.azure_storage import AzureStorageTaskHub
from devhost.durable.taskhub.memory import MemoryTaskHub
from tests.devhost.taskhub.samples import new_hub_name

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@dataclass
class HubEnv:
    """A hub under test plus a way to let time pass (real sleep on Azurite, a moved clock in memory)."""

    hub: Any
    kind: str
    offset: list[float] = field(default_factory=lambda: [0.0])

    async def sleep(self, seconds: float) -> None:
        if self.kind == "memory":
            self.offset[0] += seconds
        else:
            await asyncio.sleep(seconds)


HubFactory = Callable[..., AbstractAsyncContextManager[HubEnv]]


@pytest.fixture(params=["memory", "azure"])
def open_hub(request: pytest.FixtureRequest) -> HubFactory:
    """Opens a new, created hub of the parametrised kind; Azurite starts only for the azure variant."""
    kind: str = request.param
    connection = request.getfixturevalue("storage_connection") if kind == "azure" else ""

    @asynccontextmanager
    async def factory(partition_count: int = 4) -> AsyncIterator[HubEnv]:
        name = new_hub_name()
        if kind == "memory":
            offset = [0.0]

            def clock() -> datetime:
                return utcnow() + timedelta(seconds=offset[0])

            yield HubEnv(MemoryTaskHub(name, partition_count, clock=clock), kind, offset)
            return
        hub = AzureStorageTaskHub(connection, name, partition_count)
        await hub.create_if_not_exists()
        try:
            yield HubEnv(hub, kind)
        finally:
            await hub.delete_if_exists()  # leftover messages would slow the shared Azurite down
            await hub.close()

    return factory


@pytest.fixture
def open_azure_hub(
    storage_connection: str,
) -> Callable[..., AbstractAsyncContextManager[AzureStorageTaskHub]]:
    """Opens a new, created ``AzureStorageTaskHub`` on the session's Azurite."""

    @asynccontextmanager
    async def factory(
        partition_count: int = 4, name: str | None = None
    ) -> AsyncIterator[AzureStorageTaskHub]:
        hub = AzureStorageTaskHub(storage_connection, name or new_hub_name(), partition_count)
        await hub.create_if_not_exists()
        try:
            yield hub
        finally:
            await hub.delete_if_exists()
            await hub.close()

    return factory
