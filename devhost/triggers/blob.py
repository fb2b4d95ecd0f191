"""The blob trigger (container scan), with the host's receipts and poison queue.

A scan lists each watched container; a blob whose name matches the path pattern and whose version
(ETag) has no completed receipt becomes a message on the host's queue
``azure-webjobs-blobtrigger-{hostId}`` (``{"Type": "BlobTrigger", "FunctionId", "BlobType",
"ContainerName", "BlobName", "ETag"}``). Handling a message writes the receipt
``azure-webjobs-hosts/blobreceipts/{hostId}/{functionId}/{etag}/{container}/{blob}`` (metadata
``Incomplete`` while it runs, leased), invokes the function and marks the receipt complete, so a
version is processed once, across restarts. A message that fails ``maxDequeueCount`` times goes to
``webjobs-blobtrigger-poison``. The scan interval is ``extensions.queues.maxPollingInterval``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from azure.functions import meta

from devhost.bindings.connection import BindingError
from devhost.triggers.timer import HOSTS_CONTAINER

log = logging.getLogger("devhost.triggers.blob")

POISON_QUEUE = "webjobs-blobtrigger-poison"
RECEIPT_LEASE_SECONDS = 30


def quoted_etag(etag: str) -> str:
    """ETags as the host writes them into receipts and messages: in double quotes (listings omit them)."""
    etag = str(etag).strip()
    return etag if etag.startswith('"') else f'"{etag}"'


def trigger_queue_name(host_id: str) -> str:
    return f"azure-webjobs-blobtrigger-{host_id}".lower()[:63].rstrip("-")


@dataclass(frozen=True)
class BlobPathPattern:
    """``container/prefix{name}.ext``: a literal container and a blob-name pattern with parameters."""

    container: str
    regex: re.Pattern[str]
    prefix: str

    @classmethod
    def parse(cls, path: str) -> BlobPathPattern:
        container, _, blob = path.strip("/").partition("/")
        if not container or "{" in container:
            raise BindingError(f"blob trigger path '{path}' must start with a literal container name")
        if not blob:
            blob = "{blobname}"  # a bare container triggers on every blob in it
        pattern, position, prefix = "", 0, None
        for match in re.finditer(r"\{([^{}]+)\}", blob):
            literal = blob[position:match.start()]
            if prefix is None:
                prefix = literal
            pattern += re.escape(literal)
            name = match.group(1)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise BindingError(f"blob trigger path '{path}': '{{{name}}}' is not a valid parameter name")
            pattern += f"(?P<{name}>.+?)"
            position = match.end()
        pattern += re.escape(blob[position:])
        return cls(container.lower(), re.compile(f"^{pattern}$"), prefix if prefix is not None else blob)

    def match(self, blob_name: str) -> dict[str, str] | None:
        m = self.regex.match(blob_name)
        return m.groupdict() if m else None


Invoke = Callable[[meta.Datum, dict[str, meta.Datum], dict[str, Any]], Awaitable[None]]


@dataclass
class BlobFunction:
    """One blob-triggered function: where it listens and how to invoke it."""

    name: str
    pattern: BlobPathPattern
    blobs: Any  # the BlobServiceClient of its connection
    as_text: bool
    invoke: Invoke

    @property
    def function_id(self) -> str:
        return f"Host.Functions.{self.name}"


class BlobTriggerScanner:
    """Scans containers and queues each new blob version for its functions (at most once per process)."""

    def __init__(self, functions: list[BlobFunction], queue: Any, interval: float) -> None:
        self.functions = functions
        self.queue = queue  # the host's blob trigger queue, on the host storage account
        self.interval = interval
        self.hosts_blobs: Any = None  # set by the manager: the host account's BlobServiceClient
        self.host_id = ""
        self.on_queued: Callable[[], None] = lambda: None  # wakes the queue listener at once
        self._queued: set[tuple[str, str, str]] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="blob trigger scan")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            for fn in self.functions:
                try:
                    await self.scan(fn)
                except Exception as exc:
                    log.warning("Scanning container '%s' for function '%s' failed: %s", fn.pattern.container,
                                fn.name, exc)
            await asyncio.sleep(self.interval)

    async def scan(self, fn: BlobFunction) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        container = fn.blobs.get_container_client(fn.pattern.container)
        try:
            async for blob in container.list_blobs(name_starts_with=fn.pattern.prefix or None):
                if fn.pattern.match(blob.name) is None:
                    continue
                etag = quoted_etag(blob.etag)
                key = (fn.function_id, blob.name, etag)
                if key in self._queued:
                    continue
                self._queued.add(key)
                if await receipt_completed(self.hosts_blobs, self.host_id, fn.function_id, fn.pattern.container,
                                           blob.name, etag):
                    continue
                message = {"Type": "BlobTrigger", "FunctionId": fn.function_id, "BlobType": "BlockBlob",
                           "ContainerName": fn.pattern.container, "BlobName": blob.name, "ETag": etag}
                await send_message(self.queue, json.dumps(message))
                self.on_queued()
        except ResourceNotFoundError:
            return  # no container yet


async def send_message(queue: Any, text: str) -> None:
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    from devhost.bindings.accounts import encode_message

    try:
        await queue.send_message(encode_message(text))
    except ResourceNotFoundError:
        try:
            await queue.create_queue()
        except ResourceExistsError:
            pass
        await queue.send_message(encode_message(text))


def receipt_name(host_id: str, function_id: str, etag: str, container: str, blob: str) -> str:
    # The ETag goes before the blob name, which may itself hold slashes.
    return f"blobreceipts/{host_id}/{function_id}/{etag}/{container}/{blob}"


async def receipt_completed(hosts_blobs: Any, host_id: str, function_id: str, container: str, blob: str,
                            etag: str) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    client = hosts_blobs.get_blob_client(HOSTS_CONTAINER, receipt_name(host_id, function_id, etag, container, blob))
    try:
        properties = await client.get_blob_properties()
    except ResourceNotFoundError:
        return False
    return "Incomplete" not in (properties.metadata or {})


class BlobTriggerExecutor:
    """Handles one message of the blob trigger queue: receipt, lease, invocation, completion."""

    def __init__(self, functions: list[BlobFunction], hosts_blobs: Any, host_id: str) -> None:
        self.functions = {fn.function_id: fn for fn in functions}
        self.hosts_blobs = hosts_blobs
        self.host_id = host_id

    async def handle(self, body: bytes) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

        message = json.loads(body)
        fn = self.functions.get(str(message.get("FunctionId")))
        if fn is None:
            log.warning("Blob trigger message for unknown function %s ignored", message.get("FunctionId"))
            return
        container, blob_name = message["ContainerName"], message["BlobName"]
        etag = quoted_etag(message["ETag"])
        blob = fn.blobs.get_blob_client(container, blob_name)
        try:
            properties = await blob.get_blob_properties()
        except ResourceNotFoundError:
            return  # the blob is gone: nothing to do, as in the host
        if quoted_etag(properties.etag) != etag:
            return  # a newer version exists; the scan queues that one
        receipt = self.hosts_blobs.get_blob_client(
            HOSTS_CONTAINER, receipt_name(self.host_id, fn.function_id, etag, container, blob_name))
        try:
            existing = await receipt.get_blob_properties()
            if "Incomplete" not in (existing.metadata or {}):
                return  # already processed
        except ResourceNotFoundError:
            try:
                await receipt.upload_blob(b"", metadata={"Incomplete": "Incomplete"}, overwrite=False)
            except ResourceNotFoundError:
                try:
                    await self.hosts_blobs.create_container(HOSTS_CONTAINER)
                except ResourceExistsError:
                    pass
                await receipt.upload_blob(b"", metadata={"Incomplete": "Incomplete"}, overwrite=False)
            except ResourceExistsError:
                pass
        try:
            lease = await receipt.acquire_lease(lease_duration=RECEIPT_LEASE_SECONDS)
        except (ResourceExistsError, HttpResponseError) as exc:
            # Another host holds the receipt's lease and runs this version: leave it to that host, as the
            # host's BlobQueueTriggerExecutor does (the message counts as handled).
            log.info("Blob %s/%s is being processed elsewhere (%s)", container, blob_name, exc.reason or exc)
            return
        try:
            content = await (await blob.download_blob()).readall()
            path = f"{container}/{blob_name}"
            props = {"ContentLength": properties.size, "Length": properties.size, "ETag": properties.etag,
                     "ContentType": properties.content_settings.content_type,
                     "LastModified": properties.last_modified.isoformat() if properties.last_modified else None}
            metadata = {
                "BlobTrigger": meta.Datum(path, "string"),
                "Uri": meta.Datum(blob.url, "string"),
                "Properties": meta.Datum(json.dumps(props), "json"),
                "Metadata": meta.Datum(json.dumps(dict(properties.metadata or {})), "json"),
            }
            datum = meta.Datum(content.decode("utf-8"), "string") if fn.as_text else meta.Datum(content, "bytes")
            data = {**(fn.pattern.match(blob_name) or {}), "BlobTrigger": path, "Uri": blob.url}
            await fn.invoke(datum, metadata, data)
            await receipt.set_blob_metadata({}, lease=lease)
        finally:
            try:
                await lease.release()
            except Exception as exc:
                log.debug("Releasing the receipt lease failed: %s", exc)
