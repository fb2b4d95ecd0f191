"""Settling received messages: complete (delete), abandon with a delay, renew a lease.

Why devhost is fast while storage stays the truth lives here. A message devhost writes for itself is
written already leased to this process (invisible) and handed to its consumer in memory; completing it
deletes the queue copy with the receipt the write returned, and should devhost die first, the lease runs
out and the copy is received as usual. An activity's result is not queued at all: its work item stays
leased until the orchestration has checkpointed the result (see ``InMemoryReply``).

A message is settled by one of two implementations:
- ``QueueSettlement``: a message with a queue copy (received, or written here and still being written:
  its ``written`` future is awaited first; when the write failed there is nothing to settle);
- ``InMemoryReply``: a message that exists only in memory; settling it settles the work item it answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from devhost.durable.taskhub.base import ReceivedMessage, TaskHub

log = logging.getLogger("devhost.durable")


async def until_stored(messages: Iterable[ReceivedMessage]) -> None:
    """Return once the queues hold every one of ``messages`` that this process is still writing."""
    await asyncio.gather(*(m.written for m in messages if m.written is not None))


class QueueSettlement:
    """Settles messages that have a queue copy, through their receipt."""

    def __init__(self, hub: TaskHub) -> None:
        self.hub = hub

    async def complete(self, message: ReceivedMessage) -> None:
        if not await message.wait_written():
            return
        try:
            await self.hub.delete(message)
        except Exception as exc:  # a message re-received meanwhile has a new receipt: its copy will be handled
            log.debug("Could not delete message %s: %s", message.message_id, exc)

    async def abandon(self, message: ReceivedMessage, delay: float) -> None:
        if not await message.wait_written():
            return
        try:
            await self.hub.set_visibility(message, delay)
        except Exception as exc:
            log.debug("Could not reschedule message %s: %s", message.message_id, exc)

    async def keep_leased(self, message: ReceivedMessage, visibility: float) -> None:
        """Renew a long activity's lease so its message does not reappear while it still runs."""
        if not await message.wait_written():
            return
        while True:
            await asyncio.sleep(max(visibility / 2, 0.5))
            try:
                await self.hub.set_visibility(message, visibility)
            except Exception as exc:
                log.debug("Could not renew message %s: %s", message.message_id, exc)
                return


class InMemoryReply:
    """An activity's result handed to its orchestration in memory; its work item stands in for it.

    The work item stays in its queue (its lease renewed) until the orchestration has checkpointed the
    result; only then is it deleted. After a crash the work item comes back and the activity runs again,
    which is the guarantee a queued reply would give, for one write and one delete less.
    """

    def __init__(self, work_item: ReceivedMessage, renewal: asyncio.Future[None], queue: QueueSettlement) -> None:
        self.work_item = work_item
        self.renewal = renewal
        self.queue = queue

    async def complete(self) -> None:
        self.renewal.cancel()
        await self.queue.complete(self.work_item)

    async def abandon(self) -> None:
        # Nothing to write: with its renewal stopped, the leased work item comes back by itself.
        self.renewal.cancel()


class Settler:
    """Completes and abandons messages, each through the implementation its kind needs."""

    def __init__(self, hub: TaskHub) -> None:
        self.queue = QueueSettlement(hub)

    async def complete(self, message: ReceivedMessage) -> None:
        if message.in_memory is not None:
            await message.in_memory.complete()
        else:
            await self.queue.complete(message)

    async def complete_all(self, messages: Sequence[ReceivedMessage]) -> None:
        await asyncio.gather(*(self.complete(m) for m in messages))

    async def abandon_all(self, messages: Sequence[ReceivedMessage], delay: float) -> None:
        async def abandon(message: ReceivedMessage) -> None:
            if message.in_memory is not None:
                await message.in_memory.abandon()
            else:
                await self.queue.abandon(message, delay)

        await asyncio.gather(*(abandon(m) for m in messages))
