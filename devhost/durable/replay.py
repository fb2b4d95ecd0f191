"""What the Durable extension and DTFx do with an orchestrator's reply, as a pure function.

The SDK replies with every action since the execution began. The extension's shim re-issues them,
in order, against DTFx's orchestration context while DTFx replays history: each action gets the next
sequence id, past scheduling events must match the action holding their id (else the orchestration
is nondeterministic), completion events resolve open tasks and their continuations run at once,
and actions history has not seen become this episode's decisions.

That control flow is reproduced here with a few synchronous futures and generator coroutines, so that
retries, WhenAll/WhenAny and cancelled timers number their ids exactly as DTFx does.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from devhost.durable.durable_http import (
    DEFAULT_ASYNC_SLEEP_MS,
    HTTP_ACTIVITY,
    DurableHttpError,
    durable_http_request,
    header,
    location_poll_request,
)
from devhost.durable.entities.messages import deterministic_guid, request_message
from devhost.durable.failure_details import orchestration_failure_details
from devhost.durable.history import Event, EventType, OrchestrationStatus, parse_timestamp

# ---------------------------------------------------------------------------------------------
# Decisions and the episode result
# ---------------------------------------------------------------------------------------------


@dataclass
class ScheduleTask:
    id: int
    name: str
    input: str | None


@dataclass
class CreateTimer:
    id: int
    fire_at: datetime


@dataclass
class CreateSubOrchestration:
    id: int
    name: str
    instance_id: str
    input: str | None


@dataclass
class SendEntityOperation:
    """An operation sent to an entity (history: EventSent; message: EventRaised ``op``)."""

    id: int
    instance_id: str  # the entity's @name@key
    request: str  # the RequestMessage JSON
    visible_at: datetime | None = None  # a scheduled signal


Decision = ScheduleTask | CreateTimer | CreateSubOrchestration | SendEntityOperation


@dataclass
class Completion:
    """How the execution ended in this episode."""

    id: int
    status: OrchestrationStatus  # Completed | Failed | Terminated | ContinuedAsNew
    result: str | None  # output JSON text, failure reason, terminate reason, or the new input
    carryover_events: list[Event] = field(default_factory=list)
    details: str | None = None  # a failure's Details, handed to a parent orchestration


@dataclass
class ReplayResult:
    decisions: list[Decision]
    completion: Completion | None
    custom_status: str | None  # compact JSON text, None when the reply set none


class ReplayFailure(Exception):
    """The orchestration fails outright (nondeterminism, unknown function, bad reply, status too large)."""


# ---------------------------------------------------------------------------------------------
# Synchronous futures: .NET runs task continuations inline while DTFx replays events
# ---------------------------------------------------------------------------------------------


class TaskFailure(Exception):
    """An activity, sub-orchestration or retry attempt failed."""


class OrchestratorError(TaskFailure):
    """The orchestrator's reply carries an ``error``: the function itself failed."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(reason)
        self.error = error


class Cancelled(Exception):
    """A cancelled durable timer."""


class Future:
    __slots__ = ("_callbacks", "done", "error", "value")

    def __init__(self) -> None:
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None
        self._callbacks: list[Callable[[Future], None]] = []

    def set_result(self, value: Any) -> None:
        if self.done:
            return
        self.done, self.value = True, value
        self._fire()

    def set_error(self, error: BaseException) -> None:
        if self.done:
            return
        self.done, self.error = True, error
        self._fire()

    def add_callback(self, callback: Callable[[Future], None]) -> None:
        if self.done:
            callback(self)
        else:
            self._callbacks.append(callback)

    def _fire(self) -> None:
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)


Coroutine = Generator[Future, Any, Any]


def spawn(coro: Coroutine) -> Future:
    """Run ``coro`` until it waits on a future that is not done; resume it inline when it is."""
    result = Future()

    def step(send_value: Any = None, error: BaseException | None = None) -> None:
        while True:
            try:
                awaited = coro.throw(error) if error is not None else coro.send(send_value)
            except StopIteration as stop:
                result.set_result(stop.value)
                return
            except (TaskFailure, Cancelled, ReplayFailure) as exc:
                result.set_error(exc)
                return
            if not awaited.done:
                awaited.add_callback(lambda f: step(f.value, f.error))
                return
            send_value, error = awaited.value, awaited.error

    step()
    return result


def when_all(children: list[Future]) -> Future:
    result = Future()
    remaining = [len(children)]
    if not children:
        result.set_result([])
        return result

    def on_done(_: Future) -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            failed = next((c.error for c in children if c.error is not None), None)
            if failed is not None:
                result.set_error(failed)
            else:
                result.set_result([c.value for c in children])

    for child in children:
        child.add_callback(on_done)
    return result


