"""Poison messages: a message whose handling fails again and again is set aside instead of retried forever.

DurableTask.AzureStorage backs a failing message off by 2^DequeueCount seconds up to 10 minutes
(``TaskHubQueue.AbandonMessageAsync``) and, from the dequeue that reaches that cap (the 10th), logs
``PoisonMessageDetected`` on every further attempt, but keeps retrying it every 10 minutes for ever.
devhost follows that threshold and then does what the provider only warns about: it copies the message,
with the reason, to the queue ``{hub}-poison`` (where Azure Storage Explorer or any queue client finds
it), fails its instance with a message that says why (an ``ExecutionCompleted`` with status Failed in
history, and the Instances row), and deletes the original.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from devhost.durable.history import ACTIVE_STATUSES, EventType, OrchestrationStatus, new_event, utcnow
from devhost.durable.taskhub.base import InstanceUpdate, ReceivedMessage, TaskHub

log = logging.getLogger("devhost.durable")

# The dequeue at which the provider's back-off (2^n s) reaches its 600 s cap and it logs the message as poison.
POISON_DEQUEUE_COUNT = 10
PutText = Callable[[str, str], Awaitable[None]]  # (queue name, message text)


def poison_queue_name(hub_name: str) -> str:
    return f"{hub_name.lower()}-poison"


def is_poison(messages: Sequence[ReceivedMessage], threshold: int = POISON_DEQUEUE_COUNT) -> bool:
    """Whether a batch that just failed has been tried ``threshold`` times (messages in memory never are)."""
    return any(m.dequeue_count >= threshold for m in messages)


def poison_record(message: ReceivedMessage, reason: str) -> dict[str, Any]:
    """What is kept of a poison message: enough to see what it was, why it failed and to send it again."""
    return {"reason": reason, "queue": message.queue, "messageId": message.message_id,
            "dequeueCount": message.dequeue_count, "instanceId": message.instance_id,
            "executionId": message.execution_id, "insertedOn": message.inserted_on.isoformat(),
            "message": message.raw or {"event": message.event}}


@dataclass
class PoisonHandler:
    """Sets poison messages aside and fails their instances; ``put`` writes a text message to a queue."""

    hub: TaskHub
    put: PutText | None = None
    threshold: int = POISON_DEQUEUE_COUNT

    async def set_aside(self, instance_id: str, messages: Sequence[ReceivedMessage], reason: str) -> None:
        """Copy ``messages`` to the poison queue and fail ``instance_id``; the caller deletes the originals."""
        queue = poison_queue_name(self.hub.name)
        for message in messages:
            kept = "not kept: no poison queue"
            if self.put is not None:
                try:
                    await self.put(queue, json.dumps(poison_record(message, reason), default=str))
                    kept = f"copied to queue {queue}"
                except Exception as exc:
                    kept = f"could not be copied to queue {queue}: {exc}"
            log.error("Message %s of instance '%s' failed %d times and is set aside (%s): %s",
                      message.message_id, instance_id, message.dequeue_count, kept, reason)
        await self.fail_instance(instance_id, f"devhost set aside a message of this instance after it failed "
                                              f"{max(m.dequeue_count for m in messages)} times: {reason}")

    async def fail_instance(self, instance_id: str, why: str) -> None:
        """Complete the instance as Failed, in history and in its Instances row, if it is still active."""
        try:
            row = await self.hub.get_instance(instance_id, fetch_input=False, fetch_output=False)
        except Exception as exc:
            log.error("Instance '%s' could not be failed (its row cannot be read: %s)", instance_id, exc)
            return
        if row is None or row.runtime_status not in ACTIVE_STATUSES:
            return
        now = utcnow()
        try:
            page = await self.hub.load_history(instance_id)
            if page.events:
                completion = new_event(EventType.ExecutionCompleted, timestamp=now,
                                       OrchestrationStatus=int(OrchestrationStatus.Failed),
                                       Result=why, FailureDetails=None)
                await self.hub.append_history(instance_id, page.execution_id or row.execution_id,
                                              len(page.events), [completion], page.etag)
        except Exception as exc:  # the history may be what cannot be written; the row still says why
            log.warning("History of instance '%s' could not record the failure: %s", instance_id, exc)
        try:
            await self.hub.update_instance(instance_id, InstanceUpdate(
                runtime_status=OrchestrationStatus.Failed, output=why, completed_time=now, last_updated_time=now))
        except Exception as exc:
            log.error("Instance '%s' could not be failed: %s", instance_id, exc)


MAX_QUEUE_TEXT = 60_000  # a queue message holds 64 KiB; the record is cut, never refused


def storage_queue_writer(connection_string: str) -> PutText:
    """A ``put`` that creates the poison queue on first use and writes a (possibly shortened) record to it."""
    created: set[str] = set()

    async def put(queue: str, text: str) -> None:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.queue.aio import QueueClient

        async with QueueClient.from_connection_string(connection_string, queue) as client:
            if queue not in created:
                try:
                    await client.create_queue()
                except ResourceExistsError:
                    pass
                created.add(queue)
            await client.send_message(text if len(text) <= MAX_QUEUE_TEXT else text[:MAX_QUEUE_TEXT])

    return put
