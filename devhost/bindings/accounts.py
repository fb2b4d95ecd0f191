"""One set of async Azure Storage clients per storage account, shared by triggers and bindings,
plus the in-process "a message was just written" signal that wakes queue listeners at once."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
from typing import Any

from devhost.bindings.connection import BindingError, resolve_storage_connection
from devhost.storage_clients import open_service_client
from devhost.storage_settings import StorageConnection


def encode_message(content: str | bytes) -> str:
    """The host's default queue message encoding (extensions.queues.messageEncoding = base64)."""
    raw = content.encode() if isinstance(content, str) else bytes(content)
    return base64.b64encode(raw).decode("ascii")


class StorageAccount:
    """Async service clients for one resolved connection, created on first use; identity-based ones share
    the process's cached credential (``storage_clients.credential_for``) with the task hub and key store."""

    def __init__(self, connection: StorageConnection) -> None:
        self.connection = connection
        self._clients: dict[str, Any] = {}

    def _client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            endpoint = None
            if self.connection.is_identity_based:
                endpoint = self.connection.binding_endpoint(service)
                if endpoint is None:
                    raise BindingError(f"{self.connection.setting} has no {service} endpoint")
            client = self._clients[service] = open_service_client(service, self.connection, endpoint)
        return client

    @property
    def queues(self) -> Any:
        return self._client("queue")

    @property
    def blobs(self) -> Any:
        return self._client("blob")

    @property
    def tables(self) -> Any:
        return self._client("table")

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()


class StorageAccounts:
    """Accounts by resolved connection, and the queue-written signal (the host's SharedQueueWatcher)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self._accounts: dict[StorageConnection, StorageAccount] = {}
        # App settings are fixed for the host's life and names come from function.json: a bounded speed-up.
        self._resolved: dict[tuple[str | None, tuple[str, ...]], StorageConnection] = {}
        self._watchers: dict[tuple[StorageConnection, str], list[Callable[[], None]]] = {}

    def for_connection(self, connection: str | None, *services: str) -> StorageAccount:
        """The account a binding's ``connection`` names; refused unless it has an endpoint for ``services``."""
        key = self._resolved.get((connection, services))
        if key is None:
            key = self._resolved[(connection, services)] = resolve_storage_connection(connection, self.environ,
                                                                                      services)
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = StorageAccount(key)
        return account

    def watch_queue(self, account: StorageAccount, queue: str, wake: Callable[[], None]) -> None:
        self._watchers.setdefault((account.connection, queue.lower()), []).append(wake)

    def queue_written(self, account: StorageAccount, queue: str) -> None:
        """A binding of this process wrote to ``queue``: its listeners poll now instead of backing off."""
        for wake in self._watchers.get((account.connection, queue.lower()), []):
            wake()

    async def close(self) -> None:
        await asyncio.gather(*(a.close() for a in self._accounts.values()), return_exceptions=True)
        self._accounts.clear()
