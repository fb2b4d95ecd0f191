"""The history builder reproduces the extension's payload (spec Part A §A.2.1 example and §A.2.4 flags)."""

import json
from datetime import timedelta

import pytest

from tests.history_builder import DEFAULT_START as T0
from tests.history_builder import HistoryBuilder, dotnet_iso, encode_payload

# Spec §A.2.1: episode 2 of a run started by the Python client with input "Tokyo".
SPEC_EXAMPLE = {
    "history": [
        {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": "2024-05-01T12:00:00Z"},
        {
            "EventType": 0,
            "EventId": -1,
            "IsPlayed": True,
            "Timestamp": "2024-05-01T12:00:00Z",
            "OrchestrationInstance": {"InstanceId": "inst-001", "ExecutionId": "8b1a9953c4611296a827abf8c47804d7"},
            "ParentInstance": None,
            "Name": "MyOrch",
            "Version": "",
            "Input": '"\\"Tokyo\\""',
            "Tags": None,
            "Correlation": None,
            "ParentTraceContext": None,
            "ScheduledStartTime": None,
            "Generation": 0,
            "GenerateNewTrace": False,
        },
        {
            "EventType": 4,
            "EventId": 0,
            "IsPlayed": False,
            "Timestamp": "2024-05-01T12:00:00Z",
            "Name": "SayHello",
            "Version": "",
            "Input": None,
            "ParentTraceContext": None,
            "Tags": None,
        },
        {"EventType": 13, "EventId": -1, "IsPlayed": False, "Timestamp": "2024-05-01T12:00:00Z"},
        {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": "2024-05-01T12:00:02Z"},
        {
            "EventType": 5,
            "EventId": -1,
            "IsPlayed": False,
            "Timestamp": "2024-05-01T12:00:02Z",
            "TaskScheduledId": 0,
            "Result": '"Hello Tokyo!"',
        },
    ],
    "input": '"Tokyo"',
    "instanceId": "inst-001",
    "isReplaying": True,
    "parentInstanceId": None,
    "upperSchemaVersion": 1,
    "upperSchemaVersionNew": 2,
    "longRunningTimerIntervalDuration": "3.00:00:00",
    "maximumShortTimerDuration": "6.00:00:00",
    "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
}


def test_reproduces_the_spec_example() -> None:
    """Two episodes built fluently equal the extension's payload in the spec, event for event."""
    builder = HistoryBuilder(input="Tokyo", name="MyOrch").started().scheduled("SayHello")
    builder.episode(T0 + timedelta(seconds=2)).completed(0, "Hello Tokyo!")
    assert json.loads(builder.to_json()) == SPEC_EXAMPLE


def test_first_episode_is_not_replaying() -> None:
    """In episode 1 nothing is played yet and there is no trailing OrchestratorCompleted."""
    payload = HistoryBuilder(input=None).started().payload()
    assert [e["EventType"] for e in payload["history"]] == [12, 0]
    assert payload["isReplaying"] is False
    assert payload["input"] is None
    assert not any(e["IsPlayed"] for e in payload["history"])


def test_sequence_ids_and_played_flags() -> None:
    """Scheduling events share one counter; past message events are played, current ones are not."""
    builder = HistoryBuilder(input=1).started().scheduled("A").timer_created(T0 + timedelta(minutes=1))
    builder.episode(after=timedelta(seconds=1)).completed(0, 1).scheduled("B")
    builder.episode(T0 + timedelta(minutes=1)).timer_fired(1)
    history = builder.history()
    ids = [(e["EventType"], e["EventId"]) for e in history if e["EventType"] in (4, 10)]
    assert ids == [(4, 0), (10, 1), (4, 2)]
    played = [(e["EventType"], e["IsPlayed"]) for e in history if e["EventType"] in (0, 5, 11)]
    assert played == [(0, True), (5, True), (11, False)]
    assert history[-1]["EventType"] == 11 and history[-1]["TimerId"] == 1
    assert history[-1]["FireAt"] == "2024-05-01T12:01:00Z"


def test_messages_must_precede_scheduling_events() -> None:
    """An episode's incoming messages come before its decisions, as DTFx writes them."""
    builder = HistoryBuilder(input=1).started().scheduled("A")
    with pytest.raises(ValueError):
        builder.raised("Go", 1)


@pytest.mark.parametrize(
    ("value", "via", "raw"),
    [
        (False, "client", '"false"'),
        ("false", "client", r'"\"false\""'),
        (False, "raw", "false"),
        ({"city": "Tokyo"}, "client", r'"{\"city\": \"Tokyo\"}"'),
        (None, "client", '"null"'),
    ],
)
def test_payload_encodings(value: object, via: str, raw: str) -> None:
    """The Python client double-encodes (json.dumps, then JSON body); raw callers send plain JSON."""
    assert encode_payload(value, via) == raw  # type: ignore[arg-type]


def test_dotnet_time_format() -> None:
    """Times carry a fraction only when non-zero, trailing zeros trimmed, always `Z`."""
    assert dotnet_iso(T0) == "2024-05-01T12:00:00Z"
    assert dotnet_iso(T0 + timedelta(seconds=7, milliseconds=300)) == "2024-05-01T12:00:07.3Z"
