"""DTFx history events as plain dicts, in the JSON shape the extension hands to orchestrators.

Keys are PascalCase, ``EventType`` is an int, timestamps are ISO-8601 UTC strings with up to seven
fractional digits and a ``Z``. The task hub turns these dicts into table rows and queue messages; the
engine hands them to the SDK unchanged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

Event = dict[str, Any]


class EventType(IntEnum):
    ExecutionStarted = 0
    ExecutionCompleted = 1
    ExecutionFailed = 2
    ExecutionTerminated = 3
    TaskScheduled = 4
    TaskCompleted = 5
    TaskFailed = 6
    SubOrchestrationInstanceCreated = 7
    SubOrchestrationInstanceCompleted = 8
    SubOrchestrationInstanceFailed = 9
    TimerCreated = 10
    TimerFired = 11
    OrchestratorStarted = 12
    OrchestratorCompleted = 13
    EventSent = 14
    EventRaised = 15
    ContinueAsNew = 16
    GenericEvent = 17
    HistoryState = 18
    ExecutionSuspended = 19
    ExecutionResumed = 20
    ExecutionRewound = 21


class OrchestrationStatus(IntEnum):
    """DTFx ``OrchestrationStatus``: an instance's runtime status everywhere in devhost.

    History events hold the numbers; the Instances table and the HTTP API show the names.
    """

    Running = 0
    Completed = 1
    ContinuedAsNew = 2
    Failed = 3
    Canceled = 4
    Terminated = 5
    Pending = 6
    Suspended = 7


ACTIVE_STATUSES = frozenset({
    OrchestrationStatus.Pending, OrchestrationStatus.Running, OrchestrationStatus.ContinuedAsNew,
    OrchestrationStatus.Suspended,
})
TERMINAL_STATUSES = frozenset({
    OrchestrationStatus.Completed, OrchestrationStatus.Failed, OrchestrationStatus.Terminated,
    OrchestrationStatus.Canceled,
})

# The .NET class behind each event type, used for ``$type`` in queue envelopes.
DOTNET_TYPE = {
    EventType.ExecutionStarted: "ExecutionStartedEvent",
    EventType.ExecutionCompleted: "ExecutionCompletedEvent",
    EventType.ExecutionTerminated: "ExecutionTerminatedEvent",
    EventType.TaskScheduled: "TaskScheduledEvent",
    EventType.TaskCompleted: "TaskCompletedEvent",
    EventType.TaskFailed: "TaskFailedEvent",
    EventType.SubOrchestrationInstanceCreated: "SubOrchestrationInstanceCreatedEvent",
    EventType.SubOrchestrationInstanceCompleted: "SubOrchestrationInstanceCompletedEvent",
    EventType.SubOrchestrationInstanceFailed: "SubOrchestrationInstanceFailedEvent",
    EventType.TimerCreated: "TimerCreatedEvent",
    EventType.TimerFired: "TimerFiredEvent",
    EventType.OrchestratorStarted: "OrchestratorStartedEvent",
    EventType.OrchestratorCompleted: "OrchestratorCompletedEvent",
    EventType.EventSent: "EventSentEvent",
    EventType.EventRaised: "EventRaisedEvent",
    EventType.ContinueAsNew: "ContinueAsNewEvent",
    EventType.GenericEvent: "GenericEvent",
    EventType.HistoryState: "HistoryStateEvent",
    EventType.ExecutionSuspended: "ExecutionSuspendedEvent",
    EventType.ExecutionResumed: "ExecutionResumedEvent",
    EventType.ExecutionRewound: "ExecutionRewoundEvent",
}

# Members stored natively as DateTime in tables (strings in JSON).
DATETIME_MEMBERS = frozenset({"Timestamp", "FireAt", "ScheduledStartTime"})
# Members that are objects in JSON and JSON text in table columns.
COMPLEX_MEMBERS = frozenset(
    {"OrchestrationInstance", "ParentInstance", "Tags", "FailureDetails", "ParentTraceContext", "State"}
)
# Members that hold enum values: ints in JSON, names in tables.
ENUM_MEMBERS = {"OrchestrationStatus": OrchestrationStatus}


def parse_token(text: str | None) -> Any:
    """``ParseToJToken``: JSON text becomes its value; text that is not JSON stays a string."""
    if text is None:
        return None
    if not text.strip():
        return ""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):  # too deep to parse here: shown as the text it is
        return text


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_timestamp(value: datetime) -> str:
    """.NET round-trip style: fractional digits with trailing zeros trimmed, always ``Z``."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if value.year < 1000:  # strftime's %Y does not pad such years; isoformat would
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        if value.microsecond:
            text += "." + f"{value.microsecond:06d}".rstrip("0")
        return text + "Z"
    # isoformat is the same text without strftime's cost (every event and row carries timestamps):
    # "+00:00" is cut, and a fraction is only written when there is one.
    text = value.isoformat()[:-6]
    return (text.rstrip("0") if value.microsecond else text) + "Z"


def parse_timestamp(value: str | datetime) -> datetime:
    """Parse an ISO timestamp with 0-7 fractional digits (Python keeps microseconds)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = f"{head}.{(digits + '000000')[:6]}{rest}"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def status_timestamp(value: datetime | None) -> str | None:
    """``createdTime``/``lastUpdatedTime`` in the status API: seconds precision and ``Z``."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    if value.year < 1000:  # strftime's %Y does not pad such years; isoformat would
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat(timespec="seconds")[:-6] + "Z"


def new_event(event_type: EventType, *, event_id: int = -1, timestamp: datetime | None = None,
              is_played: bool = False, **members: Any) -> Event:
    """An event dict with the four members every event has, plus ``members``."""
    event: Event = {"EventType": int(event_type), **members}
    event["EventId"] = event_id
    event["IsPlayed"] = is_played
    event["Timestamp"] = format_timestamp(timestamp or utcnow())
    return event


def execution_started(instance_id: str, execution_id: str, name: str, input_text: str | None, *,
                      parent: dict[str, Any] | None = None, tags: dict[str, str] | None = None,
                      scheduled_start: datetime | None = None, generation: int = 0,
                      timestamp: datetime | None = None) -> Event:
    return new_event(
        EventType.ExecutionStarted,
        timestamp=timestamp,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=parent,
        Name=name,
        Version="",
        Input=input_text,
        Tags=tags,
        Correlation=None,
        ParentTraceContext=None,
        ScheduledStartTime=format_timestamp(scheduled_start) if scheduled_start else None,
        Generation=generation,
    )
