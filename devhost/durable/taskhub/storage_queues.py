"""The task hub's queues in Azure Storage: ``{hub}-control-NN`` and ``{hub}-workitems`` (spec B.4).

Messages are the provider's JSON envelopes; one too large for a queue goes to the large-messages
container and the queue holds a wrapper naming the blob (B.4.3).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError

from devhost import ids
from devhost.durable.history import utcnow
from devhost.durable.taskhub import codec, keys, rest
from devhost.durable.taskhub.base import WORK_ITEM_QUEUE, OutboundMessage, ReceivedMessage
from devhost.durable.taskhub.large_payloads import MAX_QUEUE_MESSAGE_BYTES, BlobPayloadStore, message_blob_name
from devhost.durable.taskhub.storage_http import QueueEndpoint
from devhost.errors import TaskHubError

log = logging.getLogger("devhost.taskhub")


def _plainly_inline(text: str) -> bool:
    """Raw JSON with a TaskMessage: decodable at once. Anything else may be (Base64 of) a blob wrapper."""
    return text.startswith("{") and '"TaskMessage"' in text


def _utf8_length_exceeds(text: str, limit: int) -> bool:
    if len(text) * 4 <= limit:  # even 4-byte characters throughout would fit
        return False
    if text.isascii():
        return len(text) > limit
    return len(text.encode("utf-8", "surrogatepass")) > limit


def _log_failed_put(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("Writing a message failed: %s", future.exception())


class StorageQueues:
    """Send, receive, delete and re-hide messages on one hub's control and work-item queues."""

    def __init__(self, hub_name: str, partition_count: int, endpoints: dict[str, QueueEndpoint],
                 payloads: BlobPayloadStore) -> None:
        self.hub_name = hub_name
        self.partition_count = partition_count
        self.control_names = [keys.control_queue_name(hub_name, i) for i in range(partition_count)]
        self.work_items_name = keys.work_item_queue_name(hub_name)
        self.endpoints = endpoints  # by queue name: every control queue and the work-item queue
        self.payloads = payloads

    def control_queue_name(self, instance_id: str) -> str:
        return self.control_names[keys.partition_index(instance_id, self.partition_count)]

    def resolve(self, queue: str) -> str:
        """The queue's full name; ``WORK_ITEM_QUEUE`` stands for the work-item queue."""
        name = self.work_items_name if queue == WORK_ITEM_QUEUE else queue
        if name not in self.endpoints:
            raise TaskHubError(f"{queue!r} is not a queue of task hub {self.hub_name}")
        return name

    async def send(self, messages: Sequence[OutboundMessage]) -> None:
        """Send every message to its queue (concurrently); delayed ones start invisible."""
        if not messages:
            return
        now = utcnow()
        if len(messages) == 1:
            await self._send_one(messages[0], now)
        else:
            await asyncio.gather(*(self._send_one(message, now) for message in messages))

    def write_leased(self, messages: Sequence[OutboundMessage], lease: float) -> list[ReceivedMessage]:
        """Send messages already leased to this process (hidden ``lease`` s); returns at once.

        Each message's ``written`` completes when the queue has it (and then holds its receipt). The
        sender hands them to its own consumer in memory; the queue copy is what survives a crash (it
        becomes visible when the lease runs out and is then received as usual).
        """
        now = utcnow()
        held: list[ReceivedMessage] = []
        for message in messages:
            queue, activity_id, envelope, text = self._encode(message)
            received = ReceivedMessage(
                queue=queue, message_id=f"pending:{activity_id}", receipt="", dequeue_count=0, inserted_on=now,
                event=message.event, instance_id=message.instance_id, execution_id=message.execution_id,
                sequence_number=envelope.get("SequenceNumber") or 0, episode=message.episode,
                activity_id=activity_id, raw=envelope,
            )
            received.written = asyncio.ensure_future(self._put_held(received, message, text, now, lease))
            received.written.add_done_callback(_log_failed_put)
            held.append(received)
        return held

    async def _put_held(self, received: ReceivedMessage, message: OutboundMessage, text: str, now: datetime,
                        lease: float) -> None:
        item = await self._put(message, received.queue, received.activity_id, text, now, lease)
        received.message_id, received.receipt, received.inserted_on = (
            item.message_id, item.pop_receipt, item.inserted_on)

    async def _send_one(self, message: OutboundMessage, now: datetime) -> None:
        queue, activity_id, _, text = self._encode(message)
        await self._put(message, queue, activity_id, text, now, None)

    def _encode(self, message: OutboundMessage) -> tuple[str, str, dict[str, Any], str]:
        queue = self.work_items_name if message.to_work_items else self.control_queue_name(message.instance_id)
        activity_id = ids.uuid4_text()
        envelope = codec.build_envelope(message, activity_id, codec.next_sequence_number())
        return queue, activity_id, envelope, codec.dumps_envelope(envelope)

    async def _put(self, message: OutboundMessage, queue: str, activity_id: str, text: str, now: datetime,
                   lease: float | None) -> rest.QueueItem:
        if _utf8_length_exceeds(text, MAX_QUEUE_MESSAGE_BYTES):
            blob_name = message_blob_name(
                message.instance_id, activity_id, codec.event_type_name(message.event["EventType"])
            )
            envelope = codec.parse_message_text(text)
            await rest.guard("uploading a large message", self.payloads.upload(blob_name, text))
            text = codec.dumps_envelope(codec.wrapper_envelope(envelope, blob_name))
        delay = 0
        if message.visible_at is not None:
            delay = codec.visibility_seconds((message.visible_at - now).total_seconds())
        if lease:
            delay = max(delay, max(1, codec.visibility_seconds(lease)))
        return await rest.guard(f"sending to {queue}", rest.put_message(self.endpoints[queue], text, delay))

    async def receive(self, queue: str, max_messages: int, visibility_timeout: float) -> list[ReceivedMessage]:
        """Up to ``max_messages`` (≤ 32) visible messages, hidden for ``visibility_timeout`` s; one call.

        The service accepts 1 s to 7 days of visibility on receive, so shorter values become 1 s.
        """
        name = self.resolve(queue)
        count = max(1, min(32, max_messages))
        visibility = max(1, codec.visibility_seconds(visibility_timeout))
        items = await rest.guard(
            f"receiving from {name}", rest.get_messages(self.endpoints[name], count, visibility)
        )
        if not items:
            return []
        if all(_plainly_inline(item.text) for item in items):
            # The common case decodes inline, without a task per message.
            decoded = [self._decode(name, item, self._parse(name, item)) for item in items]
        else:
            envelopes = await asyncio.gather(*(self._envelope(name, item) for item in items))
            decoded = [self._decode(name, i, e) for i, e in zip(items, envelopes, strict=True)]
        return [message for message in decoded if message is not None]

    @staticmethod
    def _parse(queue: str, item: rest.QueueItem) -> dict[str, Any] | None:
        try:
            return codec.parse_message_text(item.text)
        except ValueError as exc:
            log.error("Cannot parse message %s in %s: %s", item.message_id, queue, exc)
            return None

    async def _envelope(self, queue: str, item: rest.QueueItem) -> dict[str, Any] | None:
        """The message's envelope, loaded from its blob when the queue holds only a wrapper (B.4.3)."""
        envelope = self._parse(queue, item)
        if envelope is None or "TaskMessage" in envelope or not envelope.get("CompressedBlobName"):
            return envelope
        try:
            return codec.parse_message_text(await self.payloads.download(envelope["CompressedBlobName"]))
        except (ValueError, AzureError) as exc:
            log.error("Cannot load large message %s in %s: %s", item.message_id, queue, exc)
            return None

    @staticmethod
    def _decode(queue: str, item: rest.QueueItem, envelope: dict[str, Any] | None) -> ReceivedMessage | None:
        if envelope is None:
            return None
        try:
            return codec.received_message(
                queue, item.message_id, item.pop_receipt, item.dequeue_count, item.inserted_on, envelope
            )
        except (ValueError, KeyError, TypeError) as exc:
            # Left in the queue: it reappears after the visibility timeout and can be inspected there.
            log.error("Cannot decode message %s in %s: %s", item.message_id, queue, exc)
            return None

    async def delete(self, message: ReceivedMessage) -> None:
        """Delete a received message; a message already gone (or re-leased by someone else) is ignored."""
        try:
            await rest.delete_message(self.endpoints[self.resolve(message.queue)], message.message_id,
                                      message.receipt)
        except rest.StorageCallError as exc:
            # 404 MessageNotFound, or 400 PopReceiptMismatch when another receive re-leased it: as in
            # DTFx, only a warning-worthy race, never a reason to fail the episode.
            if exc.status != 404 and exc.code != "PopReceiptMismatch":
                raise TaskHubError(f"deleting message {message.message_id} failed: {exc}") from exc
            log.debug("Message %s was already deleted or re-leased", message.message_id)
        except AzureError as exc:
            raise TaskHubError(f"deleting message {message.message_id} failed: {exc}") from exc

    async def set_visibility(self, message: ReceivedMessage, seconds: float) -> None:
        """Hide the message for ``seconds`` more; its ``receipt`` is replaced in place.

        Raises ``TaskHubError`` when the receipt is stale (the lease was lost).
        """
        endpoint = self.endpoints[self.resolve(message.queue)]
        try:
            receipt = await rest.update_visibility(
                endpoint, message.message_id, message.receipt, codec.visibility_seconds(seconds)
            )
        except (rest.StorageCallError, AzureError) as exc:
            raise TaskHubError(f"updating message {message.message_id} failed: {exc}") from exc
        message.receipt = receipt
