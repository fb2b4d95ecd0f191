"""One orchestration episode: messages in, orchestrator replayed, new history and messages committed.

The commit follows the Azure Storage provider: outbound messages first, then the history rows (the
checkpoint, guarded by the sentinel ETag), then the Instances row, then the consumed messages are
deleted. A crash anywhere in between leaves messages that are delivered again; ``triage`` recognises
what history already holds, so a redelivery never adds a row twice or completes an instance twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

from devhost import ids, spans
from devhost.durable.durable_http import HTTP_ACTIVITY
from devhost.durable.entities.messages import OPERATION_EVENT, operation_message
from devhost.durable.history import (
    Event,
    EventType,
    OrchestrationStatus,
    execution_started,
    format_timestamp,
    new_event,
    parse_timestamp,
    parse_token,
    utcnow,
)
from devhost.durable.replay import (
    Completion,
    CreateTimer,
    Decision,
    FunctionCatalog,
    ReplayFailure,
    ReplayResult,
    ScheduleTask,
    SendEntityOperation,
    compact_json,
    failed,
    replay,
    reply_from_failure,
)
from devhost.durable.settlement import until_stored
from devhost.durable.taskhub.base import HistoryPage, InstanceUpdate, OutboundMessage, ReceivedMessage, TaskHub
from devhost.errors import FunctionInvocationError
from devhost.event_loop import settle

log = logging.getLogger("devhost.durable")

COMPLETIONS = {
    EventType.TaskCompleted, EventType.TaskFailed,
    EventType.SubOrchestrationInstanceCompleted, EventType.SubOrchestrationInstanceFailed,
}
# Events whose identity is their type, name and creation time (the message carries the same object
# that history stores, so the timestamp is a reliable fingerprint of a redelivered message).
FINGERPRINTED = {
    EventType.EventRaised, EventType.ExecutionTerminated,
    EventType.ExecutionSuspended, EventType.ExecutionResumed,
}
MAX_CONTINUE_AS_NEW_PER_EPISODE = 100
HISTORY_CACHE_CAPACITY = 10_000
STALE_START_RETRIES = 5
MAX_ROWS_AHEAD = 90  # episodes sharing a checkpoint stay within one table transaction (99 rows)

T = TypeVar("T")


class OrchestratorInvoker(Protocol):
    async def invoke_orchestrator(self, name: str, context_json: str) -> str: ...
    def can_invoke_here(self, kind: str, name: str) -> bool: ...
    def invoke_orchestrator_here(self, name: str, context_json: str) -> str: ...


class ActivitiesAhead(Protocol):
    """Runs an episode's activities before their work items are written (``ActivityWorkers``)."""

    running_ahead: int

    def run_ahead(self, instance_id: str, execution_id: str | None, scheduled: Event) -> asyncio.Future[Event]: ...
    async def run_ahead_then(self, instance_id: str, execution_id: str | None, scheduled: Event,
                             then: Callable[[Event], T]) -> asyncio.Future[tuple[Event, T | Exception]] | None: ...
    def drop_ahead(self, instance_id: str, execution_id: str | None, task_ids: list[int]) -> None: ...
    def runnable_here(self, scheduled: Event) -> str | None: ...
    def run_here(self, name: str, scheduled: Event) -> Event: ...
    async def take_slot(self) -> bool: ...
    def run_in_slot(self, job: Callable[[], T]) -> asyncio.Future[T]: ...
    def adopt(self, instance_id: str, execution_id: str | None, task_id: int,
              run: asyncio.Future[tuple[Event, Any]]) -> None: ...


