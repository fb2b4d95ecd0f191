"""Payloads too large for a queue message or a table property, kept as gzip blobs (spec B.4.3, B.5).

Queue messages whose ``MessageData`` JSON exceeds 45 KB of UTF-8 go to
``{hub}-largemessages/{instanceId}/message-{ActivityId:N}-{EventType}.json.gz`` and the queue carries a
wrapper; table properties whose UTF-16 size exceeds 60 KB go to
``{sanitizedInstanceId}/history-{RowKey}-{EventType}-{random X8}-{Prop}.json.gz`` and the row keeps the
blob name in ``<Prop>BlobName`` (History) or the blob URL in the column itself (Instances).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
from typing import Any
from urllib.parse import quote, unquote

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from devhost.durable.taskhub.keys import escape_partition_key

MAX_QUEUE_MESSAGE_BYTES = 45 * 1024  # UTF-8 bytes of the serialized MessageData
MAX_TABLE_PROPERTY_BYTES = 60 * 1024  # UTF-16 bytes of one string column
# Columns the provider may move to blobs (``VariableSizeEntityProperties``).
OFFLOADABLE_PROPERTIES = (
    "Name",
    "Input",
    "Result",
    "Output",
    "Reason",
    "Details",
    "Correlation",
    "FailureDetails",
    "Tags",
)
BLOB_NAME_SUFFIX = "BlobName"
STARTED_MESSAGE_SUFFIX = "ExecutionStarted.json.gz"


def exceeds_table_property_limit(value: str) -> bool:
    """Whether ``value`` is larger than 60 KB in UTF-16 (``Encoding.Unicode.GetByteCount``)."""
    length = len(value)
    if length * 2 <= MAX_TABLE_PROPERTY_BYTES:
        return False  # cheap early out: even all-BMP text of this length fits
    if length * 4 > MAX_TABLE_PROPERTY_BYTES and value.isascii():
        return True
    return len(value.encode("utf-16-le", "surrogatepass")) > MAX_TABLE_PROPERTY_BYTES


def compress(text: str) -> bytes:
    # mtime=0 keeps the bytes deterministic; level 6 is the usual speed/size trade-off.
    return gzip.compress(text.encode("utf-8", "surrogatepass"), compresslevel=6, mtime=0)


def decompress(data: bytes) -> str:
    return gzip.decompress(data).decode("utf-8", "surrogatepass")


def history_blob_name(partition_key: str, row_key: str, event_type: str, prop: str) -> str:
    """Blob name for a large History/Instances column; random part avoids races in split brain (#890)."""
    return f"{partition_key}/history-{row_key}-{event_type}-{random.getrandbits(31):08X}-{prop}.json.gz"


def blob_folder(instance_id: str) -> str:
    """The instance's folder for message blobs: the raw id as DTFx uses it, unless that cannot work.

    Control characters cannot appear in blob listings (XML 1.0), so such ids use their escaped form.
    """
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in instance_id):
        return escape_partition_key(instance_id)
    return instance_id


def message_blob_name(instance_id: str, activity_id: str, event_type: str) -> str:
    """Blob name for a large queue message (``GetNewLargeMessageBlobName``)."""
    return f"{blob_folder(instance_id)}/message-{activity_id.replace('-', '').lower()}-{event_type}.json.gz"


def input_from_started_message(text: str) -> str | None:
    """The ``Input`` inside a large ExecutionStarted message blob (the Instances row points at it)."""
    envelope: dict[str, Any] = json.loads(text)
    event = (envelope.get("TaskMessage") or {}).get("Event") or {}
    value = event.get("Input")
    return value if isinstance(value, str) or value is None else json.dumps(value)


class BlobPayloadStore:
    """Gzip blobs in the hub's large-message container, addressed by name or by absolute URL."""

    def __init__(self, container: ContainerClient, account_url: str) -> None:
        self.container = container
        self.container_name = container.container_name
        # URL prefix of every blob this store writes, e.g. http://127.0.0.1:10000/devstoreaccount1/hub-largemessages/
        self._account_url = account_url.rstrip("/") + "/"
        self._prefix = f"{self._account_url}{self.container_name}/"

    def url(self, blob_name: str) -> str:
        return self._prefix + quote(blob_name, safe="/~")

    def name_from_url(self, value: str) -> str | None:
        """The blob name behind one of our URLs, or None when ``value`` is not a URL into this container."""
        if value.startswith(self._prefix):
            return unquote(value[len(self._prefix) :])
        return None

    def is_blob_url(self, value: str) -> bool:
        return value.startswith(self._prefix)

    async def upload(self, blob_name: str, text: str) -> None:
        await self.container.upload_blob(blob_name, compress(text), overwrite=True)

    async def download(self, blob_name: str) -> str:
        downloader = await self.container.download_blob(blob_name)
        return decompress(await downloader.readall())

    async def resolve(self, value: str | None) -> str | None:
        """A column value as the reader should see it: blob URLs are downloaded and inflated."""
        if value is None:
            return None
        name = self.name_from_url(value)
        if name is None:
            return value
        text = await self.download(name)
        if name.endswith(STARTED_MESSAGE_SUFFIX):
            return input_from_started_message(text)
        return text

    async def delete_prefix(self, prefixes: set[str]) -> int:
        """Delete every blob under each prefix; returns how many were deleted."""
        names: list[str] = []
        for prefix in prefixes:
            async for blob in self.container.list_blobs(name_starts_with=prefix):
                names.append(blob.name)
        if not names:
            return 0

        async def delete(name: str) -> None:
            try:
                await self.container.delete_blob(name)
            except ResourceNotFoundError:
                pass  # deleted concurrently: the goal is reached either way

        await asyncio.gather(*(delete(name) for name in names))
        return len(names)
