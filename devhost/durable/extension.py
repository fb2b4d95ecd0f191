"""The durable extension as the host sees it: task hub, engine and the Durable HTTP API in one object."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from devhost.config import HostConfig
from devhost.durable.api import DurableApi
from devhost.durable.binding import client_binding_json
from devhost.durable.client import DurableClient
from devhost.durable.engine import Engine
from devhost.durable.taskhub.base import TaskHub
from devhost.durable.taskhub.row_cache import RowCachingTaskHub

if TYPE_CHECKING:
    from devhost.worker.invoker import Worker

log = logging.getLogger("devhost.durable")


class DurableExtension:
    """Owns the app's task hub and its engine; serves the management API for it (and other hubs)."""

    def __init__(self, config: HostConfig, worker: Worker, hub: TaskHub | None = None) -> None:
        self.config = config
        self.worker = worker
        self.hub_name = config.durable.hub_name
        # The engine and client of this process write every row of this hub: status reads come from memory.
        self.hub: TaskHub = RowCachingTaskHub(hub or self._storage_hub(self.hub_name))
        self.engine = Engine(self.hub, worker, config.durable)
        self.client = DurableClient(self.hub, self.engine)
        self.other_clients: dict[str, DurableClient] = {}
        self.api = DurableApi(self)

    def _storage_hub(self, hub_name: str) -> TaskHub:
        from devhost.durable.taskhub.azure_storage import AzureStorageTaskHub

        connection = self.config.storage or self.config.storage_connection
        return AzureStorageTaskHub(connection, hub_name, self.config.durable.partition_count)

    async def start(self) -> None:
        """Create the task hub if needed and start taking work from its queues."""
        await self.hub.create_if_not_exists()
        await self.engine.start()
        log.info("Durable task hub '%s' ready (%d partitions)", self.hub_name, self.hub.partition_count)

    async def stop(self) -> None:
        """Stop taking work; what is in flight finishes or returns to its queue."""
        await self.engine.stop()
        for client in self.other_clients.values():
            await client.hub.close()
        await self.hub.close()

    async def client_for(self, hub_name: str) -> DurableClient:
        """The client of ``hub_name``; a hub other than the app's is only managed, never run, here."""
        if hub_name.lower() == self.hub_name.lower():
            return self.client
        key = hub_name.lower()
        if key not in self.other_clients:
            self.other_clients[key] = DurableClient(self._storage_hub(hub_name))
        return self.other_clients[key]

    def forget(self, instance_id: str) -> None:
        self.engine.runner.forget(instance_id)

    def on_instance_change(self, instance_id: str, callback: Callable[[], None]) -> Callable[[], None]:
        return self.engine.on_instance_change(instance_id, callback)

    def client_binding_json(self, task_hub: str | None, connection_name: str | None) -> str:
        port = self.config.port
        return client_binding_json(
            public_origin=f"http://localhost:{port}",
            rpc_origin=f"http://127.0.0.1:{port}",
            task_hub=task_hub or self.hub_name,
            connection_name=connection_name,
        )

    async def handle_api(self, request: web.Request, path: str, *, rpc: bool) -> web.StreamResponse:
        """Serve the Durable HTTP API; ``path`` is what follows the base path."""
        return await self.api.handle(request, path, rpc=rpc)
