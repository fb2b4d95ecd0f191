"""The clients the Durable HTTP API can address: the app's task hub and, on request, other hubs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from devhost.bounded_cache import ClosingLru
from devhost.durable.client import DurableClient
from devhost.durable.taskhub.base import InstanceQuery, InstanceRow, OutboundMessage, TaskHub

# Other hubs named by ``?taskHub=`` keep a client (HTTP sessions, sockets) only while recently used.
MAX_OTHER_HUB_CLIENTS = 16


class EnsuredHub:
    """Another hub, created before the first write to it, as the provider's client operations do.

    (DTFx ``AzureStorageOrchestrationService``: "Client operations will auto-create the task hub if it
    doesn't already exist.")
    """

    def __init__(self, inner: TaskHub) -> None:
        self.inner = inner
        self._created = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _ensure(self) -> None:
        if not self._created:
            await self.inner.create_if_not_exists()
            self._created = True

    async def send(self, messages: Sequence[OutboundMessage]) -> None:
        await self._ensure()
        await self.inner.send(messages)

    async def write_instance(self, row: InstanceRow, *, replace: bool = False) -> None:
        await self._ensure()
        await self.inner.write_instance(row, replace=replace)

    async def create_instance(self, row: InstanceRow, etag: str | None) -> bool:
        await self._ensure()
        return await self.inner.create_instance(row, etag)

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceRow], str | None]:
        await self._ensure()
        return await self.inner.query_instances(query)


class HubClients:
    """The app hub's client (backed by the engine) and management-only clients of other hubs by name."""

    def __init__(self, app_client: DurableClient, open_hub: Callable[[str], TaskHub]) -> None:
        self.app_client = app_client
        self.open_hub = open_hub  # raises ValueError for a name that is no valid task hub name
        self.others: ClosingLru[str, DurableClient] = ClosingLru(MAX_OTHER_HUB_CLIENTS, _close_client)

    @property
    def app_hub_name(self) -> str:
        return self.app_client.hub.name

    def client_for(self, hub_name: str) -> DurableClient:
        """The client of ``hub_name``; a hub other than the app's is only managed, never run, here."""
        key = hub_name.lower()
        if key == self.app_hub_name.lower():
            return self.app_client
        override = self.app_client.override_active
        return self.others.get_or_create(
            key, lambda: DurableClient(EnsuredHub(self.open_hub(hub_name)), override_active=override))

    async def close_others(self) -> None:
        await self.others.close_all()


async def _close_client(client: DurableClient) -> None:
    await client.hub.close()
