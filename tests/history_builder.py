"""Build the orchestration-trigger JSON that the Durable extension hands a Python orchestrator.

The shape follows the OrchestratorShim protocol (spec Part A, §A.2): a `history` of DTFx events in
episodes, each `OrchestratorStarted`, the messages that arrived, the scheduling events the episode's
decisions produced, and `OrchestratorCompleted`; the current episode is left open (no trailing
`OrchestratorCompleted`). Sequence ids are handed out as DTFx does, one counter per execution.

    builder = HistoryBuilder(input="u-1", name="ReserveTicket", start=T0)
    builder.started().scheduled("CalculateDiscount")       # episode 1
    builder.episode(T0 + 2 s).completed(0, 15)            # episode 2 (current)
    payload = builder.to_json()

Payload encodings (§A.2.5): inputs the Python client started with, and event data it raised, are
double-encoded (`via="client"`); raw HTTP callers are single-encoded (`via="raw"`).
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, Literal, Self

Via = Literal["client", "raw"]

DEFAULT_START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


class EventType(IntEnum):
    """DTFx `EventType` numbers used here."""

    EXECUTION_STARTED = 0
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_RAISED = 15


# Events delivered by messages; DTFx stores them IsPlayed=true once their episode has run (§A.2.4).
MESSAGE_EVENTS = frozenset(
    {
        EventType.EXECUTION_STARTED,
        EventType.TASK_COMPLETED,
        EventType.TASK_FAILED,
        EventType.TIMER_FIRED,
        EventType.EVENT_RAISED,
    }
)
SCHEDULING_EVENTS = frozenset({EventType.TASK_SCHEDULED, EventType.TIMER_CREATED})


def dotnet_iso(moment: datetime) -> str:
    """ISO-8601 UTC the way Newtonsoft writes DTFx times: `Z`, fraction only when non-zero."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def encode_payload(value: Any, via: Via) -> str:
    """The raw history text of `value` as it arrives from the Python client or a raw HTTP caller."""
    text = json.dumps(value)
    # The Python client POSTs json.dumps(value) as a JSON *string*; the extension stores that string.
    return json.dumps(text) if via == "client" else text


@dataclass
class _Episode:
    at: datetime
    events: list[dict[str, Any]] = field(default_factory=list)
    has_scheduling: bool = False


