"""One event of every DTFx type, in the dict shape the engine writes (members as DTFx serialises them)."""

from __future__ import annotations

import uuid
from typing import Any

from devhost.durable.history import Event, EventType

TS7 = "2024-05-01T12:00:00.1234567Z"  # seven fractional digits, more than a Python datetime holds
TS0 = "2024-05-01T12:00:01Z"  # no fraction
TS3 = "2024-05-01T12:00:02.5Z"


def new_hub_name() -> str:
    """A fresh task hub name per test, so tests never see each other's rows or messages."""
    return f"t{uuid.uuid4().hex[:12]}"


def ev(
    event_type: EventType, *, event_id: int = -1, played: bool = False, ts: str = TS7, **members: Any
) -> Event:
    return {"EventType": int(event_type), **members, "EventId": event_id, "IsPlayed": played, "Timestamp": ts}


ALL_EVENTS: list[Event] = [
    ev(
        EventType.ExecutionStarted,
        played=True,
        ts=TS7,
        OrchestrationInstance={"InstanceId": "inst-001", "ExecutionId": "8b1a9953c4611296a827abf8c47804d7"},
        ParentInstance={
            "Name": "Parent",
            "Version": "",
            "TaskScheduleId": 3,
            "OrchestrationInstance": {"InstanceId": "parent-1", "ExecutionId": "p1"},
        },
        Name="MyOrch",
        Version="",
        Input='"\\"Tokyo\\""',
        Tags={"team": "a"},
        Correlation=None,
        ParentTraceContext=None,
        ScheduledStartTime=TS0,
        Generation=2,
        GenerateNewTrace=False,
    ),
    ev(
        EventType.ExecutionCompleted,
        event_id=3,
        ts=TS0,
        OrchestrationStatus=1,
        Result='{"a":1}',
        FailureDetails=None,
    ),
    ev(EventType.ExecutionFailed, ts=TS3),
    ev(EventType.ExecutionTerminated, played=True, Input='"stop"'),
    ev(
        EventType.TaskScheduled,
        event_id=0,
        Name="SayHello",
        Version="",
        Input=None,
        ParentTraceContext=None,
        Tags=None,
    ),
    ev(EventType.TaskCompleted, played=True, ts=TS0, TaskScheduledId=0, Result='"Hello Tokyo!"'),
    ev(
        EventType.TaskFailed,
        played=True,
        TaskScheduledId=1,
        Reason="Activity function 'X' failed: boom",
        Details='{"Message":"boom"}',
        FailureDetails={
            "ErrorType": "Exception",
            "ErrorMessage": "boom",
            "StackTrace": None,
            "InnerFailure": None,
            "IsNonRetriable": False,
        },
    ),
    ev(
        EventType.SubOrchestrationInstanceCreated,
        event_id=2,
        Name="Child",
        Version="",
        InstanceId="child-1",
        Input='"x"',
        ClientSpanId=None,
        Tags=None,
    ),
    ev(EventType.SubOrchestrationInstanceCompleted, played=True, TaskScheduledId=2, Result="42"),
    ev(
        EventType.SubOrchestrationInstanceFailed,
        played=True,
        TaskScheduledId=2,
        Reason="child failed",
        Details=None,
        FailureDetails=None,
    ),
    ev(EventType.TimerCreated, event_id=4, ts=TS3, FireAt="2024-05-01T12:05:00.1234567Z"),
    ev(EventType.TimerFired, played=True, TimerId=4, FireAt="2024-05-01T12:05:00Z"),
    ev(EventType.OrchestratorStarted, ts=TS0),
    ev(EventType.OrchestratorCompleted, ts=TS3),
    ev(
        EventType.EventSent,
        event_id=5,
        InstanceId="@counter@c1",
        Name="op",
        Input='{"id":"1","op":"add","signal":true}',
    ),
    ev(EventType.EventRaised, played=True, Name="Approval", Input='"yes"', ParentTraceContext=None),
    ev(EventType.ContinueAsNew, event_id=6, OrchestrationStatus=2, Result='"42"', FailureDetails=None),
    ev(EventType.GenericEvent, Data="Rewound: TaskFailed"),
    ev(EventType.HistoryState, State={"Name": "MyOrch", "OrchestrationStatus": 0}),
    ev(EventType.ExecutionSuspended, played=True, Reason="pause"),
    ev(EventType.ExecutionResumed, played=True, Reason=None),
    ev(
        EventType.ExecutionRewound,
        Reason="retry",
        ParentExecutionId=None,
        InstanceId=None,
        ParentTraceContext=None,
    ),
]


def episode(*, started_ts: str = TS0) -> list[Event]:
    """A small first episode: OrchestratorStarted, ExecutionStarted, TaskScheduled, OrchestratorCompleted."""
    return [
        ev(EventType.OrchestratorStarted, ts=started_ts),
        ALL_EVENTS[0],
        ALL_EVENTS[4],
        ev(EventType.OrchestratorCompleted, ts=TS3),
    ]
