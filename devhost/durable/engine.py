"""The durable engine: takes messages from the task hub's queues and runs episodes and activities.

Queues stay the source of truth, but a message devhost writes for itself never waits for a poll: it is
written already leased to this process (invisible) and handed to its consumer in memory, which deletes
it with the receipt the write returned. If devhost dies first, the lease runs out and the queue copy is
received as usual. Polling only picks up what other processes write, timers as they come due, and
what a crashed run left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from devhost.config import DurableSettings
from devhost.durable.history import Event, EventType, new_event, utcnow
from devhost.durable.orchestration import EpisodeRunner
from devhost.durable.replay import FunctionCatalog, compact_json
from devhost.durable.taskhub.base import OutboundMessage, ReceivedMessage, TaskHub
from devhost.errors import CheckpointConflict, FunctionInvocationError

log = logging.getLogger("devhost.durable")

MAX_BUFFERED_MESSAGES = 2000  # receive no more while this many wait for their instance's episode


class DurableWorker(Protocol):
    orchestrators: dict[str, Any]
    activities: dict[str, Any]

    async def invoke_orchestrator(self, name: str, context_json: str) -> str: ...
    async def invoke_activity(self, name: str, input_json: str | None) -> str | None: ...


@dataclass
class Session:
    """Messages of one instance waiting for (or in) its episode; one episode per instance at a time."""

    pending: list[ReceivedMessage] = field(default_factory=list)
    running: bool = False


def _compact_result(text: str | None) -> str | None:
    """The extension re-serializes activity results compactly before storing them."""
    if text is None:
        return None
    try:
        return compact_json(json.loads(text))
    except (json.JSONDecodeError, TypeError):
        return text


def _exception_details(message: str, details: str) -> str:
    return compact_json({"ClassName": "System.Exception", "Message": message, "StackTraceString": details})


class Engine:
    def __init__(self, hub: TaskHub, worker: DurableWorker, settings: DurableSettings) -> None:
        self.hub = hub
        self.worker = worker
        self.settings = settings
        self.runner = EpisodeRunner(
            hub, worker, self.catalog, store_inputs=settings.store_inputs_in_history,
            keep_history=settings.extended_sessions, post=self.post, finished=self.finished,
        )
        self.sessions: dict[str, Session] = {}
        self.buffered = 0
        self.drained = asyncio.Event()
        self.wake: dict[str, asyncio.Event] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.inflight: set[asyncio.Future[None]] = set()
        self.orchestration_slots = asyncio.Semaphore(settings.max_concurrent_orchestrations)
        self.activity_backlog: asyncio.Queue[ReceivedMessage] = asyncio.Queue()
        self.activity_ids: set[str] = set()  # work items queued or running here, by message id
        self.timers: dict[str, list[ReceivedMessage]] = {}  # pending timer messages, by instance
        self.instance_listeners: dict[str, list[Callable[[], None]]] = {}
        self.stopping = False

    def catalog(self) -> FunctionCatalog:
        return FunctionCatalog(self.worker.orchestrators.keys(), self.worker.activities.keys())

    @property
    def lease(self) -> float:
        return self.settings.control_queue_visibility_timeout

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        queues = [*self.hub.control_queue_names, self.hub.work_item_queue_name]
        self.wake = {q: asyncio.Event() for q in queues}
        for queue in self.hub.control_queue_names:
            self.tasks.append(asyncio.create_task(self._poll_control(queue), name=f"poll {queue}"))
        self.tasks.append(asyncio.create_task(self._poll_work_items(), name="poll work items"))
        for n in range(self.settings.max_concurrent_activities):
            self.tasks.append(asyncio.create_task(self._activity_worker(), name=f"activity worker {n}"))

    async def stop(self, grace: float = 5.0) -> None:
        """Stop receiving, give running work ``grace`` seconds, then cancel it (its messages come back)."""
        self.stopping = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.inflight:
            _, pending = await asyncio.wait(self.inflight, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    # -- sending and delivering --------------------------------------------------------------------
    def post(self, messages: Sequence[OutboundMessage]) -> list[ReceivedMessage]:
        """Write ``messages`` and hand the immediate ones to their consumers here, without waiting.

        Consumers may start on a message before the queue has it: what they produce is only committed
        behind the episode or reply that depends on it, and deleting a message waits for its write. The
        caller awaits ``written`` of the returned messages where it needs them durable (before its own
        checkpoint, before answering a client). Timer messages stay invisible until due; the poller is
        woken for them, and their receipts are kept to delete the timers an instance leaves behind.
        """
        now = utcnow()
        immediate = [m for m in messages if m.visible_at is None or m.visible_at <= now]
        delayed = [m for m in messages if m.visible_at is not None and m.visible_at > now]
        held = self.hub.start_held(immediate, self.lease) if immediate else []
        timers = self.hub.start_held(delayed, 0.0) if delayed else []
        loop = asyncio.get_running_loop()
        for message, timer in zip(delayed, timers, strict=True):
            self.timers.setdefault(message.instance_id, []).append(timer)
            assert message.visible_at is not None
            event = self.wake.get(timer.queue)
            if event is not None:
                loop.call_later((message.visible_at - now).total_seconds() + 0.005, event.set)
        self.deliver(held)
        return [*held, *timers]

    def deliver(self, messages: Iterable[ReceivedMessage]) -> None:
        """Hand messages written by this process to their consumers."""
        for message in messages:
            if message.queue == self.hub.work_item_queue_name:
                self._offer_activity(message)
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

    async def _drop_timers(self, instance_id: str) -> None:
        """Delete the timer messages of a finished instance: they could only be discarded on arrival,
        and Azurite's queue calls slow down with every message a queue holds."""
        for timer in self.timers.pop(instance_id, []):
            await self._delete(timer)

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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake[queue].wait(), self.settings.max_queue_polling_interval)

    # -- orchestrations ------------------------------------------------------------------------------
    async def _poll_control(self, queue: str) -> None:
        wake = self.wake[queue]
        while not self.stopping:
            if self.buffered >= MAX_BUFFERED_MESSAGES:
                self.drained.clear()
                await self.drained.wait()
                continue
            wake.clear()
            try:
                messages = await self.hub.receive(queue, self.settings.control_queue_batch_size, self.lease)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Receiving from %s failed; retrying", queue)
                await asyncio.sleep(1.0)
                continue
            if not messages:
                await self._wait_for_wake(queue)
                continue
            for message in messages:
                self._enqueue(message)

    def _enqueue(self, message: ReceivedMessage) -> None:
        session = self.sessions.setdefault(message.instance_id, Session())
        # A message seen again (its lease ran out while it waited) replaces the older copy.
        kept = [m for m in session.pending if m.message_id != message.message_id]
        self.buffered += 1 - (len(session.pending) - len(kept))
        session.pending = [*kept, message]
        if not session.running:
            session.running = True
            self._spawn(self._run_session(message.instance_id, session))

    async def _run_session(self, instance_id: str, session: Session) -> None:
        try:
            while session.pending and not self.stopping:
                batch, session.pending = session.pending, []
                async with self.orchestration_slots:
                    await self._episode(instance_id, batch)
                self.buffered -= len(batch)
                if self.buffered < MAX_BUFFERED_MESSAGES // 2:
                    self.drained.set()
                self._changed(instance_id)
        finally:
            session.running = False
            if self.sessions.get(instance_id) is session and not session.pending:
                del self.sessions[instance_id]

    async def _episode(self, instance_id: str, batch: list[ReceivedMessage]) -> None:
        started = time.perf_counter()
        try:
            consumed, deferred = await self.runner.run(instance_id, batch)
        except CheckpointConflict:
            log.warning("Instance '%s' was checkpointed by someone else; reloading its history", instance_id)
            self.runner.forget(instance_id)
            await self._retry_later(batch, 0.0)
            return
        except asyncio.CancelledError:
            self.runner.forget(instance_id)
            raise
        except Exception:
            log.exception("Episode of instance '%s' failed; its messages will be retried", instance_id)
            self.runner.forget(instance_id)
            delay = min(2.0 ** max(m.dequeue_count for m in batch), 60.0)
            await self._retry_later(batch, delay)
            return
        # The checkpoint is written: deleting what it consumed can happen beside the next episode.
        if consumed:
            self._spawn(self._delete_all(consumed))
        if deferred:
            # History does not explain these messages yet: read it from storage again next time rather
            # than trust what this process remembers of it.
            self.runner.forget(instance_id)
            log.info("Deferring %d message(s) of instance '%s' that its history does not explain yet",
                     len(deferred), instance_id)
            await self._retry_later(deferred, 1.0)
        log.debug("Episode of '%s' took %.1f ms", instance_id, (time.perf_counter() - started) * 1000)

    async def _delete_all(self, messages: Sequence[ReceivedMessage]) -> None:
        await asyncio.gather(*(self._delete(m) for m in messages))

    async def _delete(self, message: ReceivedMessage) -> None:
        if message.settle is not None:
            await message.settle(True)
            return
        if not await message.wait_written():
            return
        try:
            await self.hub.delete(message)
        except Exception as exc:  # a message re-received meanwhile has a new receipt: its copy will be handled
            log.debug("Could not delete message %s: %s", message.message_id, exc)

    async def _retry_later(self, messages: Sequence[ReceivedMessage], delay: float) -> None:
        async def hide(message: ReceivedMessage) -> None:
            if message.settle is not None:
                await message.settle(False)  # in memory only: its leased work item comes back by itself
                return
            if not await message.wait_written():
                return
            try:
                await self.hub.set_visibility(message, delay)
            except Exception as exc:
                log.debug("Could not reschedule message %s: %s", message.message_id, exc)

        await asyncio.gather(*(hide(m) for m in messages))
        for queue in {m.queue for m in messages}:
            event = self.wake.get(queue)
            if event is not None:
                asyncio.get_running_loop().call_later(delay + 0.005, event.set)

    # -- activities ---------------------------------------------------------------------------------
    def _offer_activity(self, message: ReceivedMessage) -> None:
        if message.message_id in self.activity_ids:
            return  # a copy received again while the first one waits or runs here
        self.activity_ids.add(message.message_id)
        self.activity_backlog.put_nowait(message)

    async def _poll_work_items(self) -> None:
        queue = self.hub.work_item_queue_name
        wake = self.wake[queue]
        limit = self.settings.max_concurrent_activities
        while not self.stopping:
            wake.clear()
            if self.activity_backlog.qsize() >= limit:
                await self._wait_for_wake(queue)
                continue
            try:
                messages = await self.hub.receive(queue, min(limit, 32), self.settings.work_item_visibility_timeout)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Receiving from %s failed; retrying", queue)
                await asyncio.sleep(1.0)
                continue
            if not messages:
                await self._wait_for_wake(queue)
                continue
            for message in messages:
                self._offer_activity(message)

    async def _activity_worker(self) -> None:
        while True:
            message = await self.activity_backlog.get()
            try:
                await self._run_activity(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Activity message %s failed; it will be retried", message.message_id)
            finally:
                self.activity_ids.discard(message.message_id)

    async def _run_activity(self, message: ReceivedMessage) -> None:
        scheduled = message.event
        if scheduled["EventType"] != EventType.TaskScheduled:
            log.warning("Dropping a %s message from the work-item queue", scheduled["EventType"])
            await self._delete(message)
            return
        renew = asyncio.ensure_future(self._keep_hidden(message, self.settings.work_item_visibility_timeout))
        try:
            reply = await self._execute_activity(scheduled)
        except BaseException:
            renew.cancel()
            raise
        self._enqueue(self._reply_in_memory(message, reply, renew))

    def _reply_in_memory(self, work_item: ReceivedMessage, reply: Event,
                         renew: asyncio.Future[None]) -> ReceivedMessage:
        """The activity's result, handed to its orchestration without writing it to a queue.

        The work item stays in its queue (its lease renewed) until the orchestration has checkpointed
        the result; only then is it deleted. After a crash the work item comes back and the activity
        runs again, which is the guarantee a queued reply would give, for one write and one delete less.
        """
        async def settle(consumed: bool) -> None:
            renew.cancel()
            if consumed:
                await self._delete(work_item)

        queue = self.hub.control_queue_name(work_item.instance_id)
        message = ReceivedMessage(
            queue=queue, message_id=f"local:{work_item.message_id}:{work_item.dequeue_count}", receipt="",
            dequeue_count=0, inserted_on=utcnow(), event=reply, instance_id=work_item.instance_id,
            execution_id=work_item.execution_id, settle=settle,
        )
        return message

    async def _execute_activity(self, scheduled: Event) -> Event:
        name = scheduled["Name"]
        task_id = scheduled["EventId"]
        try:
            params = json.loads(scheduled.get("Input") or "[]")
            input_text = params[0] if isinstance(params, list) and params else None
        except json.JSONDecodeError:
            input_text = scheduled.get("Input")
        try:
            resolved = self.catalog().resolve("activity", name)
            result = await self.worker.invoke_activity(resolved, input_text)
        except FunctionInvocationError as exc:
            return new_event(
                EventType.TaskFailed, TaskScheduledId=task_id,
                Reason=f"Activity function '{name}' failed: {exc.message}",
                Details=_exception_details(exc.message, exc.details), FailureDetails=None,
            )
        except Exception as exc:  # the activity is not registered (any more)
            return new_event(EventType.TaskFailed, TaskScheduledId=task_id, Reason=str(exc), Details=None,
                             FailureDetails=None)
        return new_event(EventType.TaskCompleted, TaskScheduledId=task_id, Result=_compact_result(result))

    async def _keep_hidden(self, message: ReceivedMessage, visibility: float) -> None:
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