def when_any(children: list[Future]) -> Future:
    result = Future()
    for child in children:
        # Task.WhenAny completes with the first child to finish, faulted or cancelled ones included.
        child.add_callback(lambda c: result.set_result(c))
    return result


# ---------------------------------------------------------------------------------------------
# The replay
# ---------------------------------------------------------------------------------------------

ACTION_NAMES = {
    0: "CallActivity", 1: "CallActivityWithRetry", 2: "CallSubOrchestrator", 3: "CallSubOrchestratorWithRetry",
    4: "ContinueAsNew", 5: "CreateTimer", 6: "WaitForExternalEvent", 7: "CallEntity", 8: "CallHttp",
    9: "SignalEntity", 10: "ScheduledSignalEntity", 11: "WhenAny", 12: "WhenAll",
}
SCHEDULING_EVENTS = {
    EventType.TaskScheduled: ScheduleTask,
    EventType.TimerCreated: CreateTimer,
    EventType.SubOrchestrationInstanceCreated: CreateSubOrchestration,
    EventType.EventSent: SendEntityOperation,
}
CUSTOM_STATUS_LIMIT_KB = 16


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def check_custom_status(custom_status: Any) -> str:
    """Serialize compactly and apply the extension's 16 KB (UTF-16, floor-KB) limit."""
    text = compact_json(custom_status)
    size_kb = len(text.encode("utf-16-le")) // 1024
    if size_kb > CUSTOM_STATUS_LIMIT_KB:
        raise ReplayFailure(
            "The UTF-16 size of the JSON-serialized payload must not exceed 16 KB. "
            f"The current payload size is {size_kb} KB."
        )
    return text


@dataclass
class FunctionCatalog:
    """Registered durable function names, for the extension's existence checks (case-insensitive)."""

    orchestrators: Iterable[str]
    activities: Iterable[str]
    entities: Iterable[str] = ()

    def resolve(self, kind: str, name: str) -> str:
        names = list({"orchestrator": self.orchestrators, "entity": self.entities}.get(kind, self.activities))
        for known in names:
            if known.lower() == name.lower():
                return known
        known_text = ", ".join(f"'{n}'" for n in names) or None
        if kind == "entity" and list(self.orchestrators):
            known_text = f"'{', '.join(names)}'"  # the extension lists entities whenever orchestrators exist
        extra = (f"The following are the known {kind} functions: {known_text}." if known_text
                 else f"No {kind} functions are currently registered!")
        raise ReplayFailure(
            f"The function '{name}' doesn't exist, is disabled, or is not an {kind} function. "
            f"Additional info: {extra}"
        )


