"""Row and message encodings without storage: history entities, queue envelopes, Instances rows."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from azure.data.tables import EdmType

from devhost.durable.history import DOTNET_TYPE, EventType, OrchestrationStatus
from devhost.durable.taskhub import codec
from devhost.durable.taskhub.base import InstanceRow, OutboundMessage
from tests.devhost.taskhub.samples import ALL_EVENTS, TS7


def test_samples_cover_every_event_type() -> None:
    """The sample list has one event of each DTFx EventType."""
    assert sorted(e["EventType"] for e in ALL_EVENTS) == [int(t) for t in EventType]


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: EventType(e["EventType"]).name)
def test_history_entity_round_trip(event: dict) -> None:
    """Every event type encodes to a History entity and decodes back to the same dict."""
    entity = codec.event_to_entity(event, "inst-001", "0000000000000005", "exec-1")
    assert codec.entity_to_event(entity) == event


def test_history_entity_columns() -> None:
    """Columns follow B.3: enum names, _Timestamp as Edm.DateTime, complex members as JSON, no nulls."""
    started = codec.event_to_entity(ALL_EVENTS[0], "inst-001", "0000000000000001", "exec-1")
    assert started["EventType"] == "ExecutionStarted"
    assert started["_Timestamp"] == (TS7, EdmType.DATETIME)
    assert "Timestamp" not in started
    assert started["ScheduledStartTime"] == ("2024-05-01T12:00:01Z", EdmType.DATETIME)
    assert json.loads(started["OrchestrationInstance"]) == ALL_EVENTS[0]["OrchestrationInstance"]
    assert json.loads(started["Tags"]) == {"team": "a"}
    assert started["ExecutionId"] == "exec-1"
    assert started["EventId"] == -1 and started["IsPlayed"] is True and started["Generation"] == 2
    assert "Correlation" not in started and None not in started.values()

    completed = codec.event_to_entity(ALL_EVENTS[1], "inst-001", "0000000000000002", "exec-1")
    assert completed["OrchestrationStatus"] == "Completed"
    timer = codec.event_to_entity(ALL_EVENTS[10], "inst-001", "0000000000000003", "exec-1")
    assert timer["FireAt"] == ("2024-05-01T12:05:00.1234567Z", EdmType.DATETIME)


def test_timestamps_come_back_canonical() -> None:
    """Azure pads DateTimes to 7 digits; decoding trims trailing zeros like .NET's round-trip format."""
    entity = codec.event_to_entity(ALL_EVENTS[12], "p", "0000000000000000", "e")
    entity["_Timestamp"] = ("2024-05-01T12:00:01.1200000Z", EdmType.DATETIME)
    assert codec.entity_to_event(entity)["Timestamp"] == "2024-05-01T12:00:01.12Z"
    entity["_Timestamp"] = ("2024-05-01T12:00:01.0000000Z", EdmType.DATETIME)
    assert codec.entity_to_event(entity)["Timestamp"] == "2024-05-01T12:00:01Z"
    odd = dict(ALL_EVENTS[12], Timestamp=datetime(2024, 5, 1, 12, 0, 1, 250000, tzinfo=UTC))
    assert codec.event_to_entity(odd, "p", "0", "e")["_Timestamp"][0] == "2024-05-01T12:00:01.25Z"


def test_envelope_shape() -> None:
    """MessageData carries $type names, the target instance, an int EventType and the sender fields."""
    event = ALL_EVENTS[5]
    message = OutboundMessage(
        event=event,
        instance_id="inst-001",
        execution_id="exec-1",
        episode=3,
        sender={"InstanceId": "inst-001", "ExecutionId": "exec-1"},
    )
    envelope = codec.build_envelope(message, "0b7cbe0c-3f6d-4c36-9a3e-5a8e2c1d9f10", 17)
    assert envelope["$type"] == "DurableTask.AzureStorage.MessageData"
    assert envelope["ActivityId"] == "0b7cbe0c-3f6d-4c36-9a3e-5a8e2c1d9f10"
    assert envelope["SequenceNumber"] == 17 and envelope["Episode"] == 3
    assert envelope["CompressedBlobName"] is None
    assert envelope["Sender"] == {"InstanceId": "inst-001", "ExecutionId": "exec-1"}
    task = envelope["TaskMessage"]
    assert task["$type"] == "DurableTask.Core.TaskMessage" and task["SequenceNumber"] == 0
    assert task["OrchestrationInstance"] == {
        "$type": "DurableTask.Core.OrchestrationInstance",
        "InstanceId": "inst-001",
        "ExecutionId": "exec-1",
    }
    assert task["Event"]["$type"] == "DurableTask.Core.History." + DOTNET_TYPE[EventType.TaskCompleted]
    assert task["Event"]["EventType"] == 5

    client = codec.build_envelope(OutboundMessage(event=event, instance_id="i", execution_id=None), "a", 1)
    assert "Episode" not in client and client["Sender"] == {"InstanceId": "", "ExecutionId": ""}
    assert client["TaskMessage"]["OrchestrationInstance"]["ExecutionId"] is None


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: EventType(e["EventType"]).name)
def test_envelope_text_round_trip(event: dict) -> None:
    """Envelope text (raw JSON or Base64 of it) decodes to the same event and target."""
    message = OutboundMessage(event=event, instance_id="inst-001", execution_id="exec-1")
    text = codec.dumps_envelope(codec.build_envelope(message, "a1", 1))
    for body in (text, base64.b64encode(text.encode()).decode()):
        decoded, instance_id, execution_id = codec.envelope_event(codec.parse_message_text(body))
        assert (decoded, instance_id, execution_id) == (event, "inst-001", "exec-1")


