"""The clients the Durable HTTP API can address: the app's task hub and, on request, other hubs."""

from __future__ import annotations

from collections.abc import Callable

from devhost.durable.client import DurableClient
from devhost.durable.taskhub.base import TaskHub


class HubClients:
    """The app hub's client (backed by the engine) and management-only clients of other hubs by name."""

    def __init__(self, app_client: DurableClient, open_hub: Callable[[str], TaskHub]) -> None:
        self.app_client = app_client
        self.open_hub = open_hub  # raises ValueError for a name that is no valid task hub name
        self.others: dict[str, DurableClient] = {}

    @property
    def app_hub_name(self) -> str:
        return self.app_client.hub.name

    def client_for(self, hub_name: str) -> DurableClient:
        """The client of ``hub_name``; a hub other than the app's is only managed, never run, here."""
        key = hub_name.lower()
        if key == self.app_hub_name.lower():
            return self.app_client
        if key not in self.others:
            self.others[key] = DurableClient(self.open_hub(hub_name), override_active=self.app_client.override_active)
        return self.others[key]

    async def close_others(self) -> None:
        for client in self.others.values():
            await client.hub.close()