class _Replayer:
    def __init__(self, *, name: str, instance_id: str, execution_id: str, parent_instance_id: str | None,
                 reply: dict[str, Any], catalog: FunctionCatalog, error_stack: str = "") -> None:
        self.name = name
        self.error_stack = error_stack
        self.custom_text: str | None = None  # the reply's custom status, compact JSON
        self.guid_counter = 0  # NewGuid's counter, for entity request ids
        self.instance_id = instance_id
        self.execution_id = execution_id
        self.parent_instance_id = parent_instance_id
        self.reply = reply
        self.catalog = catalog
        self.id_counter = 0
        self.now: datetime | None = None
        self.pending: dict[int, Decision] = {}  # DTFx's orchestratorActionsMap
        self.open_tasks: dict[int, Future] = {}
        self.waiters: dict[str, list[Future]] = {}
        self.buffered: dict[str, deque[Any]] = {}
        self.shim: Future | None = None
        self.failure: str | None = None  # set when the execution fails outright
        self.continue_as_new: str | None = None
        self.carryover: list[Event] = []
        self.terminated: str | None = None
        self.terminated_seen = False

    # -- DTFx context operations ---------------------------------------------------------------
    def _next_id(self) -> int:
        value = self.id_counter
        self.id_counter += 1
        return value

    def _schedule(self, decision: Decision) -> Future:
        future = Future()
        self.pending[decision.id] = decision
        self.open_tasks[decision.id] = future
        return future

    def schedule_task(self, name: str, input_text: str | None) -> Future:
        return self._schedule(ScheduleTask(self._next_id(), self.catalog.resolve("activity", name), input_text))

    def create_sub_orchestration(self, name: str, instance_id: str | None, input_text: str | None) -> Future:
        resolved = self.catalog.resolve("orchestrator", name)
        seq = self._next_id()
        child = instance_id or f"{self.execution_id}:{seq}"
        if child in (self.instance_id, self.parent_instance_id) or child.startswith("@"):
            raise ReplayFailure(f"Invalid sub-orchestration instance id '{child}'.")
        return self._schedule(CreateSubOrchestration(seq, resolved, child, input_text))

    def create_timer(self, fire_at: datetime, cancelled: bool = False) -> Future:
        timer_id = self._next_id()
        future = self._schedule(CreateTimer(timer_id, fire_at))
        if cancelled:
            # The timer is still created, but it no longer keeps the orchestration open.
            del self.open_tasks[timer_id]
            future.set_error(Cancelled())
        return future

    def wait_for_event(self, name: str) -> Future:
        future = Future()
        queue = self.buffered.get(name)
        if queue:
            future.set_result(queue.popleft())
        else:
            self.waiters.setdefault(name, []).append(future)
        return future

    # -- the shim: issue the reply's actions one after another --------------------------------
    def run_shim(self) -> Coroutine:
        if self.reply.get("schemaVersion", 0) not in (1, 2, "V2", "V3"):
            raise ReplayFailure("devhost speaks the V2/V3 out-of-proc schema only; the reply used the original one")
        actions = self.reply.get("actions") or [[]]
        if len(actions) != 1:
            raise ReplayFailure(
                f"Expected exactly one list of actions in the V2/V3 reply, got {len(actions)}."
            )
        for action in actions[0]:
            try:
                yield self.start(action)
            except (TaskFailure, Cancelled):
                pass  # the shim swallows task failures; the SDK has already seen them
        error = self.reply.get("error")
        if error:
            raise OrchestratorError(f"Orchestrator function '{self.name}' failed: {error}", str(error))
        return self.reply.get("output")

    def start(self, action: dict[str, Any]) -> Future:
        kind = action.get("actionType")
        if kind in (0, "CallActivity"):
            return self.schedule_task(action["functionName"], action.get("input"))
        if kind in (1, "CallActivityWithRetry"):
            options = action.get("retryOptions") or {}
            return spawn(self.with_retry(lambda: self.schedule_task(action["functionName"], action.get("input")),
                                         options))
        if kind in (2, "CallSubOrchestrator"):
            return self.create_sub_orchestration(action["functionName"], action.get("instanceId"),
                                                 action.get("input"))
        if kind in (3, "CallSubOrchestratorWithRetry"):
            options = action.get("retryOptions") or {}
            return spawn(self.with_retry(
                lambda: self.create_sub_orchestration(action["functionName"], action.get("instanceId"),
                                                      action.get("input")), options))
        if kind in (4, "ContinueAsNew"):
            self.continue_as_new = action.get("input")
            done = Future()
            done.set_result(None)
            return done
        if kind in (5, "CreateTimer"):
            return self.create_timer(parse_timestamp(action["fireAt"]), bool(action.get("isCanceled")))
        if kind in (6, "WaitForExternalEvent"):
            return self.wait_for_event(action["externalEventName"])
        if kind in (11, "WhenAny"):
            return when_any([self.start(child) for child in action.get("compoundActions", [])])
        if kind in (12, "WhenAll"):
            return when_all([self.start(child) for child in action.get("compoundActions", [])])
        if kind in (7, 9, 10, "CallEntity", "SignalEntity", "ScheduledSignalEntity"):
            return self.send_entity_operation(action, call=kind in (7, "CallEntity"),
                                              scheduled=kind in (10, "ScheduledSignalEntity"))
        if kind in (8, "CallHttp"):
            try:
                request = durable_http_request(action.get("httpRequest"))
            except DurableHttpError as exc:
                raise ReplayFailure(str(exc)) from None
            return spawn(self.call_http(request))
        raise ReplayFailure(f"Unknown action type {kind!r} in the orchestrator's reply.")

    def send_entity_operation(self, action: dict[str, Any], *, call: bool, scheduled: bool) -> Future:
        """call_entity waits for the answer named by the request id; a signal is done once sent."""
        target = str(action.get("instanceId") or "")
        if not target.startswith("@") or "@" not in target[1:]:
            raise ReplayFailure(f"Invalid entity instance id '{target}'.")
        self.catalog.resolve("entity", target[1:].split("@", 1)[0])  # as CallDurableTaskFunctionAsync checks
        assert self.now is not None
        self.guid_counter += 1
        request_id = deterministic_guid(self.instance_id, self.now, self.guid_counter - 1)
        due = parse_timestamp(action["fireAt"]) if scheduled and action.get("fireAt") else None
        request = request_message(
            request_id=request_id, operation=str(action.get("operation") or ""), input_text=action.get("input"),
            signal=not call, parent=self.instance_id if call else None,
            parent_execution=self.execution_id if call else None, timestamp=self.now, scheduled_time=due,
        )
        decision = SendEntityOperation(self._next_id(), target, request, due)
        self.pending[decision.id] = decision  # sending completes at once: no open task keeps the id
        if call:
            return self.wait_for_event(request_id)
        sent = Future()
        sent.set_result(None)
        return sent

    def schedule_http(self, request: dict[str, Any]) -> Future:
        """The reserved HTTP activity; it is no function of the app, so the existence check is skipped."""
        return self._schedule(ScheduleTask(self._next_id(), HTTP_ACTIVITY, compact_json(request)))

    def call_http(self, request: dict[str, Any]) -> Coroutine:
        """The extension's CallHttpAsync: one HTTP activity, then, for a 202, a timer and a poll of Location."""
        response_text = yield self.schedule_http(request)
        while request["asynchronousPatternEnabled"]:
            response = json.loads(response_text or "{}")
            if response.get("statusCode") != 202:
                break
            headers = response.get("headers")
            retry_after = header(headers, "Retry-After")
            assert self.now is not None
            if retry_after is None:
                delay = timedelta(milliseconds=DEFAULT_ASYNC_SLEEP_MS)
            elif retry_after.strip().lstrip("+-").isdigit():
                delay = timedelta(seconds=int(retry_after))
            else:  # int.Parse throws, and the call fails
                raise TaskFailure("The input string '" + retry_after + "' was not in a correct format.")
            yield self.create_timer(self.now + delay)
            location = header(headers, "Location")
            if location is None:
                raise TaskFailure("The given key 'Location' was not present in the dictionary.")
            request = location_poll_request(request, location)
            response_text = yield self.schedule_http(request)
        return response_text

    def with_retry(self, attempt: Callable[[], Future], options: dict[str, Any]) -> Coroutine:
        """DTFx's RetryInterceptor: one id per attempt and per retry timer, plus a last timer."""
        first_ms = float(options.get("firstRetryIntervalInMilliseconds", 0))
        max_attempts = int(options.get("maxNumberOfAttempts", 1))
        backoff = float(options.get("backoffCoefficient", 1.0))
        max_ms = float(options.get("maxRetryIntervalInMilliseconds", float("inf")))
        timeout_ms = options.get("retryTimeoutInMilliseconds")
        assert self.now is not None
        first_attempt = self.now
        last_error: BaseException | None = None
        for retry_count in range(max_attempts):
            try:
                return (yield attempt())
            except TaskFailure as exc:
                last_error = exc
            if retry_count == max_attempts - 1:
                break
            delay_ms = min(first_ms * backoff**retry_count, max_ms)
            expired = timeout_ms is not None and self.now >= first_attempt + timedelta(milliseconds=float(timeout_ms))
            if delay_ms <= 0 or expired:
                break
            yield self.create_timer(self.now + timedelta(milliseconds=delay_ms))
        # The SDK waits on one more (zero-delay) timer before it surfaces the last failure.
        yield self.create_timer(self.now)
        assert last_error is not None
        raise last_error

    # -- history events ----------------------------------------------------------------------
    def apply(self, event: Event, *, is_new: bool) -> None:
        kind = event["EventType"]
        if kind == EventType.OrchestratorStarted:
            self.now = parse_timestamp(event["Timestamp"])
        elif kind == EventType.ExecutionStarted:
            custom = self.reply.get("customStatus")
            if custom is not None:
                # The extension sets the custom status before it issues any action: one over the limit
                # fails the episode with nothing scheduled.
                try:
                    self.custom_text = check_custom_status(custom)
                except ReplayFailure as exc:
                    self.failure = f"Orchestrator function '{self.name}' failed: {exc}"
                    return
            try:
                self.shim = spawn(self.run_shim())
            except ReplayFailure as exc:
                self.failure = f"Orchestrator function '{self.name}' failed: {exc}"
        elif kind in SCHEDULING_EVENTS:
            self.match_scheduled(event)
        elif kind in (EventType.TaskCompleted, EventType.SubOrchestrationInstanceCompleted):
            future = self.open_tasks.pop(event["TaskScheduledId"], None)
            if future is not None:
                future.set_result(event.get("Result"))
        elif kind in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed):
            future = self.open_tasks.pop(event["TaskScheduledId"], None)
            if future is not None:
                future.set_error(TaskFailure(event.get("Reason") or ""))
        elif kind == EventType.TimerFired:
            future = self.open_tasks.pop(event["TimerId"], None)
            if future is not None:
                future.set_result(None)
        elif kind == EventType.EventRaised:
            if self.continue_as_new is not None and is_new:
                self.carryover.append(event)
                return
            name = event.get("Name") or ""
            waiters = self.waiters.get(name)
            if waiters:
                waiters.pop().set_result(event.get("Input"))  # the newest waiter gets it, as in the extension
            else:
                self.buffered.setdefault(name, deque()).append(event.get("Input"))
        elif kind == EventType.ExecutionTerminated:
            self.terminated = event.get("Input")
            self.terminated_seen = True

    def match_scheduled(self, event: Event) -> None:
        event_id = event["EventId"]
        if self.failure is not None or event_id == -100:  # -100: DTFx's internal throttling timer
            return
        expected_type = SCHEDULING_EVENTS[event["EventType"]]
        history_name = EventType(event["EventType"]).name
        decision = self.pending.get(event_id)
        label = f"{history_name} with EventId {event_id}"
        if event.get("Name"):
            label += f" (name '{event['Name']}')"
        if decision is None:
            self.failure = (
                f"Non-Deterministic workflow detected: history has {label}, but the orchestrator hasn't "
                "(yet?) scheduled this task."
            )
            return
        if not isinstance(decision, expected_type):
            self.failure = (
                f"Non-Deterministic workflow detected: history has {label}, but the orchestrator instead "
                f"produced a {type(decision).__name__} action."
            )
            return
        if isinstance(decision, ScheduleTask | CreateSubOrchestration) and (
            decision.name.lower() != str(event.get("Name", "")).lower()
        ):
            self.failure = (
                f"Non-Deterministic workflow detected: history has {label}, but the orchestrator "
                f"scheduled '{decision.name}' instead."
            )
            return
        del self.pending[event_id]

    # -- the end of the episode ----------------------------------------------------------------
    def finish(self) -> ReplayResult:
        decisions = [self.pending[k] for k in sorted(self.pending)]
        completion: Completion | None = None
        if self.terminated_seen:
            completion = Completion(self._next_id(), OrchestrationStatus.Terminated, self.terminated)
        elif self.failure is not None:
            completion = failed(self._next_id(), self.failure)
        elif self.shim is not None and self.shim.done and not self.open_tasks:
            if isinstance(self.shim.error, ReplayFailure):
                completion = failed(self._next_id(), f"Orchestrator function '{self.name}' failed: {self.shim.error}")
            elif isinstance(self.shim.error, OrchestratorError):
                completion = Completion(self._next_id(), OrchestrationStatus.Failed, str(self.shim.error),
                                        details=f"Message: {self.shim.error.error}, StackTrace: {self.error_stack}")
            elif self.shim.error is not None:
                completion = failed(self._next_id(), str(self.shim.error))
            elif self.reply.get("isDone"):
                if self.continue_as_new is not None:
                    completion = Completion(self._next_id(), OrchestrationStatus.ContinuedAsNew, self.continue_as_new,
                                            self.carryover)
                else:
                    output = self.reply.get("output")
                    completion = Completion(self._next_id(), OrchestrationStatus.Completed,
                                            None if output is None else compact_json(output))
        return ReplayResult(decisions, completion, self.custom_text)