def test_envelope_from_dotnet_with_nested_types() -> None:
    """Nested $type annotations written by Newtonsoft are dropped from the decoded event."""
    text = json.dumps(
        {
            "$type": "DurableTask.AzureStorage.MessageData",
            "ActivityId": "x",
            "SequenceNumber": 2,
            "TaskMessage": {
                "$type": "DurableTask.Core.TaskMessage",
                "SequenceNumber": 0,
                "OrchestrationInstance": {
                    "$type": "DurableTask.Core.OrchestrationInstance",
                    "InstanceId": "i",
                    "ExecutionId": "",
                },
                "Event": {
                    "$type": "DurableTask.Core.History.ExecutionStartedEvent",
                    "EventType": 0,
                    "OrchestrationInstance": {
                        "$type": "DurableTask.Core.OrchestrationInstance",
                        "InstanceId": "i",
                        "ExecutionId": "e",
                    },
                    "EventId": -1,
                    "IsPlayed": False,
                    "Timestamp": TS7,
                },
            },
        }
    )
    event, instance_id, execution_id = codec.envelope_event(codec.parse_message_text(text))
    assert event["OrchestrationInstance"] == {"InstanceId": "i", "ExecutionId": "e"}
    assert "$type" not in event and instance_id == "i" and execution_id is None


def test_instance_entity_columns_and_round_trip() -> None:
    """An InstanceRow maps to the B.2 columns with Edm.DateTime times, and back."""
    created = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    row = InstanceRow(
        instance_id="a/b",
        name="MyOrch",
        execution_id="e1",
        runtime_status=OrchestrationStatus.Running,
        input='"x"',
        created_time=created,
        last_updated_time=created,
        generation=1,
        tags='{"k":"v"}',
    )
    entity = codec.instance_to_entity(row, "MyHub", full=True)
    assert entity["PartitionKey"] == "a^0b" and entity["RowKey"] == ""
    assert set(entity) == {
        "PartitionKey",
        "RowKey",
        "ExecutionId",
        "Name",
        "Version",
        "Input",
        "CustomStatus",
        "CreatedTime",
        "LastUpdatedTime",
        "RuntimeStatus",
        "Generation",
        "Tags",
        "TaskHubName",
    }
    assert entity["CreatedTime"] == ("2024-05-01T12:00:00.123456Z", EdmType.DATETIME)
    assert entity["CustomStatus"] == "null" and entity["TaskHubName"] == "MyHub"
    back = codec.entity_to_instance(entity)
    assert back == row

    merged = codec.instance_columns_to_entity(
        "i", {"RuntimeStatus": "Completed", "CompletedTime": created, "Output": None}, "MyHub"
    )
    assert merged == {
        "PartitionKey": "i",
        "RowKey": "",
        "RuntimeStatus": "Completed",
        "CompletedTime": ("2024-05-01T12:00:00.123456Z", EdmType.DATETIME),
        "TaskHubName": "MyHub",
    }


def test_continuation_tokens_are_opaque_and_checked() -> None:
    """Continuation tokens round-trip through an opaque string; garbage is rejected with ValueError."""
    token = {"PartitionKey": "inst-10", "RowKey": ""}
    assert codec.decode_continuation(codec.encode_continuation(token)) == token
    with pytest.raises(ValueError):
        codec.decode_continuation("not-a-token!")


def test_visibility_seconds_rounds_up_and_caps() -> None:
    """Visibility delays round up to whole seconds, never go negative and stop at 7 days."""
    assert codec.visibility_seconds(-5) == 0
    assert codec.visibility_seconds(1.2) == 2
    assert codec.visibility_seconds(30 * 86400) == 7 * 86400
