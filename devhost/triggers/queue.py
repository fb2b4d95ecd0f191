"""The queue trigger on Azure Storage queues, as the host's queue extension runs it.

Settings come from host.json ``extensions.queues`` with the host's defaults (``maxPollingInterval`` is
2 s, the host's value in the Development environment). Messages are base64 unless ``messageEncoding``
is ``none``. A message that fails ``maxDequeueCount`` times is copied to ``<queue>-poison`` and
deleted; one that failed earlier is made visible again after ``visibilityTimeout``. Polling backs off
from 100 ms to ``maxPollingInterval`` while the queue is empty; a write by this process's own output
bindings wakes the listener at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.functions import meta

from devhost.bindings.expressions import json_properties
from devhost.config import parse_timespan
from devhost.errors import ConfigError

log = logging.getLogger("devhost.triggers.queue")

MIN_POLLING_INTERVAL = 0.1  # the host's QueuePollingIntervals.Minimum
RECEIVE_VISIBILITY = 600  # the host takes messages for 10 minutes


@dataclass(frozen=True)
class QueueSettings:
    """host.json ``extensions.queues``."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: float = 2.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    base64: bool = True

    @classmethod
    def from_host_json(cls, host_json: Mapping[str, Any]) -> QueueSettings:
        section: Mapping[str, Any] = {}
        extensions = next((v for k, v in host_json.items() if k.lower() == "extensions"), None) or {}
        if isinstance(extensions, Mapping):
            section = next((v for k, v in extensions.items() if k.lower() == "queues"), None) or {}
        get = {k.lower(): v for k, v in section.items()}.get
        try:
            batch = int(get("batchsize", 16))
            threshold = get("newbatchthreshold")
            settings = cls(
                batch_size=batch,
                new_batch_threshold=int(threshold) if threshold is not None else batch // 2,
                max_polling_interval=parse_timespan(get("maxpollinginterval", 2.0)),
                visibility_timeout=parse_timespan(get("visibilitytimeout", 0.0)),
                max_dequeue_count=int(get("maxdequeuecount", 5)),
                base64=str(get("messageencoding", "base64")).lower() != "none",
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"host.json extensions.queues: {exc}") from None
        if not 1 <= settings.batch_size <= 32:
            raise ConfigError("host.json extensions.queues.batchSize must be between 1 and 32")
        if settings.max_dequeue_count < 1:
            raise ConfigError("host.json extensions.queues.maxDequeueCount must be at least 1")
        if settings.max_polling_interval < MIN_POLLING_INTERVAL:
            raise ConfigError("host.json extensions.queues.maxPollingInterval must be at least 00:00:00.1")
        return settings


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the trigger sees it: the decoded body and the host's trigger metadata."""

    id: str
    body: bytes
    dequeue_count: int
    insertion_time: datetime | None
    expiration_time: datetime | None
    next_visible_time: datetime | None
    pop_receipt: str

    @property
    def text(self) -> str | None:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def datum(self) -> meta.Datum:
        text = self.text
        return meta.Datum(text, "string") if text is not None else meta.Datum(self.body, "bytes")

    def metadata(self) -> dict[str, meta.Datum]:
        """Trigger metadata as ``QueueMessageInConverter`` reads it."""
        def when(moment: datetime | None) -> meta.Datum:
            return meta.Datum(json.dumps(moment.isoformat() if moment else None), "json")

        return {
            "Id": meta.Datum(self.id, "string"),
            "DequeueCount": meta.Datum(str(self.dequeue_count), "json"),
            "InsertionTime": when(self.insertion_time),
            "ExpirationTime": when(self.expiration_time),
            "NextVisibleTime": when(self.next_visible_time),
            "PopReceipt": meta.Datum(self.pop_receipt, "string"),
            "QueueTrigger": self.datum(),
        }

    def binding_data(self) -> dict[str, Any]:
        """What ``{queueTrigger}``, ``{id}``, ``{DequeueCount}`` and JSON properties resolve to."""
        def when(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {
            **json_properties(self.body),
            "QueueTrigger": self.text if self.text is not None else "",
            "Id": self.id,
            "DequeueCount": self.dequeue_count,
            "InsertionTime": when(self.insertion_time),
            "ExpirationTime": when(self.expiration_time),
            "NextVisibleTime": when(self.next_visible_time),
            "PopReceipt": self.pop_receipt,
        }


Handler = Callable[[ReceivedMessage], Awaitable[None]]


class QueueListener:
    """Takes messages from one queue in batches and hands each to ``handler``; failures count."""

    def __init__(self, queue: Any, poison: Any, settings: QueueSettings, handler: Handler, *, label: str) -> None:
        self.queue = queue
        self.poison = poison
        self.settings = settings
        self.handler = handler
        self.label = label
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._poll(), name=f"queue listener {self.label}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        # Messages in flight finish; their results are recorded (a cancelled one simply reappears later).
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=5)

    async def _poll(self) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        delay = MIN_POLLING_INTERVAL
        while True:
            received = 0
            self._wake.clear()  # before receiving: a write during the receive still wakes the next wait
            if len(self._in_flight) <= self.settings.new_batch_threshold:
                try:
                    pager = self.queue.receive_messages(
                        messages_per_page=self.settings.batch_size, visibility_timeout=RECEIVE_VISIBILITY,
                        max_messages=self.settings.batch_size)
                    async for message in pager:
                        received += 1
                        task = asyncio.create_task(self._process(message))
                        self._in_flight.add(task)
                        task.add_done_callback(self._in_flight.discard)
                except ResourceNotFoundError:
                    pass  # the queue does not exist yet: as good as empty
                except Exception as exc:
                    log.warning("Polling queue '%s' failed: %s", self.label, exc)
            if received:
                delay = MIN_POLLING_INTERVAL
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
                delay = MIN_POLLING_INTERVAL
            except TimeoutError:
                delay = min(delay * 2, self.settings.max_polling_interval)

    async def _process(self, message: Any) -> None:
        if message.dequeue_count > self.settings.max_dequeue_count:
            await self._to_poison(message)
            return
        keeper = asyncio.create_task(self._keep_invisible(message))
        try:
            succeeded = await self._handle(message)
        finally:
            keeper.cancel()
        try:
            if succeeded:
                await self.queue.delete_message(message)
            elif message.dequeue_count >= self.settings.max_dequeue_count:
                await self._to_poison(message)
            else:
                await self.queue.update_message(message, visibility_timeout=int(self.settings.visibility_timeout))
        except Exception as exc:
            log.warning("Completing message %s of queue '%s' failed: %s", message.id, self.label, exc)

    async def _handle(self, message: Any) -> bool:
        try:
            body = self._decode(message.content)
            await self.handler(ReceivedMessage(
                id=message.id, body=body, dequeue_count=message.dequeue_count,
                insertion_time=message.inserted_on, expiration_time=message.expires_on,
                next_visible_time=message.next_visible_on, pop_receipt=message.pop_receipt))
        except Exception as exc:
            if type(exc).__name__ != "FunctionInvocationError":  # the worker has logged those
                log.error("Processing message %s from queue '%s' failed: %s", message.id, self.label, exc)
            return False
        return True

    async def _keep_invisible(self, message: Any) -> None:
        """Renew the message's invisibility while the function runs, as the host does halfway through."""
        while True:
            await asyncio.sleep(RECEIVE_VISIBILITY / 2)
            try:
                receipt = await self.queue.update_message(message, visibility_timeout=RECEIVE_VISIBILITY)
                message.pop_receipt = receipt.pop_receipt
            except Exception as exc:
                log.warning("Renewing message %s of queue '%s' failed: %s", message.id, self.label, exc)
                return

    def _decode(self, content: Any) -> bytes:
        raw = content if isinstance(content, bytes) else str(content).encode()
        if not self.settings.base64:
            return raw
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the message is not valid base64, which extensions.queues.messageEncoding "
                             "(default base64) requires") from None

    async def _to_poison(self, message: Any) -> None:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        name = self.poison.queue_name
        log.warning("Message has reached MaxDequeueCount of %d. Moving message to queue '%s'.",
                    self.settings.max_dequeue_count, name)
        try:
            await self.poison.send_message(message.content)
        except ResourceNotFoundError:
            try:
                await self.poison.create_queue()
            except ResourceExistsError:
                pass
            await self.poison.send_message(message.content)
        await self.queue.delete_message(message)