class HistoryBuilder:
    """Fluent builder of an orchestration history and the trigger payload around it."""

    def __init__(
        self,
        input: Any = None,
        *,
        name: str = "Orchestrator",
        instance_id: str = "inst-001",
        start: datetime = DEFAULT_START,
        via: Via = "client",
    ) -> None:
        self.name = name
        self.instance_id = instance_id
        self.input = input
        self.via = via
        self._episodes: list[_Episode] = [_Episode(at=start)]
        self._next_sequence_id = 0
        self._timers: dict[int, str] = {}

    # -- episodes -------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The `OrchestratorStarted` time of the current (last) episode."""
        return self._episodes[-1].at

    def episode(self, at: datetime | None = None, *, after: timedelta | None = None) -> Self:
        """Close the current episode and open the next one at `at` (or `after` the current one)."""
        if at is None:
            at = self.now + (after if after is not None else timedelta(seconds=1))
        if at < self.now:
            raise ValueError("episodes must not go back in time")
        self._episodes.append(_Episode(at=at))
        return self

    def _add(self, event_type: EventType, event_id: int = -1, **members: Any) -> None:
        current = self._episodes[-1]
        if event_type in MESSAGE_EVENTS and current.has_scheduling:
            # DTFx appends an episode's incoming messages before the events its decisions produce.
            raise ValueError(f"{event_type.name} must come before the episode's scheduling events")
        if event_type in SCHEDULING_EVENTS:
            current.has_scheduling = True
        current.events.append(
            {
                "EventType": int(event_type),
                **members,
                "EventId": event_id,
                "IsPlayed": False,
                "Timestamp": dotnet_iso(current.at),
            }
        )

    def _sequence_id(self, event_id: int | None) -> int:
        if event_id is None:
            event_id = self._next_sequence_id
        self._next_sequence_id = max(self._next_sequence_id, event_id + 1)
        return event_id

    # -- message events -------------------------------------------------------------------------

    def started(self) -> Self:
        """`ExecutionStarted`, carrying the input encoded as the starter delivered it."""
        raw_input = "null" if self.input is None else encode_payload(self.input, self.via)
        self._add(
            EventType.EXECUTION_STARTED,
            OrchestrationInstance={"InstanceId": self.instance_id, "ExecutionId": "8b1a9953c4611296a827abf8c47804d7"},
            ParentInstance=None,
            Name=self.name,
            Version="",
            Input=raw_input,
            Tags=None,
            Correlation=None,
            ParentTraceContext=None,
            ScheduledStartTime=None,
            Generation=0,
            GenerateNewTrace=False,
        )
        return self

    def completed(self, task_scheduled_id: int, result: Any) -> Self:
        """`TaskCompleted` of the activity scheduled with sequence id `task_scheduled_id`."""
        # The extension re-serialises the activity's return value: single-encoded JSON text.
        self._add(EventType.TASK_COMPLETED, TaskScheduledId=task_scheduled_id, Result=json.dumps(result))
        return self

    def failed(self, task_scheduled_id: int, message: str, name: str = "Activity") -> Self:
        """`TaskFailed` of the activity scheduled with sequence id `task_scheduled_id`."""
        self._add(
            EventType.TASK_FAILED,
            TaskScheduledId=task_scheduled_id,
            Reason=f"Activity function '{name}' failed: {message}",
            Details=json.dumps({"message": message}),
            FailureDetails=None,
        )
        return self

    def timer_fired(self, timer_id: int) -> Self:
        """`TimerFired` for the timer created with sequence id `timer_id`."""
        if timer_id not in self._timers:
            raise ValueError(f"no timer with id {timer_id} was created")
        self._add(EventType.TIMER_FIRED, TimerId=timer_id, FireAt=self._timers[timer_id])
        return self

    def raised(self, name: str, data: Any = None, *, via: Via = "client") -> Self:
        """`EventRaised` with `data` encoded as the Python client (default) or a raw caller sends it."""
        self._add(EventType.EVENT_RAISED, Name=name, Input=encode_payload(data, via), ParentTraceContext=None)
        return self

    def raised_text(self, name: str, raw_input: str) -> Self:
        """`EventRaised` with an exact raw `Input` text, for encodings spelled out by hand."""
        self._add(EventType.EVENT_RAISED, Name=name, Input=raw_input, ParentTraceContext=None)
        return self

    # -- scheduling events (what the previous replies' decisions became) -------------------------

    def scheduled(self, name: str, *, event_id: int | None = None) -> Self:
        """`TaskScheduled` (Input null: `storeInputsInOrchestrationHistory` is off by default)."""
        event_id = self._sequence_id(event_id)
        self._add(
            EventType.TASK_SCHEDULED,
            event_id,
            Name=name,
            Version="",
            Input=None,
            ParentTraceContext=None,
            Tags=None,
        )
        return self

    def timer_created(self, fire_at: datetime | str, *, event_id: int | None = None) -> Self:
        """`TimerCreated`; `fire_at` may be the `fireAt` string of the SDK's CreateTimer action."""
        event_id = self._sequence_id(event_id)
        fire_text = dotnet_iso(parse_fire_at(fire_at) if isinstance(fire_at, str) else fire_at)
        self._timers[event_id] = fire_text
        self._add(EventType.TIMER_CREATED, event_id, FireAt=fire_text)
        return self

    # -- output ---------------------------------------------------------------------------------

    def history(self) -> list[dict[str, Any]]:
        """Every event, past episodes closed by `OrchestratorCompleted`, the current one left open."""
        events: list[dict[str, Any]] = []
        last = len(self._episodes) - 1
        for index, episode in enumerate(self._episodes):
            stamp = dotnet_iso(episode.at)
            events.append(self._bare(EventType.ORCHESTRATOR_STARTED, stamp))
            for event in episode.events:
                played = index < last and event["EventType"] in MESSAGE_EVENTS
                events.append({**event, "IsPlayed": played})
            if index < last:
                events.append(self._bare(EventType.ORCHESTRATOR_COMPLETED, stamp))
        return events

    @staticmethod
    def _bare(event_type: EventType, stamp: str) -> dict[str, Any]:
        return {"EventType": int(event_type), "EventId": -1, "IsPlayed": False, "Timestamp": stamp}

    def payload(self) -> dict[str, Any]:
        """The trigger payload (§A.2.1) as a dict."""
        history = self.history()
        started = next(e for e in history if e["EventType"] == EventType.EXECUTION_STARTED)
        return {
            "history": history,
            # The extension parses ExecutionStarted.Input back into a JSON token.
            "input": json.loads(started["Input"]),
            "instanceId": self.instance_id,
            "isReplaying": started["IsPlayed"],
            "parentInstanceId": None,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
            "longRunningTimerIntervalDuration": "3.00:00:00",
            "maximumShortTimerDuration": "6.00:00:00",
            "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
        }

    def to_json(self) -> str:
        """The trigger payload as the JSON string the worker passes to the orchestrator."""
        return json.dumps(self.payload())


def parse_fire_at(text: str) -> datetime:
    """Parse an SDK `fireAt` (`%Y-%m-%dT%H:%M:%S.%fZ`) or a DTFx time string."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
