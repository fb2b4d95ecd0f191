"""One set of async Azure Storage clients per storage account, shared by triggers and bindings,
plus the in-process "a message was just written" signal that wakes queue listeners at once."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
from typing import Any

from devhost.bindings.connection import resolve_storage_connection


def encode_message(content: str | bytes) -> str:
    """The host's default queue message encoding (extensions.queues.messageEncoding = base64)."""
    raw = content.encode() if isinstance(content, str) else bytes(content)
    return base64.b64encode(raw).decode("ascii")


class StorageAccount:
    """Async service clients for one connection string, created on first use."""

    def __init__(self, connection_string: str) -> None:
        self.connection_string = connection_string
        self._queues: Any = None
        self._blobs: Any = None
        self._tables: Any = None

    @property
    def queues(self) -> Any:
        if self._queues is None:
            from azure.storage.queue.aio import QueueServiceClient

            self._queues = QueueServiceClient.from_connection_string(self.connection_string)
        return self._queues

    @property
    def blobs(self) -> Any:
        if self._blobs is None:
            from azure.storage.blob.aio import BlobServiceClient

            self._blobs = BlobServiceClient.from_connection_string(self.connection_string)
        return self._blobs

    @property
    def tables(self) -> Any:
        if self._tables is None:
            from azure.data.tables.aio import TableServiceClient

            self._tables = TableServiceClient.from_connection_string(self.connection_string)
        return self._tables

    async def close(self) -> None:
        for client in (self._queues, self._blobs, self._tables):
            if client is not None:
                await client.close()
        self._queues = self._blobs = self._tables = None


class StorageAccounts:
    """Accounts by connection string, and the queue-written signal (the host's SharedQueueWatcher)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self._accounts: dict[str, StorageAccount] = {}
        self._watchers: dict[tuple[str, str], list[Callable[[], None]]] = {}

    def connection_string(self, connection: str | None) -> str:
        return resolve_storage_connection(connection, self.environ)

    def for_connection(self, connection: str | None) -> StorageAccount:
        key = self.connection_string(connection)
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = StorageAccount(key)
        return account

    def watch_queue(self, account: StorageAccount, queue: str, wake: Callable[[], None]) -> None:
        self._watchers.setdefault((account.connection_string, queue.lower()), []).append(wake)

    def queue_written(self, account: StorageAccount, queue: str) -> None:
        """A binding of this process wrote to ``queue``: its listeners poll now instead of backing off."""
        for wake in self._watchers.get((account.connection_string, queue.lower()), []):
            wake()

    async def close(self) -> None:
        await asyncio.gather(*(a.close() for a in self._accounts.values()), return_exceptions=True)
        self._accounts.clear()
