"""Activity workers: take work items from the task hub's work-item queue and run them.

A work item written by this process arrives in memory (``offer``); the poller picks up the rest. An
activity's result goes to its orchestration's inbox in memory, settled through its work item
(``settlement.InMemoryReply``), not through a queued reply.

An episode may also start its activities itself before anything is written (``run_ahead``): when they
finish quickly, the episodes they lead to share its checkpoint and no work item is ever written (after a
crash the consumed messages come back and the activities run again, as a redelivered work item would
have them). One that takes longer is not run twice: its work item is written with the checkpoint, and the
worker that takes it waits for the run already under way.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

import aiohttp

from devhost.config import DurableSettings
from devhost.durable.durable_http import HTTP_ACTIVITY
from devhost.durable.failure_details import activity_failure_details, http_failure_details
from devhost.durable.history import Event, EventType, new_event
from devhost.durable.http_activity import HttpActivityError, run_http_activity
from devhost.durable.replay import FunctionCatalog, compact_json
from devhost.durable.settlement import InMemoryReply, Settler, in_memory_message
from devhost.durable.taskhub.base import ReceivedMessage, TaskHub
from devhost.errors import FunctionInvocationError

log = logging.getLogger("devhost.durable")

T = TypeVar("T")


class ActivityInvoker(Protocol):
    async def invoke_activity(self, name: str, input_json: str | None) -> str | None: ...
    def can_invoke_here(self, kind: str, name: str) -> bool: ...
    def on_worker_thread(self, job: Callable[[], T]) -> asyncio.Future[T]: ...
    def invoke_activity_here(self, name: str, input_json: str | None) -> str | None: ...


def _compact_result(text: str | None) -> str | None:
    """The extension re-serializes activity results compactly before storing them."""
    if text is None:
        return None
    try:
        return compact_json(json.loads(text))
    except (json.JSONDecodeError, TypeError):
        return text


def _activity_input(scheduled: Event) -> tuple[Any, str | None]:
    """The work item's input array and the activity's input text (its first element)."""
    params: Any = None
    try:
        params = json.loads(scheduled.get("Input") or "[]")
        return params, params[0] if isinstance(params, list) and params else None
    except json.JSONDecodeError:
        return params, scheduled.get("Input")


def _result_event(task_id: int, result: str | None) -> Event:
    return new_event(EventType.TaskCompleted, TaskScheduledId=task_id, Result=_compact_result(result))


def _failure_event(task_id: int, name: str, exc: Exception) -> Event:
    if isinstance(exc, FunctionInvocationError):
        return new_event(
            EventType.TaskFailed, TaskScheduledId=task_id,
            Reason=f"Activity function '{name}' failed: {exc.message}",
            Details=activity_failure_details(exc.message, exc.details), FailureDetails=None,
        )
    # the activity is not registered (any more)
    return new_event(EventType.TaskFailed, TaskScheduledId=task_id, Reason=str(exc), Details=None,
                     FailureDetails=None)


class ActivityWorkers:
    """A backlog of work items, a poller for the work-item queue, and ``max_concurrent_activities`` workers."""

    def __init__(self, hub: TaskHub, worker: ActivityInvoker, catalog: Callable[[], FunctionCatalog],
                 settings: DurableSettings, settler: Settler,
                 receive: Callable[[str, int, float], Awaitable[list[ReceivedMessage] | None]],
                 idle: Callable[[str], Awaitable[None]],
                 reply: Callable[[ReceivedMessage], None]) -> None:
        self.hub = hub
        self.worker = worker
        self.catalog = catalog
        self.settings = settings
        self.settler = settler
        self.receive = receive  # None when receiving failed (logged, and a pause taken)
        self.idle = idle  # waits until woken for the queue or the idle poll interval passed
        self.reply = reply  # hands an activity's result to its instance's inbox
        self.backlog: asyncio.Queue[ReceivedMessage] = asyncio.Queue()
        self.known_ids: set[str] = set()  # work items queued or running here, by message id
        # Activities started by their episode before their work item exists, by (instance, execution, task id).
        self.ahead: dict[tuple[str, str | None, int], asyncio.Future[Event]] = {}
        # maxConcurrentActivityFunctions holds for both: the workers and the runs ahead share these slots.
        self.slots = asyncio.Semaphore(settings.max_concurrent_activities)
        self.http_session: aiohttp.ClientSession | None = None  # for call_http, opened on first use
        self.stopping = False

    def tasks(self, wake: asyncio.Event) -> list[asyncio.Task[None]]:
        """The poller and the workers, started."""
        tasks = [asyncio.create_task(self._poll(wake), name="poll work items")]
        for n in range(self.settings.max_concurrent_activities):
            tasks.append(asyncio.create_task(self._work(), name=f"activity worker {n}"))
        return tasks

    def offer(self, message: ReceivedMessage) -> None:
        if message.message_id in self.known_ids:
            return  # a copy received again while the first one waits or runs here
        self.known_ids.add(message.message_id)
        self.backlog.put_nowait(message)

    def run_ahead(self, instance_id: str, execution_id: str | None, scheduled: Event) -> asyncio.Future[Event]:
        """Start the activity of a TaskScheduled message that is not written yet; its result event."""
        key = (instance_id, execution_id, scheduled["EventId"])
        future = asyncio.ensure_future(self._execute_in_slot(scheduled))
        self.ahead[key] = future
        return future

    async def run_ahead_then(self, instance_id: str, execution_id: str | None, scheduled: Event,
                             then: Callable[[Event], T]) -> asyncio.Future[tuple[Event, T | Exception]] | None:
        """``run_ahead``, then ``then(result event)`` on the same worker thread right after the activity.

        The work is handed to the thread before this returns (no trip round the loop). The future gives the
        result event and what ``then`` returned (or raised); the run is registered as ``run_ahead``
        registers it, its result event there as soon as both are done. None when the activity cannot run
        on a worker thread by itself (async, storage bindings, the built-in HTTP activity) or no activity
        slot is free: ``run_ahead`` it instead.
        """
        name = self.runnable_here(scheduled)
        if name is None or not await self.take_slot():
            return None  # (with no slot free, run_ahead waits for one within the episode's window)

        def job() -> tuple[Event, T | Exception]:
            event = self.run_here(name, scheduled)
            try:
                return event, then(event)
            except Exception as exc:  # the caller goes on with the event alone
                return event, exc

        chained = self.run_in_slot(job)
        self.adopt(instance_id, execution_id, scheduled["EventId"], chained)
        return chained

    def runnable_here(self, scheduled: Event) -> str | None:
        """The activity ``scheduled`` asks for, when a worker thread can run it by itself (``run_here``): a
        sync activity that reads and writes no storage binding, and not the built-in HTTP activity."""
        try:
            name = self.catalog().resolve("activity", scheduled["Name"])
        except Exception:
            return None
        return None if name == HTTP_ACTIVITY or not self.worker.can_invoke_here("activity", name) else name

    def run_here(self, name: str, scheduled: Event) -> Event:
        """Run activity ``name`` (see ``runnable_here``) for ``scheduled`` on the calling worker thread; its
        result event, or its failure event."""
        task_id = scheduled["EventId"]
        try:
            return _result_event(task_id, self.worker.invoke_activity_here(name, _activity_input(scheduled)[1]))
        except Exception as exc:
            return _failure_event(task_id, scheduled["Name"], exc)

    async def take_slot(self) -> bool:
        """An activity slot taken without waiting (held by ``run_in_slot``), or False."""
        if self.slots.locked():
            return False
        await self.slots.acquire()  # free: no trip round the loop
        return True

    def run_in_slot(self, job: Callable[[], T]) -> asyncio.Future[T]:
        """``job`` on a worker thread, holding the slot the caller took (``take_slot``) until it ends."""
        try:
            run = self.worker.on_worker_thread(job)
        except BaseException:
            self.slots.release()
            raise
        run.add_done_callback(lambda _: self.slots.release())
        return run

    def adopt(self, instance_id: str, execution_id: str | None, task_id: int,
              run: asyncio.Future[tuple[Event, Any]]) -> None:
        """Register ``run``, a run of task ``task_id`` on a worker thread whose future gives its result event
        first, as ``run_ahead`` registers its runs: a worker that takes its work item waits for it."""
        result: asyncio.Future[Event] = asyncio.get_running_loop().create_future()

        def settle(done: asyncio.Future[tuple[Event, Any]]) -> None:
            if result.done():
                return
            if done.cancelled():
                result.cancel()
            elif done.exception() is not None:
                result.set_exception(cast(BaseException, done.exception()))
            else:
                result.set_result(done.result()[0])

        run.add_done_callback(settle)
        result.add_done_callback(lambda f: f.cancelled() or f.exception())  # nobody may wait for it
        self.ahead[(instance_id, execution_id, task_id)] = result

    def drop_ahead(self, instance_id: str, execution_id: str | None, task_ids: list[int]) -> None:
        """Forget runs ahead whose work items will not be written (their results are used or discarded)."""
        for task_id in task_ids:
            self.ahead.pop((instance_id, execution_id, task_id), None)

    @property
    def running_ahead(self) -> int:
        return len(self.ahead)

    async def _poll(self, wake: asyncio.Event) -> None:
        queue = self.hub.work_item_queue_name
        limit = self.settings.max_concurrent_activities
        while not self.stopping:
            wake.clear()
            if self.backlog.qsize() >= limit:
                await self.idle(queue)
                continue
            messages = await self.receive(queue, min(limit, 32), self.settings.work_item_visibility_timeout)
            if messages is None:
                continue
            if not messages:
                await self.idle(queue)
                continue
            for message in messages:
                self.offer(message)

    async def _work(self) -> None:
        while True:
            message = await self.backlog.get()
            try:
                await self._run(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Activity message %s failed; it will be retried", message.message_id)
            finally:
                self.known_ids.discard(message.message_id)

    async def _run(self, message: ReceivedMessage) -> None:
        scheduled = message.event
        if scheduled["EventType"] != EventType.TaskScheduled:
            log.warning("Dropping a %s message from the work-item queue", scheduled["EventType"])
            await self.settler.complete(message)
            return
        visibility = self.settings.work_item_visibility_timeout
        renewal = asyncio.ensure_future(self.settler.queue.keep_leased(message, visibility))
        started = self.ahead.pop((message.instance_id, message.execution_id, scheduled["EventId"]), None)
        try:
            result = await (started if started is not None else self._execute_in_slot(scheduled))
        except BaseException:
            renewal.cancel()
            raise
        self.reply(self._reply_in_memory(message, result, renewal))

    def _reply_in_memory(self, work_item: ReceivedMessage, result: Event,
                         renewal: asyncio.Future[None]) -> ReceivedMessage:
        """The activity's result as a message for its orchestration that no queue holds."""
        return in_memory_message(
            self.hub.control_queue_name(work_item.instance_id),
            f"local:{work_item.message_id}:{work_item.dequeue_count}", result, work_item.instance_id,
            work_item.execution_id, InMemoryReply(work_item, renewal, self.settler.queue),
        )

    async def _execute_in_slot(self, scheduled: Event) -> Event:
        async with self.slots:
            return await self._execute(scheduled)

    async def _execute(self, scheduled: Event) -> Event:
        name = scheduled["Name"]
        task_id = scheduled["EventId"]
        params, input_text = _activity_input(scheduled)
        if name == HTTP_ACTIVITY and isinstance(params, list) and params and isinstance(params[0], dict):
            return await self._call_http(task_id, params[0])
        try:
            resolved = self.catalog().resolve("activity", name)
            return _result_event(task_id, await self.worker.invoke_activity(resolved, input_text))
        except Exception as exc:
            return _failure_event(task_id, name, exc)

    async def _call_http(self, task_id: int, request: dict[str, Any]) -> Event:
        """The built-in HTTP activity of call_http."""
        if self.http_session is None:
            self.http_session = aiohttp.ClientSession()
        try:
            response = await run_http_activity(request, self.http_session)
        except HttpActivityError as exc:
            return new_event(EventType.TaskFailed, TaskScheduledId=task_id, Reason=exc.args[0],
                             Details=http_failure_details(exc.args[0]), FailureDetails=None)
        return new_event(EventType.TaskCompleted, TaskScheduledId=task_id, Result=compact_json(response))

    async def close(self) -> None:
        if self.http_session is not None:
            await self.http_session.close()
            self.http_session = None
