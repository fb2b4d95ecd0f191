"""The durable extension as the host sees it: task hub, engine and the Durable HTTP API in one object."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from devhost.config import HostConfig
from devhost.durable.api import DurableApi
from devhost.durable.client import DurableClient
from devhost.durable.client_binding import client_binding_json
from devhost.durable.engine import Engine
from devhost.durable.hub_clients import HubClients
from devhost.durable.poison import storage_queue_writer
from devhost.durable.taskhub import call_counter
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
        if hub is None:  # poison messages are copied to {hub}-poison in the same storage account
            self.engine.poison.put = storage_queue_writer(config.storage_connection)
        self.client = DurableClient(self.hub, self.engine, override_active=config.durable.override_active_instances)
        self.clients = HubClients(self.client, self._storage_hub)
        self.api = DurableApi(self.clients)
        # Set by the host: where the SDK's management calls go (the webhook URL's query lives on the API).
        self.rpc_origin = f"http://127.0.0.1:{config.port}"

    @property
    def required_query(self) -> str:
        """The webhook URL's query (``code=<system key>`` when keys are checked), carried by every link."""
        return self.api.required_query

    @required_query.setter
    def required_query(self, value: str) -> None:
        self.api.required_query = value

    def _storage_hub(self, hub_name: str) -> TaskHub:
        from devhost.durable.taskhub.azure_storage import AzureStorageTaskHub

        connection = self.config.storage or self.config.storage_connection
        return AzureStorageTaskHub(connection, hub_name, self.config.durable.partition_count)

    async def start(self) -> None:
        """Create the task hub if needed and start taking work from its queues."""
        await self.hub.create_if_not_exists()
        await self.engine.start()
        call_counter.mark_started()  # what the benchmark counts from here on is the workload's
        log.info("Durable task hub '%s' ready (%d partitions)", self.hub_name, self.hub.partition_count)

    async def recover(self) -> None:
        """After an outage or lost writes: drop every cached row and history, re-create a missing hub."""
        if isinstance(self.hub, RowCachingTaskHub):
            self.hub.forget_all()
        self.engine.runner.forget_all()
        await self.hub.create_if_not_exists()
        log.info("Task hub '%s' checked after storage trouble; cached state dropped", self.hub_name)

    async def stop(self) -> None:
        """Stop taking work; what is in flight finishes or returns to its queue."""
        await self.engine.stop()
        await self.clients.close_others()
        await self.hub.close()

    def client_binding_json(self, task_hub: str | None, connection_name: str | None) -> str:
        port = self.config.port
        return client_binding_json(
            public_origin=f"http://localhost:{port}",
            rpc_origin=self.rpc_origin,
            task_hub=task_hub or self.hub_name,
            connection_name=connection_name,
            required_query=self.required_query,
        )

    async def handle_api(self, request: web.Request, tail: str, *, rpc: bool) -> web.StreamResponse:
        """Serve the Durable HTTP API; ``tail`` is the still-encoded path after the API base."""
        return await self.api.handle(request, tail, rpc=rpc)