class Handoff:
    """Who goes on once an activity run ahead on a worker thread has finished: that thread, with the next
    episode's orchestrator, or the host's loop, which stopped waiting for it (the window passed) and
    checkpoints without it. Whichever comes first decides; the other then knows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taker: str | None = None

    def _take(self, taker: str) -> bool:
        with self._lock:
            if self._taker is None:
                self._taker = taker
            return self._taker == taker

    def claim(self) -> bool:
        """The worker thread: True when it may run the next episode."""
        return self._take("thread")

    def abandon(self) -> bool:
        """The loop: True when the thread will not run the next episode."""
        return self._take("loop")


@dataclass
class Chain:
    """An episode's lone activity, started on the worker thread that ran the episode, and the next episode
    executed after it on that thread (``EpisodeRunner._execute``): the run's future gives the result event
    and the next episode (or its failure, or None when the loop had stopped waiting)."""

    scheduled: Event
    handoff: Handoff
    run: asyncio.Future[tuple[Event, Episode | Exception | None]]


@dataclass
class Triage:
    """What to do with each received message of an instance."""

    new_events: list[Event] = field(default_factory=list)
    consumed: list[ReceivedMessage] = field(default_factory=list)  # delete after the checkpoint
    deferred: list[ReceivedMessage] = field(default_factory=list)  # not yet applicable: retry later
    start: Event | None = None  # ExecutionStarted of a new execution
    redelivered: bool = False  # some message's effect is already in history: a crash came before its delete


@dataclass
class CachedHistory:
    """A running instance's history kept between episodes (the provider's "extended sessions")."""

    execution_id: str | None
    events: list[Event]
    etag: str | None


def _work_ahead(episode: Episode) -> list[OutboundMessage]:
    """The work items ``episode`` asks for that may run ahead of its checkpoint, as far as the episode
    itself goes (the slots are the caller's to check): none once it has ended or continued as new, or when
    their rows would outgrow one table transaction."""
    if episode.final_completion is not None or episode.generation_started:
        return []
    work = [m for m in episode.outbound if m.to_work_items]
    return work if len(episode.written) + 4 * len(work) <= MAX_ROWS_AHEAD else []


def _lone_activity(episode: Episode) -> Event | None:
    """The TaskScheduled event of the one activity ``episode`` asks for, when ``_run_ahead`` would run it ahead
    chained (see ``EpisodeRunner._execute``), else None."""
    work = _work_ahead(episode)
    return work[0].event if len(work) == 1 and not is_suspended(episode.all_events) else None


def _ids(events: Sequence[Event], kinds: set[EventType], key: str) -> set[int]:
    return {e[key] for e in events if e["EventType"] in kinds}


def execution_of(events: Sequence[Event]) -> Event | None:
    return next((e for e in events if e["EventType"] == EventType.ExecutionStarted), None)


def is_completed(events: Sequence[Event]) -> bool:
    return any(e["EventType"] == EventType.ExecutionCompleted for e in events)


def is_suspended(events: Sequence[Event]) -> bool:
    state = False
    for e in events:
        if e["EventType"] == EventType.ExecutionSuspended:
            state = True
        elif e["EventType"] == EventType.ExecutionResumed:
            state = False
    return state


class EpisodeRunner:
    """Runs episodes for instances; callers guarantee one episode per instance at a time."""

    def __init__(self, hub: TaskHub, worker: OrchestratorInvoker, catalog: Callable[[], FunctionCatalog],
                 *, store_inputs: bool = False, keep_history: bool = True,
                 send: Callable[[Sequence[OutboundMessage]], Awaitable[None]] | None = None,
                 post: Callable[[Sequence[OutboundMessage]], Sequence[ReceivedMessage]] | None = None,
                 finished: Callable[[str], None] = lambda _: None,
                 ahead: ActivitiesAhead | None = None, ahead_window: float = 0.0, ahead_limit: int = 0,
                 ahead_chained: bool = False) -> None:
        self.hub = hub
        self.worker = worker
        self.catalog = catalog
        self.store_inputs = store_inputs
        self.keep_history = keep_history
        # ``send`` returns once the queues hold the messages (the engine's hands those for this process
        # to their consumers at once); ``post`` starts the same writes and returns the messages at once,
        # each with its ``written`` future. ``finished`` hears of instances that ended.
        self.send = send or hub.send
        self.post = post
        self.finished = finished
        self.row_writes: dict[str, asyncio.Future[None]] = {}
        # Histories of running instances kept between episodes (extended sessions); least recently used
        # ones beyond the cap are read from storage again when they next get a message.
        self.cache: OrderedDict[str, CachedHistory] = OrderedDict()
        self.cache_capacity = HISTORY_CACHE_CAPACITY
        # Activities run ahead of the checkpoint, waited for at most ``ahead_window`` seconds per episode,
        # at most ``ahead_limit`` of them at once (none without ``ahead``).
        self.ahead = ahead
        self.ahead_window = ahead_window
        self.ahead_limit = ahead_limit
        self.ahead_chained = ahead_chained  # a lone sync activity and the next episode on one worker thread

    def expect_row(self, instance_id: str) -> asyncio.Future[None]:
        """A client is writing this instance's row: its first checkpoint must not merge before that."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.row_writes[instance_id] = future
        # Once the write is over there is nothing to wait for: the entry goes even if no checkpoint takes it
        # (the start failed, or its episode did), so failed starts leave nothing behind.
        future.add_done_callback(
            lambda done: self.row_writes.pop(instance_id) if self.row_writes.get(instance_id) is done else None)
        return future

    def seed_new(self, instance_id: str) -> None:
        """An instance the client just created: its history is known to be empty, no need to read it."""
        self.cache.setdefault(instance_id, CachedHistory(None, [], None))

    def forget(self, instance_id: str) -> None:
        self.cache.pop(instance_id, None)

    def forget_all(self) -> None:
        self.cache.clear()

    async def _history(self, instance_id: str) -> CachedHistory:
        cached = self.cache.get(instance_id)
        if cached is not None:
            self.cache.move_to_end(instance_id)
            return cached
        page: HistoryPage = await self.hub.load_history(instance_id)
        return CachedHistory(page.execution_id, list(page.events), page.etag)

    # -- triage --------------------------------------------------------------------------------
    async def triage(self, instance_id: str, history: CachedHistory,
                     messages: list[ReceivedMessage]) -> Triage:
        result = Triage()
        events = history.events
        execution_id = history.execution_id
        completed = is_completed(events)
        scheduled = _ids(events, {EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated}, "EventId")
        timers = _ids(events, {EventType.TimerCreated}, "EventId")
        done_tasks = _ids(events, COMPLETIONS, "TaskScheduledId")
        fired = _ids(events, {EventType.TimerFired}, "TimerId")
        fingerprints = {(e["EventType"], e["Timestamp"], e.get("Name")) for e in events
                        if e["EventType"] in FINGERPRINTED}

        for message in sorted(messages, key=lambda m: (m.inserted_on, m.sequence_number)):
            event = message.event
            kind = event["EventType"]
            if kind == EventType.ExecutionStarted:
                started_id = event["OrchestrationInstance"]["ExecutionId"]
                if started_id == execution_id:
                    result.consumed.append(message)  # a redelivered start of this execution
                    result.redelivered = True
                    continue
                # A start this process's client just wrote (dequeue count 0) is current by construction.
                row = None if message.dequeue_count == 0 else await self.hub.get_instance(
                    instance_id, fetch_input=False, fetch_output=False)
                if row is not None and row.execution_id and row.execution_id != started_id:
                    # The client sends the message before it writes the row, so a mismatch may only be
                    # a start whose row is a moment away; after a few tries it is a superseded start.
                    if message.dequeue_count < STALE_START_RETRIES:
                        result.deferred.append(message)
                    else:
                        result.consumed.append(message)
                    continue
                # A new execution replaces whatever this instance had.
                result.start = event
                execution_id, completed = started_id, False
                events = []
                scheduled, timers, done_tasks, fired, fingerprints = set(), set(), set(), set(), set()
                result.new_events = [event]
                result.consumed.append(message)
                continue
            if execution_id is None:
                row = await self.hub.get_instance(instance_id, fetch_input=False, fetch_output=False)
                if row is not None and row.runtime_status == OrchestrationStatus.Pending and message.dequeue_count < 50:
                    result.deferred.append(message)  # its ExecutionStarted has not been taken yet
                else:
                    log.warning("Discarding %s for unknown instance '%s'", EventType(kind).name, instance_id)
                    result.consumed.append(message)
                continue
            if message.execution_id and message.execution_id != execution_id:
                result.consumed.append(message)  # addressed to an execution that is gone
                continue
            if completed:
                result.consumed.append(message)  # the instance has finished: nothing can use it
                result.redelivered = True
                continue
            if kind in COMPLETIONS:
                task_id = event["TaskScheduledId"]
                if task_id in done_tasks:
                    result.consumed.append(message)
                    result.redelivered = True
                    continue
                if task_id not in scheduled:
                    result.deferred.append(message)  # arrived before the checkpoint that scheduled it
                    continue
                done_tasks.add(task_id)
            elif kind == EventType.TimerFired:
                if event["TimerId"] in fired:
                    result.consumed.append(message)
                    result.redelivered = True
                    continue
                if event["TimerId"] not in timers:
                    result.deferred.append(message)
                    continue
                fired.add(event["TimerId"])
            elif kind in FINGERPRINTED:
                fingerprint = (kind, event["Timestamp"], event.get("Name"))
                if fingerprint in fingerprints:
                    result.consumed.append(message)
                    result.redelivered = True
                    continue
                fingerprints.add(fingerprint)
            result.new_events.append(event)
            result.consumed.append(message)
        return result

    # -- the episode ---------------------------------------------------------------------------
    async def run(self, instance_id: str, messages: list[ReceivedMessage]) -> tuple[list[ReceivedMessage],
                                                                                   list[ReceivedMessage]]:
        """Process ``messages``; return (messages to delete, messages to retry later)."""
        from_cache = instance_id in self.cache
        history = await self._history(instance_id)
        triage = await self.triage(instance_id, history, messages)
        if not triage.new_events:
            if triage.redelivered and not from_cache:
                await self.repair(instance_id, history)
            return triage.consumed, triage.deferred

        if triage.start is not None:
            past: list[Event] = []
            execution_id = triage.start["OrchestrationInstance"]["ExecutionId"]
            etag = None
        else:
            past = history.events
            execution_id = history.execution_id or ""
            etag = history.etag
        started = triage.start or execution_of(past)
        assert started is not None
        now = utcnow()
        last_start = max((parse_timestamp(e["Timestamp"]) for e in past
                          if e["EventType"] == EventType.OrchestratorStarted), default=None)
        if last_start is not None and now < last_start:
            now = last_start  # the orchestration clock never runs backwards
        episode = Episode(self, instance_id, execution_id, started, past, triage.new_events, now)
        await self._execute(episode)
        episode = await self._run_ahead(episode)
        try:
            new_etag = await episode.commit(etag, triage.consumed)
        except BaseException:
            if self.ahead is not None:  # work items that may never be written: their runs are not waited for
                self.ahead.drop_ahead(instance_id, episode.execution_id,
                                      [m.event["EventId"] for m in episode.outbound if m.to_work_items])
            raise
        if self.keep_history and episode.final_completion is None:
            self.cache[instance_id] = CachedHistory(episode.execution_id, episode.all_events, new_etag)
            self.cache.move_to_end(instance_id)
            while len(self.cache) > self.cache_capacity:
                self.cache.popitem(last=False)
        else:
            self.cache.pop(instance_id, None)
        return triage.consumed, triage.deferred

    async def _execute(self, episode: Episode) -> None:
        """``episode.execute()``; where it can, on a worker thread that goes straight on into the lone sync
        activity the episode asks for and the episode after it (``Chain``), without waiting for the loop.

        The thread makes the decisions ``_run_ahead`` and ``_run_chained`` would make, from the same state,
        on a slot taken here, and tells the loop as soon as the episode is executed; the loop then takes
        the run over as if it had started it itself. Without that, ReserveTicket's first episode went to a
        thread and back, and its activity to a thread again, each hand-over onto a core that has just
        waited, while the loop also serves the start's message, row and answer.
        """
        here = self._chainable(episode)
        ahead = self.ahead
        if here is None or ahead is None or not await ahead.take_slot():
            await episode.execute()
            return
        name, catalog = here
        loop = asyncio.get_running_loop()
        executed: asyncio.Future[tuple[bool, Event | None]] = loop.create_future()  # (finished, its activity)
        handoff = Handoff()

        def job() -> tuple[Event, Episode | Exception | None] | None:
            try:
                finished = episode.execute_here(name, catalog)
                scheduled = _lone_activity(episode) if finished else None
                activity = ahead.runnable_here(scheduled) if scheduled is not None else None
            except BaseException as exc:
                loop.call_soon_threadsafe(settle, executed, "error", exc)
                raise
            loop.call_soon_threadsafe(settle, executed, "value", (finished, scheduled if activity else None))
            if activity is None or scheduled is None:
                return None
            event = ahead.run_here(activity, scheduled)
            if not handoff.claim():
                return event, None  # the loop has checkpointed without this result
            try:
                following = episode.following([event])
                following.execute_here(name, catalog)
                return event, following
            except Exception as exc:
                return event, exc

        run = ahead.run_in_slot(job)
        run.add_done_callback(lambda f: f.cancelled() or f.exception())  # its failure is raised through executed
        _, scheduled = await executed
        await episode.execute()  # what the thread left: the new generations of a continue-as-new
        if scheduled is not None:
            ahead.adopt(episode.instance_id, episode.execution_id, scheduled["EventId"], run)
            episode.chain = Chain(scheduled, handoff,
                                  cast("asyncio.Future[tuple[Event, Episode | Exception | None]]", run))

    def _chainable(self, episode: Episode) -> tuple[str, FunctionCatalog] | None:
        """The orchestrator (and its catalog) to run ``episode`` with on a worker thread going on into its
        activity (``_execute``), or None when the episode is executed as usual."""
        if (self.ahead is None or self.ahead_window <= 0 or not self.ahead_chained or episode.ran_here is not None
                or self.ahead.running_ahead + 1 > self.ahead_limit
                or any(e["EventType"] == EventType.ExecutionTerminated for e in episode.new_events)):
            return None
        return self._orchestrator_here(episode, [*episode.past, *episode.new_events])

    def _orchestrator_here(self, episode: Episode, events: list[Event]) -> tuple[str, FunctionCatalog] | None:
        """The orchestrator of ``episode`` (and the catalog it was found in) when a worker thread can run it
        by itself, with ``events`` its history so far (not suspended); else None."""
        if is_suspended(events):
            return None
        catalog = self.catalog()
        try:
            name = catalog.resolve("orchestrator", episode.name)
        except ReplayFailure:
            return None
        return (name, catalog) if self.worker.can_invoke_here("orchestrator", name) else None

    async def _run_ahead(self, episode: Episode) -> Episode:
        """Run the activities ``episode`` scheduled, and the episodes their results lead to, before any commit.

        While every activity an episode asks for finishes within the window (counted for each episode), its
        results become the next episode's events at once, and the last episode commits them all: one
        checkpoint and no work items instead of a checkpoint, a work item and its delete per step (a long
        chain still checkpoints whenever its rows would outgrow one table transaction). The stored history
        is the one the separate episodes would have written. Anything else (a timer or event to wait for, a
        slow activity, too many at once, continue-as-new, the end) stops it there, and what was not run
        ahead is sent as usual.
        """
        ahead = self.ahead
        if ahead is None or self.ahead_window <= 0:
            return episode
        while episode.final_completion is None and not episode.generation_started:
            work = _work_ahead(episode)
            chain, episode.chain = episode.chain, None  # it holds its activity slot already
            if not work or (chain is None and ahead.running_ahead + len(work) > self.ahead_limit):
                if chain is not None and not chain.handoff.abandon():
                    await asyncio.wait([chain.run])  # the thread is making the next episode from this one
                return episode  # the chain's work item is written with this checkpoint and waits for its run
            instance_id, execution_id = episode.instance_id, episode.execution_id
            following = await self._following(ahead, episode, [m.event for m in work], chain)
            if following is None:
                return episode  # their work items are written with this checkpoint and wait for these runs
            try:
                await following.execute()
            except Exception:
                log.exception("Running instance '%s' ahead failed; checkpointing what came before", instance_id)
                return episode
            if following.generation_started:
                return episode  # continue-as-new rewrites the episode: keep the generations' checkpoints apart
            ahead.drop_ahead(instance_id, execution_id, [m.event["EventId"] for m in work])
            following.absorb(episode)
            episode = following
        return episode

    async def _following(self, ahead: ActivitiesAhead, episode: Episode, work: list[Event],
                         chain: Chain | None = None) -> Episode | None:
        """The episode the results of ``work`` (run ahead now, or started by ``chain`` already) lead to, or
        None when they take longer than the window.

        A lone sync activity runs on a worker thread, and the next episode right after it on that thread
        (``Episode.execute_here``), unless the window has passed by then: the loop is not woken in between.
        Otherwise each activity runs as a work item would, and the episode is made here.
        """
        instance_id, execution_id = episode.instance_id, episode.execution_id
        if chain is not None:
            chained: tuple[Handoff, asyncio.Future[tuple[Event, Episode | Exception | None]]] | None = (
                chain.handoff, chain.run)
        elif self.ahead_chained and len(work) == 1:
            chained = await self._run_chained(ahead, episode, work[0])
        else:
            chained = None
        if chained is not None:
            handoff, run = chained
            done, _ = await asyncio.wait([run], timeout=self.ahead_window)
            if not done and handoff.abandon():
                return None
            event, following = await run  # the thread took the next episode: it is as good as done
            if isinstance(following, Episode):
                return following
            if isinstance(following, Exception):
                log.error("Preparing the next episode of '%s' on the worker thread failed; running it as usual",
                          instance_id, exc_info=following)
            results = [event]
        else:
            runs = [ahead.run_ahead(instance_id, execution_id, scheduled) for scheduled in work]
            _, pending = await asyncio.wait(runs, timeout=self.ahead_window)
            if pending:
                return None
            results = [run.result() for run in runs]
        return episode.following(results)

    async def _run_chained(
            self, ahead: ActivitiesAhead, episode: Episode, scheduled: Event,
    ) -> tuple[Handoff, asyncio.Future[tuple[Event, Episode | Exception | None]]] | None:
        """Start ``scheduled`` with the next episode to follow on its thread; None when they cannot."""
        here = self._orchestrator_here(episode, episode.all_events)
        if here is None:
            return None
        name, catalog = here
        handoff = Handoff()

        def prepare(result: Event) -> Episode | None:
            if not handoff.claim():
                return None  # the loop has checkpointed without this result
            following = episode.following([result])
            following.execute_here(name, catalog)
            return following

        run = await ahead.run_ahead_then(episode.instance_id, episode.execution_id, scheduled, prepare)
        return None if run is None else (handoff, run)

    async def repair(self, instance_id: str, history: CachedHistory) -> None:
        """Bring the Instances row up to the checkpoint, for a crash between the history and the row write.

        The provider does the same when it finds a finished instance whose row disagrees. The custom
        status lives only in the row, so it is recomputed by replaying the orchestrator over its history.
        """
        started = execution_of(history.events)
        if started is None or history.execution_id is None:
            return
        completion = next((e for e in reversed(history.events) if e["EventType"] == EventType.ExecutionCompleted),
                          None)
        row = await self.hub.get_instance(instance_id, fetch_input=False, fetch_output=False)
        if completion is not None and row is not None and row.execution_id == history.execution_id and (
                row.runtime_status == OrchestrationStatus(completion["OrchestrationStatus"])):
            return
        last = parse_timestamp(history.events[-1]["Timestamp"])
        episode = Episode(self, instance_id, history.execution_id, started, history.events, [], last)
        terminated = completion is not None and completion["OrchestrationStatus"] == OrchestrationStatus.Terminated
        if not terminated and not is_suspended(history.events):
            result = await episode._replay(history.events, [], history.events)
            episode.custom_status, episode.custom_status_known = result.custom_status, True
        log.warning("Repairing the Instances row of '%s' from its history", instance_id)
        await self.hub.update_instance(instance_id, episode.instance_update(history.events))


class Episode:
    """The working state of one episode of one instance."""

    def __init__(self, runner: EpisodeRunner, instance_id: str, execution_id: str, started: Event,
                 past: list[Event], new_events: list[Event], now: datetime) -> None:
        self.runner = runner
        self.hub = runner.hub
        self.instance_id = instance_id
        self.execution_id = execution_id
        self.started = started
        self.past = past
        self.new_events = new_events
        self.now = now
        self.name: str = started["Name"]
        self.parent: dict[str, Any] | None = started.get("ParentInstance")
        self.outbound: list[OutboundMessage] = []
        self.written: list[Event] = []  # rows to append to the current execution
        self.start_index = len(past)
        self.custom_status: str | None = None
        self.custom_status_known = False
        self.final_completion: Completion | None = None
        self.next_generation: Completion | None = None
        self.generation_started = False
        self.generation_base = 0
        self.episode_number = 1 + sum(1 for e in past if e["EventType"] == EventType.OrchestratorStarted)
        # Executed on a worker thread already (``execute_here``): True, or False with new generations left.
        self.ran_here: bool | None = None
        self.chain: Chain | None = None  # its activity already running on that thread

    @property
    def all_events(self) -> list[Event]:
        return self.past + self.written

    @property
    def parent_instance_id(self) -> str | None:
        return (self.parent or {}).get("OrchestrationInstance", {}).get("InstanceId")

    def following(self, results: list[Event]) -> Episode:
        """The next episode of this instance, with ``results`` (of activities it ran ahead) as its new events."""
        return Episode(self.runner, self.instance_id, self.execution_id, self.started, self.all_events, results,
                       max(utcnow(), self.now))

    def absorb(self, previous: Episode) -> None:
        """Take over ``previous``'s uncommitted rows and messages (it ran ahead into this episode);
        the work items it asked for are answered here already, so they are never sent."""
        self.past = previous.past
        self.start_index = previous.start_index
        self.written = previous.written + self.written
        self.outbound = [m for m in previous.outbound if not m.to_work_items] + self.outbound

    # -- running the orchestrator ----------------------------------------------------------------
    async def execute(self) -> None:
        """Run the orchestrator and record what it decided; what ``execute_here`` ran of it already is not
        run again."""
        if self.ran_here:
            return
        if self.ran_here is None:
            payload_history = self._open()
            if payload_history is not None:
                self._apply(await self._replay(self.past, payload_history[len(self.past):], payload_history))
        await self._run_new_generations()
        self._close()

    def execute_here(self, name: str, catalog: FunctionCatalog) -> bool:
        """``execute`` on the calling worker thread, invoking orchestrator ``name`` there (a sync one: see
        ``Worker.can_invoke_here``); False when it continued as new, whose new generations ``execute`` then
        runs on the loop. Only for an episode whose new events need no terminate, suspend or resume."""
        payload_history = self._open()
        if payload_history is not None:
            try:
                outcome: str | FunctionInvocationError = self.runner.worker.invoke_orchestrator_here(
                    name, json.dumps(self._context(payload_history, self.past)))
            except FunctionInvocationError as exc:
                outcome = exc
            self._apply(self._replayed(name, catalog, self.past, payload_history[len(self.past):], outcome))
        self.ran_here = self.next_generation is None
        if self.ran_here:
            self._close()
        return self.ran_here

    def _open(self) -> list[Event] | None:
        """Start the episode's rows; the history its orchestrator replays, or None when it replays nothing
        (terminated, or suspended: events are only recorded then)."""
        opened = new_event(EventType.OrchestratorStarted, timestamp=self.now)
        stored_new = [{**e, "IsPlayed": True} for e in self.new_events]
        self.written = [opened, *stored_new]
        terminated = next((e for e in self.new_events if e["EventType"] == EventType.ExecutionTerminated), None)
        if terminated is not None:
            next_id = sum(1 for e in self.past if e["EventType"] in {
                EventType.TaskScheduled, EventType.TimerCreated, EventType.SubOrchestrationInstanceCreated,
                EventType.EventSent})
            self._complete(Completion(next_id, OrchestrationStatus.Terminated, terminated.get("Input")))
            return None
        if is_suspended(self.all_events):
            return None
        return [*self.past, opened, *self.new_events]

    def _close(self) -> None:
        if not self.generation_started or len(self.written) > self.generation_base:
            self.written.append(new_event(EventType.OrchestratorCompleted, timestamp=self.now))

    async def _run_new_generations(self) -> None:
        """Continue-as-new: DTFx starts the next generation and runs it within the same episode."""
        count = 0
        while self.next_generation is not None:
            completion, self.next_generation = self.next_generation, None
            count += 1
            if count > MAX_CONTINUE_AS_NEW_PER_EPISODE:
                self._complete(Completion(0, OrchestrationStatus.Failed, "continue_as_new was called more than "
                                          f"{MAX_CONTINUE_AS_NEW_PER_EPISODE} times in one episode"))
                return
            self.outbound = []  # work the old generation asked for would be dropped on arrival anyway
            self.execution_id = ids.uuid4_hex()
            new_input = None if completion.result is None else json.dumps(completion.result)
            self.started = execution_started(
                self.instance_id, self.execution_id, self.name, new_input, parent=self.parent,
                tags=self.started.get("Tags"), generation=self.started.get("Generation", 0),
                timestamp=self.now,
            )
            self.past, self.start_index = [], 0
            generation = [
                new_event(EventType.OrchestratorStarted, timestamp=self.now),
                self.started,
                *completion.carryover_events,
                new_event(EventType.OrchestratorCompleted, timestamp=self.now),
            ]
            self.written = list(generation)
            self.generation_started, self.generation_base = True, len(generation)
            self._apply(await self._replay(generation, [], generation))

    async def _replay(self, past: list[Event], new: list[Event], payload_history: list[Event]) -> ReplayResult:
        catalog = self.runner.catalog()
        try:
            name = catalog.resolve("orchestrator", self.name)
        except ReplayFailure as exc:
            # The extension's shim wraps the "doesn't exist" message like any orchestrator failure.
            return ReplayResult([], failed(0, f"Orchestrator function '{self.name}' failed: {exc}"), None)
        try:
            outcome: str | FunctionInvocationError = await self.runner.worker.invoke_orchestrator(
                name, json.dumps(self._context(payload_history, past)))
        except FunctionInvocationError as exc:
            outcome = exc
        return self._replayed(name, catalog, past, new, outcome)

    def _replayed(self, name: str, catalog: FunctionCatalog, past: list[Event], new: list[Event],
                  outcome: str | FunctionInvocationError) -> ReplayResult:
        """What the orchestrator's reply (or failure) decides, checked against the history it replayed."""
        error_stack = ""
        if isinstance(outcome, FunctionInvocationError):
            state = reply_from_failure(outcome.message)
            if state is None:
                return ReplayResult([], failed(0, f"Orchestrator function '{name}' failed: {outcome.message}"), None)
            reply, error_stack = state, outcome.details
        else:
            reply = json.loads(outcome)
        return replay(
            name=name, instance_id=self.instance_id, execution_id=self.execution_id,
            parent_instance_id=self.parent_instance_id, past_events=past, new_events=new, reply=reply,
            catalog=catalog, error_stack=error_stack,
        )

    def _context(self, payload_history: list[Event], past: list[Event]) -> dict[str, Any]:
        """What the extension sends an orchestrator episode (the OrchestrationContext's JSON)."""
        return {
            "history": payload_history,
            "input": parse_token(self.started.get("Input")),  # the JToken the extension puts there
            "instanceId": self.instance_id,
            "isReplaying": any(e["EventType"] == EventType.OrchestratorStarted for e in past),
            "parentInstanceId": self.parent_instance_id,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
            "longRunningTimerIntervalDuration": "3.00:00:00",
            "maximumShortTimerDuration": "6.00:00:00",
            "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
        }

    def _apply(self, result: ReplayResult) -> None:
        self.custom_status = result.custom_status
        self.custom_status_known = True
        for decision in result.decisions:
            self._decide(decision)
        if result.completion is not None:
            self._complete(result.completion)

    def _decide(self, decision: Decision) -> None:
        target = {"InstanceId": self.instance_id, "ExecutionId": self.execution_id}
        if isinstance(decision, ScheduleTask):
            self.written.append(new_event(
                EventType.TaskScheduled, event_id=decision.id, timestamp=self.now, Name=decision.name,
                Version="", Input=decision.input if self.runner.store_inputs else None, Tags=None,
            ))
            # The extension's activity input is a one-element array: the SDK's input text as a string, or
            # the DurableHttpRequest object itself for the built-in HTTP activity.
            message_input = (f"[{decision.input}]" if decision.name == HTTP_ACTIVITY and decision.input
                             else compact_json([decision.input]))
            message_event = new_event(
                EventType.TaskScheduled, event_id=decision.id, timestamp=self.now, Name=decision.name,
                Version="", Input=message_input, Tags=None,
            )
            self._send(message_event, self.instance_id, self.execution_id, to_work_items=True)
        elif isinstance(decision, CreateTimer):
            fire_at = format_timestamp(decision.fire_at)
            self.written.append(new_event(EventType.TimerCreated, event_id=decision.id, timestamp=self.now,
                                          FireAt=fire_at))
            fired = new_event(EventType.TimerFired, timestamp=self.now, TimerId=decision.id, FireAt=fire_at)
            self._send(fired, self.instance_id, self.execution_id, visible_at=decision.fire_at)
        elif isinstance(decision, SendEntityOperation):
            self.written.append(new_event(EventType.EventSent, event_id=decision.id, timestamp=self.now,
                                          InstanceId=decision.instance_id, Name=OPERATION_EVENT,
                                          Input=decision.request))
            self.outbound.append(operation_message(
                decision.instance_id, decision.request, timestamp=self.now, visible_at=decision.visible_at,
                sender={"InstanceId": self.instance_id, "ExecutionId": self.execution_id}))
        else:
            self.written.append(new_event(
                EventType.SubOrchestrationInstanceCreated, event_id=decision.id, timestamp=self.now,
                Name=decision.name, Version="", InstanceId=decision.instance_id,
                Input=decision.input if self.runner.store_inputs else None, Tags=None,
            ))
            child_execution = ids.uuid4_hex()
            parent = {"Name": self.name, "Version": "", "TaskScheduleId": decision.id,
                      "OrchestrationInstance": target}
            child_input = None if decision.input is None else json.dumps(decision.input)
            start = execution_started(decision.instance_id, child_execution, decision.name, child_input,
                                      parent=parent, timestamp=self.now)
            self._send(start, decision.instance_id, child_execution)

    def _send(self, event: Event, instance_id: str, execution_id: str | None, *, to_work_items: bool = False,
              visible_at: datetime | None = None) -> None:
        self.outbound.append(OutboundMessage(
            event=event, instance_id=instance_id, execution_id=execution_id, to_work_items=to_work_items,
            visible_at=visible_at, episode=self.episode_number,
            sender={"InstanceId": self.instance_id, "ExecutionId": self.execution_id},
        ))

    def _complete(self, completion: Completion) -> None:
        if completion.status == OrchestrationStatus.ContinuedAsNew:
            self.next_generation = completion
            return
        self.final_completion = completion
        self.written.append(new_event(
            EventType.ExecutionCompleted, event_id=completion.id, timestamp=self.now,
            OrchestrationStatus=int(completion.status), Result=completion.result,
            FailureDetails=None,
        ))
        if self.parent:
            parent_instance = self.parent["OrchestrationInstance"]
            if completion.status == OrchestrationStatus.Completed:
                reply = new_event(EventType.SubOrchestrationInstanceCompleted, timestamp=self.now,
                                  TaskScheduledId=self.parent["TaskScheduleId"], Result=completion.result)
            else:
                reply = new_event(EventType.SubOrchestrationInstanceFailed, timestamp=self.now,
                                  TaskScheduledId=self.parent["TaskScheduleId"], Reason=completion.result,
                                  Details=completion.details, FailureDetails=None)
            self._send(reply, parent_instance["InstanceId"], parent_instance["ExecutionId"])

    # -- commit ----------------------------------------------------------------------------------
    async def commit(self, etag: str | None, consumed: Sequence[ReceivedMessage] = ()) -> str:
        commit = self._commit(etag, consumed)
        return await (spans.timed("commit", self.instance_id, commit) if spans.on else commit)

    async def _commit(self, etag: str | None, consumed: Sequence[ReceivedMessage]) -> str:
        hub = self.hub
        runner = self.runner
        # A message this process handed over in memory while writing it (a client's ExecutionStarted) may
        # have reached this episode before its queue had it. Nothing is written until it is stored: should
        # the write fail, the sender was told so, and the episode it started must leave no trace (with the
        # provider, an episode only ever runs on a stored message).
        await until_stored(consumed)
        # Consumers here may start on the messages at once (their results queue behind this episode, and
        # after a crash the out-of-order guard holds them until this checkpoint exists, as in DTFx); the
        # history rows are sent once the queues hold every message (the provider's commit order).
        stored: asyncio.Future[None] | None = None
        try:
            if self.outbound and runner.post is not None:
                stored = asyncio.ensure_future(until_stored(runner.post(self.outbound)))
                # One yield: the writes' requests go out first, then the rows are prepared while they are stored.
                await asyncio.sleep(0)
            elif self.outbound:
                await runner.send(self.outbound)
            new_etag = await hub.append_history(self.instance_id, self.execution_id, self.start_index,
                                                self.written, etag if self.start_index else None, after=stored)
        except BaseException:
            if stored is not None:  # given up before waiting for it: each write logs its own failure
                stored.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise
        answered = False
        for message in consumed:  # history holds them now: a client waiting for one hears so
            if message.in_memory is not None and message.in_memory.recorded():
                answered = True
        row_write = runner.row_writes.pop(self.instance_id, None)
        if row_write is not None:
            await asyncio.shield(row_write)  # the client's Pending row must not land after this merge
        if answered:
            # One loop iteration for the answers to go out before the Instances merge is built: the merge's
            # first step puts the new state in the row cache in that same iteration, before any request
            # that follows an answer can be read.
            await asyncio.sleep(0)
        await hub.update_instance(self.instance_id, self.instance_update(self.written))
        if self.final_completion is not None:
            runner.finished(self.instance_id)
        return new_etag

    def instance_update(self, events: list[Event]) -> InstanceUpdate:
        """What a checkpoint of ``events`` sets on the Instances row (the provider's UpdateStateAsync)."""
        update = InstanceUpdate(
            execution_id=self.execution_id, last_updated_time=parse_timestamp(events[-1]["Timestamp"]),
        )
        if self.custom_status_known:
            update.custom_status = self.custom_status or "null"
        for event in events:
            kind = event["EventType"]
            if kind == EventType.ExecutionStarted:
                update.name = event["Name"]
                update.version = event.get("Version") or ""
                update.created_time = parse_timestamp(event["Timestamp"])
                update.runtime_status = OrchestrationStatus.Running
                update.generation = event.get("Generation", 0)
                update.input = event.get("Input")
                if event.get("Tags"):
                    update.tags = json.dumps(event["Tags"])
            elif kind == EventType.ExecutionSuspended:
                update.runtime_status, update.output = OrchestrationStatus.Suspended, event.get("Reason")
            elif kind == EventType.ExecutionResumed:
                update.runtime_status, update.output = OrchestrationStatus.Running, event.get("Reason")
            elif kind == EventType.ExecutionCompleted:
                update.runtime_status = OrchestrationStatus(event["OrchestrationStatus"])
                update.completed_time = parse_timestamp(event["Timestamp"])
                update.output = event.get("Result")
        return update
