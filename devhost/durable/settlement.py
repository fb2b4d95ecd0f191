"""Settling received messages: complete (delete), abandon with a delay, renew a lease.

Why devhost is fast while storage stays the truth lives here. A message devhost writes for itself is
written already leased to this process (invisible) and handed to its consumer in memory; completing it
deletes the queue copy with the receipt the write returned, and should devhost die first, the lease runs
out and the copy is received as usual. An activity's result is not queued at all: its work item stays
leased until the orchestration has checkpointed the result (see ``InMemoryReply``).

A message is settled by one of three implementations:
- ``QueueSettlement``: a message with a queue copy (received, or written here and still being written:
  its ``written`` future is awaited first; when the write failed there is nothing to settle);
- ``InMemoryReply``: a message that exists only in memory; settling it settles the work item it answers;
- ``InMemoryClientEvent``: a client's event for an instance this process runs, held in memory until the
  history rows that record it are stored (then the client is answered), or written to its queue after all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import timedelta

from devhost.durable.history import Event, utcnow
from devhost.durable.taskhub.base import InMemorySettlement, OutboundMessage, ReceivedMessage, TaskHub
from devhost.durable.taskhub.codec import next_sequence_number

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

    async def abandon(self, delay: float) -> None:
        # Nothing to write: with its renewal stopped, the leased work item comes back by itself.
        self.renewal.cancel()

    def recorded(self) -> bool:
        return False  # the work item goes once the whole checkpoint is stored, with the other consumed messages


class InMemoryClientEvent:
    """A client's event (raise, terminate, suspend, resume) handed to its instance's inbox instead of a queue.

    The client is answered once ``stored`` is done: when the history rows of the checkpoint that consumed
    the event are stored (``recorded``), or when the event was written to its control queue after all
    (its episode could not use it yet, or took too long). Either way storage holds it before the client
    hears so, as when the provider answers after writing the message. An episode that fails after its
    history rows were stored (its Instances row not yet written) still writes the event to the queue: that
    copy, recognised as already in history when it comes back, is what brings the row up to date.
    """

    def __init__(self, hub: TaskHub, message: OutboundMessage) -> None:
        self.hub = hub
        self.message = message
        self.stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.checkpointed = False  # the whole checkpoint that consumed it is stored, row included
        self.queued = False
        self._late_write: asyncio.Task[None] | None = None

    async def complete(self) -> None:
        self.checkpointed = True
        self.recorded()

    def recorded(self) -> bool:
        # History holds the event: the client hears so now, ahead of the Instances row's merge, which puts
        # the new state in the row cache before any request that follows the answer is read.
        if self.stored.done():
            return False
        self.stored.set_result(None)
        return True

    async def abandon(self, delay: float) -> None:
        if not self.checkpointed:
            await self.write(delay)

    async def write(self, delay: float = 0.0) -> None:
        """Write the event to its control queue once (visible after ``delay`` seconds); a copy that history
        already holds is recognised and dropped when it arrives."""
        if self.queued:
            return
        self.queued = True
        visible_at = None if delay <= 0 else utcnow() + timedelta(seconds=delay)
        try:
            await self.hub.send([replace(self.message, visible_at=visible_at)])
        except Exception as exc:
            self.queued = False
            if not self.stored.done():
                self.stored.set_exception(exc)  # the client that waits for it hears of the failure
            return
        if not self.stored.done():
            self.stored.set_result(None)

    async def until_stored(self, patience: float) -> None:
        """Wait until storage holds the event; after ``patience`` seconds, write it to the queue instead."""
        late = asyncio.get_running_loop().call_later(patience, self._write_late)
        try:
            # Awaited as it is, not through wait_for and shield: the waiting client then resumes in the very
            # loop iteration after ``recorded``, ahead of the rest of that checkpoint. Should this wait be
            # cancelled (devhost stopping), so is ``stored``; every settlement checks ``done()`` first.
            await self.stored
        finally:
            late.cancel()

    def _write_late(self) -> None:
        if not self.stored.done():
            self._late_write = asyncio.ensure_future(self.write())


def in_memory_message(queue: str, message_id: str, event: Event, instance_id: str, execution_id: str | None,
                      settlement: InMemorySettlement) -> ReceivedMessage:
    """A message handed to its consumer with no queue copy. It carries whole-second insertion time and the
    envelopes' sequence counter, as a queued copy would, so a batch mixing both keeps creation order."""
    return ReceivedMessage(
        queue=queue, message_id=message_id, receipt="", dequeue_count=0,
        inserted_on=utcnow().replace(microsecond=0), event=event, instance_id=instance_id,
        execution_id=execution_id, sequence_number=next_sequence_number(), in_memory=settlement,
    )


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
                await message.in_memory.abandon(delay)
            else:
                await self.queue.abandon(message, delay)

        await asyncio.gather(*(abandon(m) for m in messages))
