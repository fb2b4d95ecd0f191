"""``AzureStorageTaskHub``: the task hub in Azure Storage (Azurite) in the DurableTask.AzureStorage layout.

Tables ``{hub}Instances`` / ``{hub}History``, queues ``{hub}-control-NN`` / ``{hub}-workitems``, containers
``{hub}-largemessages`` / ``{hub}-leases`` (spec Part B). As Azurite splits its services, the work is split
by what it stores: ``storage_queues``, ``storage_history`` (sentinel and batches) and ``storage_instances``
(large-payload columns and listings); this class builds them and composes them into a ``TaskHub``.

One service client per storage service, created once; because on two cores the Python-side cost of each
storage call matters as much as the number of calls, the per-message and per-episode calls go through
``rest`` and ``table_batch`` on one transport per hub (``storage_http``): a lean aiohttp session
for Shared Key accounts and identity-based connections (bearer tokens), else the SDK clients' own
pipelines. The rare calls use the SDK methods.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from devhost.durable.history import Event, format_timestamp, utcnow
from devhost.durable.taskhub import call_counter, keys, rest, storage_http
from devhost.durable.taskhub.base import (
    HistoryPage,
    InstanceQuery,
    InstanceRow,
    InstanceUpdate,
    OutboundMessage,
    ReceivedMessage,
)
from devhost.durable.taskhub.large_payloads import BlobPayloadStore, blob_folder
from devhost.durable.taskhub.storage_history import HistoryTable
from devhost.durable.taskhub.storage_http import QueueEndpoint, SdkPipeline, TableEndpoint, Transport
from devhost.durable.taskhub.storage_instances import InstancesTable, build_instance_filter
from devhost.durable.taskhub.storage_queues import StorageQueues
from devhost.errors import TaskHubError
from devhost.storage_clients import open_service_clients
from devhost.storage_settings import StorageConnection

__all__ = ["AzureStorageTaskHub", "build_instance_filter", "quiet_azure_logging"]

log = logging.getLogger("devhost.taskhub")

# A few quick retries. The SDK defaults back off for up to a minute, which suits a remote service; a
# local emulator either answers at once or is down.
_TABLE_RETRY: dict[str, Any] = {"retry_total": 3, "retry_backoff_factor": 0.1, "retry_backoff_max": 1.0}
_STORAGE_RETRY: dict[str, Any] = {
    "retry_total": 3,
    "initial_backoff": 0.2,
    "increment_base": 0.3,
    "random_jitter_range": 0.1,
}


def quiet_azure_logging() -> None:
    """The SDK logs every request at INFO; that costs CPU and floods devhost's own log."""
    azure_logger = logging.getLogger("azure")
    if azure_logger.level == logging.NOTSET or azure_logger.level < logging.WARNING:
        azure_logger.setLevel(logging.WARNING)


def _local_transport() -> AioHttpTransport:
    """An HTTP transport that ignores proxy/netrc environment settings.

    With the SDK default (``trust_env=True``) aiohttp looks up ``~/.netrc`` and the proxy variables in a
    worker thread on every request: two thread hand-offs per storage call, and a proxy could even
    capture loopback traffic to Azurite.
    """
    return AioHttpTransport(use_env_settings=False)