def failed(event_id: int, reason: str) -> Completion:
    """A failed completion with the details DTFx gives it: the serialized OrchestrationFailureException."""
    return Completion(event_id, OrchestrationStatus.Failed, reason, details=orchestration_failure_details(reason))


def replay(*, name: str, instance_id: str, execution_id: str, parent_instance_id: str | None,
           past_events: list[Event], new_events: list[Event], reply: dict[str, Any],
           catalog: FunctionCatalog, error_stack: str = "") -> ReplayResult:
    """Apply ``reply`` to the history as DTFx would and return this episode's decisions and completion.

    ``error_stack`` is the stack of the failed invocation that carried the reply, for the failure details.
    """
    replayer = _Replayer(name=name, instance_id=instance_id, execution_id=execution_id,
                         parent_instance_id=parent_instance_id, reply=reply, catalog=catalog,
                         error_stack=error_stack)
    for event in past_events:
        replayer.apply(event, is_new=False)
    for event in new_events:
        replayer.apply(event, is_new=True)
    return replayer.finish()


def reply_from_failure(message: str) -> dict[str, Any] | None:
    """The orchestrator state the SDK embeds in its exception text, after ``$OutOfProcData$:``."""
    marker = "$OutOfProcData$:"
    if marker not in message:
        return None
    text = message.split(marker, 1)[1]
    text = text.split("\nStack:", 1)[0].strip()
    try:
        state = json.loads(text)
    except json.JSONDecodeError:
        return None
    return state if isinstance(state, dict) else None
