"""The durable engine: takes messages from the control queues into per-instance inboxes and runs episodes.

Queues stay the source of truth, but a message devhost writes for itself never waits for a poll: it is
written already leased to this process and handed to its consumer in memory (``settlement`` says how it
is then settled). Polling only picks up what other processes write, timers as they come due, and what a
crashed run left behind. Activities run in ``activity_workers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from devhost import ids, spans
from devhost.config import DurableSettings
from devhost.durable.activity_workers import ActivityWorkers
from devhost.durable.entities.ids import is_entity
from devhost.durable.entities.runner import EntityRunner
from devhost.durable.history import utcnow
from devhost.durable.orchestration import EpisodeRunner
from devhost.durable.poison import PoisonHandler, is_poison
from devhost.durable.replay import FunctionCatalog
from devhost.durable.settlement import InMemoryClientEvent, Settler, in_memory_message, until_stored
from devhost.durable.taskhub.base import OutboundMessage, ReceivedMessage, TaskHub
from devhost.errors import CheckpointConflict

if TYPE_CHECKING:
    from devhost.storage_health import StorageHealth

log = logging.getLogger("devhost.durable")

MAX_BUFFERED_MESSAGES = 2000  # receive no more while this many wait for their instance's episode
# How long a client's event may wait in memory for the checkpoint that records it before it is written
# to its queue after all (only a stalled or stopping engine takes that long).
CLIENT_EVENT_PATIENCE = 5.0


class DurableWorker(Protocol):
    orchestrators: dict[str, Any]
    activities: dict[str, Any]
    entities: dict[str, Any]

    async def invoke_orchestrator(self, name: str, context_json: str) -> str: ...
    async def invoke_activity(self, name: str, input_json: str | None) -> str | None: ...
    async def invoke_entity(self, name: str, context_json: str) -> str: ...


@dataclass
class InstanceInbox:
    """Messages of one instance waiting for (or in) its episode; one episode per instance at a time."""

    pending: list[ReceivedMessage] = field(default_factory=list)
    running: bool = False


class Engine:
    def __init__(self, hub: TaskHub, worker: DurableWorker, settings: DurableSettings) -> None:
        self.hub = hub
        self.worker = worker
        self.settings = settings
        self.settler = Settler(hub)
        self.activities = ActivityWorkers(hub, worker, self.catalog, settings, self.settler,
                                          receive=self._receive, idle=self._wait_for_wake, reply=self._enqueue)
        self.runner = EpisodeRunner(
            hub, worker, self.catalog, store_inputs=settings.store_inputs_in_history,
            keep_history=settings.extended_sessions, send=self.send, post=self.post, finished=self.finished,
            ahead=self.activities, ahead_window=settings.run_ahead_window,
            ahead_limit=settings.max_concurrent_activities, ahead_chained=settings.run_ahead_chained,
        )
        self.entities = EntityRunner(hub, worker, self.settler, self.send)  # batches for @name@key instances
        self.inboxes: dict[str, InstanceInbox] = {}
        self.buffered = 0
        self.drained = asyncio.Event()
        self.wake: dict[str, asyncio.Event] = {}
        self.poll_slots: dict[str, float] = {}  # each queue's idle polls' place in the interval, 0 <= slot < 1
        self.tasks: list[asyncio.Task[None]] = []
        self.inflight: set[asyncio.Future[None]] = set()
        self.orchestration_slots = asyncio.Semaphore(settings.max_concurrent_orchestrations)
        self.timers: dict[str, list[ReceivedMessage]] = {}  # pending timer messages, by instance
        self.instance_listeners: dict[str, list[Callable[[], None]]] = {}
        self.stopping = False
        self.health: StorageHealth | None = None  # set by the host: outages are logged there, once
        self.poison = PoisonHandler(hub)

    def catalog(self) -> FunctionCatalog:
        return FunctionCatalog(self.worker.orchestrators.keys(), self.worker.activities.keys(),
                               self.worker.entities.keys())

    @property
    def lease(self) -> float:
        return self.settings.control_queue_visibility_timeout

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        queues = [*self.hub.control_queue_names, self.hub.work_item_queue_name]
        self.wake = {q: asyncio.Event() for q in queues}
        self.poll_slots = {q: i / len(queues) for i, q in enumerate(queues)}
        for queue in self.hub.control_queue_names:
            self.tasks.append(asyncio.create_task(self._poll_control(queue), name=f"poll {queue}"))
        self.tasks.extend(self.activities.tasks(self.wake[self.hub.work_item_queue_name]))

    async def stop(self, grace: float = 5.0) -> None:
        """Stop receiving, give running work ``grace`` seconds, then cancel it (its messages come back)."""
        self.stopping = self.activities.stopping = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.inflight:
            _, pending = await asyncio.wait(self.inflight, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.activities.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    # -- sending and delivering --------------------------------------------------------------------
    def post(self, messages: Sequence[OutboundMessage]) -> list[ReceivedMessage]:
        """Write ``messages`` and hand the immediate ones to their consumers here, without waiting.

        Consumers may start on a message before the queue has it: what they produce is only committed
        behind the episode or reply that depends on it, and completing a message waits for its write.
        Timer messages stay invisible until due; the poller is woken for them, and their receipts are
        kept to delete the timers an instance leaves behind.
        """
        now = utcnow()
        immediate = [m for m in messages if m.visible_at is None or m.visible_at <= now]
        delayed = [m for m in messages if m.visible_at is not None and m.visible_at > now]
        held = self.hub.write_leased(immediate, self.lease) if immediate else []
        timers = self.hub.write_leased(delayed, 0.0) if delayed else []
        loop = asyncio.get_running_loop()
        for message, timer in zip(delayed, timers, strict=True):
            if not is_entity(message.instance_id):  # an entity never finishes: its timers are never dropped
                self.timers.setdefault(message.instance_id, []).append(timer)
            assert message.visible_at is not None
            event = self.wake.get(timer.queue)
            if event is not None:
                loop.call_later((message.visible_at - now).total_seconds() + 0.005, event.set)
        self.deliver(held)
        return [*held, *timers]

    async def send(self, messages: Sequence[OutboundMessage]) -> None:
        """Send and wait until stored: consumers here may start at once, the caller goes on only once
        the queues hold every message (before its own checkpoint, before answering a client)."""
        await until_stored(self.post(messages))

    async def send_client_event(self, message: OutboundMessage) -> None:
        """Hand a client's event to its instance here and return once storage holds it: in the history
        checkpoint that consumes it, or in its control queue when it cannot be consumed yet. The queue
        copy (a put and a delete) is then never needed on the usual path."""
        inbox = self.inboxes.get(message.instance_id)
        if inbox is not None and inbox.pending:
            # Messages already wait for the instance's next episode: answer once the queue holds the event,
            # so that events raised meanwhile gather for that episode instead of each waiting for a
            # checkpoint of its own. With nothing waiting, the event goes in memory even while an episode
            # runs: the next episode is the event's alone, as it would be from the queue.
            await self.send([message])
            return
        event = InMemoryClientEvent(self.hub, message)
        self._enqueue(in_memory_message(
            self.hub.control_queue_name(message.instance_id), f"local:{ids.uuid4_text()}", message.event,
            message.instance_id, message.execution_id, event,
        ))
        await event.until_stored(CLIENT_EVENT_PATIENCE)

    def deliver(self, messages: Iterable[ReceivedMessage]) -> None:
        """Hand messages written by this process to their consumers."""
        for message in messages:
            if message.queue == self.hub.work_item_queue_name:
                self.activities.offer(message)
            else:
                self._enqueue(message)

    def finished(self, instance_id: str) -> None:
        """An instance ended: its remaining timer messages can go."""
        self._spawn(self._drop_timers(instance_id))

    def expect_row(self, instance_id: str) -> asyncio.Future[None]:
        """The client is about to write this instance's row; the engine's first row merge waits for it."""
        return self.runner.expect_row(instance_id)

    def seed_new(self, instance_id: str) -> None:
        self.runner.seed_new(instance_id)

    def forget(self, instance_id: str) -> None:
        """Drop the history kept of ``instance_id`` (purged or rewound): its next episode reads storage."""
        self.runner.forget(instance_id)
        self.entities.forget(instance_id)

    def _consumed_timers(self, instance_id: str, consumed: Sequence[ReceivedMessage]) -> None:
        """Timer messages an episode consumed are deleted with its other messages: an instance that runs on
        (an eternal one, through continue-as-new) keeps only the timers still to come."""
        kept = self.timers.get(instance_id)
        if not kept:
            return
        gone = {message.message_id for message in consumed}
        left = [timer for timer in kept if timer.message_id not in gone]
        if left:
            self.timers[instance_id] = left
        else:
            del self.timers[instance_id]

    async def _drop_timers(self, instance_id: str) -> None:
        """Delete the timer messages of a finished instance: they could only be discarded on arrival,
        and Azurite's queue calls slow down with every message a queue holds."""
        for timer in self.timers.pop(instance_id, []):
            await self.settler.complete(timer)

    # -- wake-ups and listeners ---------------------------------------------------------------------
    def on_instance_change(self, instance_id: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` after every checkpoint of ``instance_id``; returns the unsubscribe function."""
        self.instance_listeners.setdefault(instance_id, []).append(callback)

        def remove() -> None:
            listeners = self.instance_listeners.get(instance_id, [])
            if callback in listeners:
                listeners.remove(callback)
            if not listeners:
                self.instance_listeners.pop(instance_id, None)

        return remove

    def _changed(self, instance_id: str) -> None:
        for callback in list(self.instance_listeners.get(instance_id, [])):
            callback()

    async def _wait_for_wake(self, queue: str) -> None:
        """Wait until woken for ``queue`` or until its next idle poll is due, at most the polling interval.

        Idle polls keep to a grid, each queue in its own slot of the interval: pollers started together
        would otherwise stay in step and put all their calls on Azurite at once, every interval, in front of
        whatever call an instance is waiting for.
        """
        interval = self.settings.max_queue_polling_interval
        offset = self.poll_slots.get(queue, 0.0) * interval
        due = interval - (asyncio.get_running_loop().time() - offset) % interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake[queue].wait(), due)

    # -- orchestrations ------------------------------------------------------------------------------
    async def _receive(self, queue: str, count: int, visibility: float) -> list[ReceivedMessage] | None:
        """One receive; None (logged, after a pause) when it failed."""
        try:
            return await self.hub.receive(queue, count, visibility)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._storage_trouble(exc, f"receiving from {queue}"):
                log.exception("Receiving from %s failed; retrying", queue)
            await asyncio.sleep(1.0)
            return None

    def _storage_trouble(self, exc: BaseException, what: str) -> bool:
        """An outage or lost writes, reported to the host's storage health (which logs it once)."""
        return self.health is not None and (self.health.failed(exc, what) or self.health.lost_writes(exc, what))

    async def _poll_control(self, queue: str) -> None:
        wake = self.wake[queue]
        while not self.stopping:
            if self.buffered >= MAX_BUFFERED_MESSAGES:
                self.drained.clear()
                await self.drained.wait()
                continue
            wake.clear()
            messages = await self._receive(queue, self.settings.control_queue_batch_size, self.lease)
            if messages is None:
                continue
            if not messages:
                await self._wait_for_wake(queue)
                continue
            for message in messages:
                self._enqueue(message)

    def _enqueue(self, message: ReceivedMessage) -> None:
        inbox = self.inboxes.setdefault(message.instance_id, InstanceInbox())
        # A message seen again (its lease ran out while it waited) replaces the older copy.
        kept = [m for m in inbox.pending if m.message_id != message.message_id]
        self.buffered += 1 - (len(inbox.pending) - len(kept))
        inbox.pending = [*kept, message]
        if not inbox.running:
            inbox.running = True
            self._spawn(self._drain_inbox(message.instance_id, inbox))

    async def _drain_inbox(self, instance_id: str, inbox: InstanceInbox) -> None:
        try:
            while inbox.pending and not self.stopping:
                batch, inbox.pending = inbox.pending, []
                async with self.orchestration_slots:
                    await self._episode(instance_id, batch)
                self.buffered -= len(batch)
                if self.buffered < MAX_BUFFERED_MESSAGES // 2:
                    self.drained.set()
                self._changed(instance_id)
        finally:
            inbox.running = False
            if self.inboxes.get(instance_id) is inbox and not inbox.pending:
                del self.inboxes[instance_id]

    async def _episode(self, instance_id: str, batch: list[ReceivedMessage]) -> None:
        episode = self._run_episode(instance_id, batch)
        await (spans.timed("episode", instance_id, episode) if spans.on else episode)

    async def _run_episode(self, instance_id: str, batch: list[ReceivedMessage]) -> None:
        started = time.perf_counter()
        runner: EpisodeRunner | EntityRunner = self.entities if is_entity(instance_id) else self.runner
        try:
            consumed, deferred = await runner.run(instance_id, batch)
        except CheckpointConflict:
            log.warning("Instance '%s' was checkpointed by someone else; reloading its history", instance_id)
            runner.forget(instance_id)
            await self._retry_later(batch, 0.0)
            return
        except asyncio.CancelledError:
            runner.forget(instance_id)
            raise
        except Exception as exc:
            runner.forget(instance_id)
            if self._storage_trouble(exc, f"an episode of '{instance_id}'"):
                await self._retry_later(batch, 1.0)  # storage's fault, not the messages': logged once, not as poison
                return
            if is_poison(batch, self.poison.threshold):
                await self.poison.set_aside(instance_id, batch, f"{type(exc).__name__}: {exc}")
                await self.settler.complete_all(batch)
                self._changed(instance_id)
                return
            log.exception("Episode of instance '%s' failed; its messages will be retried", instance_id)
            delay = min(2.0 ** max(m.dequeue_count for m in batch), 60.0)
            await self._retry_later(batch, delay)
            return
        # The checkpoint is written: deleting what it consumed can happen beside the next episode.
        if consumed:
            self._spawn(self.settler.complete_all(consumed))
            self._consumed_timers(instance_id, consumed)
        if deferred:
            # History does not explain these messages yet: read it from storage again next time rather
            # than trust what this process remembers of it.
            self.runner.forget(instance_id)
            log.info("Deferring %d message(s) of instance '%s' that its history does not explain yet",
                     len(deferred), instance_id)
            await self._retry_later(deferred, 1.0)
        log.debug("Episode of '%s' took %.1f ms", instance_id, (time.perf_counter() - started) * 1000)

    async def _retry_later(self, messages: Sequence[ReceivedMessage], delay: float) -> None:
        await self.settler.abandon_all(messages, delay)
        for queue in {m.queue for m in messages}:
            event = self.wake.get(queue)
            if event is not None:
                asyncio.get_running_loop().call_later(delay + 0.005, event.set)