class AzureStorageTaskHub:
    """A task hub in Azure Storage; see ``devhost.durable.taskhub.base.TaskHub`` for the contract.

    ``lean_http`` False keeps every hot call on the SDK pipelines, as SAS credentials do.
    """

    def __init__(self, connection: str | StorageConnection, hub_name: str, partition_count: int = 4, *,
                 lean_http: bool = True) -> None:
        keys.check_hub(hub_name, partition_count)
        quiet_azure_logging()
        self.name = hub_name
        self.partition_count = partition_count
        # A connection string, or identity-based settings (service URIs and a token credential).
        services = open_service_clients(connection, _local_transport, _TABLE_RETRY, _STORAGE_RETRY)
        self._table_service: TableServiceClient = services[0]
        self._queue_service: QueueServiceClient = services[1]
        self._blob_service: BlobServiceClient = services[2]
        # The hot calls go on one lean aiohttp session, signed with the account key or carrying a bearer
        # token; with a SAS there is none and they stay on the SDK pipelines.
        self._http = (
            storage_http.for_clients(connection, self._table_service, self._queue_service)
            if lean_http else None
        )

        self.history_table_name = keys.history_table_name(hub_name)
        self.instances_table_name = keys.instances_table_name(hub_name)
        table_base_url = self._table_service.url.rstrip("/") + "/"  # account endpoint for $batch
        history_client = self._table_service.get_table_client(self.history_table_name)
        instances_client = self._table_service.get_table_client(self.instances_table_name)

        queue_names = [keys.control_queue_name(hub_name, i) for i in range(partition_count)]
        queue_names.append(keys.work_item_queue_name(hub_name))
        self._queue_clients: dict[str, QueueClient] = {
            name: self._queue_service.get_queue_client(name) for name in queue_names
        }
        self.large_messages_container_name = keys.large_messages_container_name(hub_name)
        self.leases_container_name = keys.leases_container_name(hub_name)
        self._payloads = BlobPayloadStore(
            self._blob_service.get_container_client(self.large_messages_container_name),
            self._blob_service.url,
        )
        self._leases = self._blob_service.get_container_client(self.leases_container_name)

        self.queues = StorageQueues(
            hub_name, partition_count,
            {name: QueueEndpoint(self._transport(client), client.url) for name, client in self._queue_clients.items()},
            self._payloads,
        )
        self.history = HistoryTable(
            TableEndpoint(self._transport(history_client), table_base_url, self.history_table_name),
            history_client, self._payloads,
        )
        self.instances = InstancesTable(
            hub_name,
            TableEndpoint(self._transport(instances_client), table_base_url, self.instances_table_name),
            instances_client, self._payloads,
        )

    def _transport(self, client: Any) -> Transport:
        return call_counter.wrap(self._http if self._http is not None else SdkPipeline(client))

    # ---------------------------------------------------------------------------------------- setup

    async def create_if_not_exists(self) -> None:
        """Create tables, queues, containers and ``taskhub.json``; one read when they already exist.

        ``taskhub.json`` is written last, so its presence means an earlier call finished everything.
        Every create tolerates "already exists", so concurrent or repeated calls are safe.
        """
        try:
            await self._create_all()
        except AzureError as exc:
            raise TaskHubError(f"cannot create task hub {self.name} in storage: {exc}") from exc

    async def _create_all(self) -> None:
        info = await self._read_taskhub_info()
        if info is not None and info.get("PartitionCount") == self.partition_count:
            return
        await asyncio.gather(
            self._create_table(self.history_table_name),
            self._create_table(self.instances_table_name),
            *(self._create_queue(client) for client in self._queue_clients.values()),
            self._create_container(self._payloads.container),
            self._create_container(self._leases),
        )
        if info is None:
            body = json.dumps(
                {
                    "TaskHubName": self.name,
                    "CreatedAt": format_timestamp(utcnow()),
                    "PartitionCount": self.partition_count,
                }
            )
            try:
                await self._leases.upload_blob(keys.TASKHUB_INFO_BLOB, body.encode(), overwrite=False)
            except ResourceExistsError:
                pass  # another process finished first
        else:
            log.warning(
                "Task hub %s was created with %s partitions; this host uses %s",
                self.name,
                info.get("PartitionCount"),
                self.partition_count,
            )

    async def _read_taskhub_info(self) -> dict[str, Any] | None:
        try:
            downloader = await self._leases.download_blob(keys.TASKHUB_INFO_BLOB)
            value = json.loads(await downloader.readall())
        except ResourceNotFoundError:
            return None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    async def _create_table(self, name: str) -> None:
        try:
            await self._table_service.create_table(name)
        except ResourceExistsError:
            pass

    @staticmethod
    async def _create_queue(client: QueueClient) -> None:
        try:
            await client.create_queue()
        except ResourceExistsError:
            pass

    @staticmethod
    async def _create_container(client: Any) -> None:
        try:
            await client.create_container()
        except ResourceExistsError:
            pass

    async def delete_if_exists(self) -> None:
        """Drop every table, queue and container of this hub (not in ``TaskHub``: tests and benchmarks).

        Leftover messages matter: Azurite's queue calls slow down with the number of messages it holds.
        """

        async def ignore_missing(call: Awaitable[Any]) -> None:
            try:
                await call
            except ResourceNotFoundError:
                pass

        await rest.guard(
            f"deleting task hub {self.name}",
            asyncio.gather(
                self._table_service.delete_table(self.history_table_name),
                self._table_service.delete_table(self.instances_table_name),
                *(ignore_missing(client.delete_queue()) for client in self._queue_clients.values()),
                ignore_missing(self._payloads.container.delete_container()),
                ignore_missing(self._leases.delete_container()),
            ),
        )

    async def close(self) -> None:
        await asyncio.gather(
            self._table_service.close(), self._queue_service.close(), self._blob_service.close()
        )
        if self._http is not None:
            await self._http.close()

    # ---------------------------------------------------------------------------------------- names

    def control_queue_name(self, instance_id: str) -> str:
        return self.queues.control_queue_name(instance_id)

    @property
    def control_queue_names(self) -> list[str]:
        return list(self.queues.control_names)

    @property
    def work_item_queue_name(self) -> str:
        return self.queues.work_items_name

    # --------------------------------------------------------------------------------------- queues

    async def send(self, messages: Sequence[OutboundMessage]) -> None:
        await self.queues.send(messages)

    def write_leased(self, messages: Sequence[OutboundMessage], lease: float) -> list[ReceivedMessage]:
        return self.queues.write_leased(messages, lease)

    async def receive(self, queue: str, max_messages: int, visibility_timeout: float) -> list[ReceivedMessage]:
        return await self.queues.receive(queue, max_messages, visibility_timeout)

    async def delete(self, message: ReceivedMessage) -> None:
        await self.queues.delete(message)

    async def set_visibility(self, message: ReceivedMessage, seconds: float) -> None:
        await self.queues.set_visibility(message, seconds)

    # -------------------------------------------------------------------------------------- history

    async def load_history(self, instance_id: str) -> HistoryPage:
        return await self.history.load_history(instance_id)

    async def append_history(
        self, instance_id: str, execution_id: str, start_index: int, events: Sequence[Event], etag: str | None,
        *, after: Awaitable[object] | None = None,
    ) -> str:
        return await self.history.append_history(instance_id, execution_id, start_index, events, etag, after=after)

    # ------------------------------------------------------------------------------------ instances

    async def get_instance(
        self, instance_id: str, *, fetch_input: bool = True, fetch_output: bool = True, fresh: bool = False
    ) -> InstanceRow | None:
        return await self.instances.get_instance(instance_id, fetch_input=fetch_input, fetch_output=fetch_output)

    async def write_instance(self, row: InstanceRow, *, replace: bool = False) -> None:
        await self.instances.write_instance(row, replace=replace)

    async def create_instance(self, row: InstanceRow, etag: str | None) -> bool:
        return await self.instances.create_instance(row, etag)

    async def update_instance(self, instance_id: str, update: InstanceUpdate) -> None:
        await self.instances.update_instance(instance_id, update)

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceRow], str | None]:
        return await self.instances.query_instances(query)

    async def purge_instance(self, instance_id: str) -> bool:
        """Delete history rows, the Instances row and large-message blobs; False if none existed."""
        pk = keys.escape_partition_key(instance_id)
        try:
            row_keys, instance_existed, blob_count = await asyncio.gather(
                self.history.row_keys(pk),
                self.instances.delete_row(pk),
                self._payloads.delete_prefix({f"{pk}/", f"{blob_folder(instance_id)}/"}),
            )
            await self.history.delete_rows(pk, row_keys)
        except AzureError as exc:
            raise TaskHubError(f"purging {instance_id!r} failed: {exc}") from exc
        return bool(row_keys) or instance_existed or blob_count > 0
