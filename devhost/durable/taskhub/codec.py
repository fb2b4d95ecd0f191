"""Encodings of the Azure Storage provider: history rows, queue envelopes and Instances rows.

Pure functions (no I/O) shared by ``AzureStorageTaskHub`` and ``MemoryTaskHub``, so both normalise
events the same way.

* History rows (B.3): ``EventType`` as the enum name, ``Timestamp`` renamed ``_Timestamp``, DateTimes as
  ``Edm.DateTime``, enum members as names, complex members as JSON text, ``None`` omitted. Decoding
  restores the members DTFx always serialises (as ``null`` when absent), so the dict handed to the SDK
  has the shape the extension would produce.
* Queue envelopes (B.4.2): ``MessageData`` with ``$type`` names and ``EventType`` as an int.
* Instances rows (B.2): provider column names, DateTime columns as ``Edm.DateTime``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import EdmType, EntityProperty

from devhost.durable.history import (
    COMPLEX_MEMBERS,
    DATETIME_MEMBERS,
    DOTNET_TYPE,
    ENUM_MEMBERS,
    Event,
    EventType,
    OrchestrationStatus,
    format_timestamp,
    parse_timestamp,
)
from devhost.durable.taskhub.base import InstanceRow, InstanceUpdate, OutboundMessage, ReceivedMessage
from devhost.durable.taskhub.keys import escape_partition_key, unescape_partition_key

# --------------------------------------------------------------------------------------------------
# values

_CANONICAL_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,7})?Z\Z")
_COMPACT = (",", ":")

EVENT_TYPE_NAMES: dict[int, str] = {int(t): t.name for t in EventType}
_EVENT_TYPE_BY_NAME: dict[str, int] = {t.name: int(t) for t in EventType}
_DOTNET_TYPE_BY_INT: dict[int, str] = {
    int(t): f"DurableTask.Core.History.{n}" for t, n in DOTNET_TYPE.items()
}

# Members DTFx declares per event class that are reference/nullable types: Newtonsoft writes them as
# ``null`` when unset, so a decoded row gets them back as None (tables cannot store null).
_NULLABLE_MEMBERS: dict[int, tuple[str, ...]] = {
    EventType.ExecutionStarted: (
        "ParentInstance",
        "Name",
        "Version",
        "Input",
        "Tags",
        "Correlation",
        "ParentTraceContext",
        "ScheduledStartTime",
        "Generation",
    ),
    EventType.ExecutionCompleted: ("Result", "FailureDetails"),
    EventType.ContinueAsNew: ("Result", "FailureDetails"),
    EventType.ExecutionTerminated: ("Input",),
    EventType.TaskScheduled: ("Name", "Version", "Input", "ParentTraceContext", "Tags"),
    EventType.TaskCompleted: ("Result",),
    EventType.TaskFailed: ("Reason", "Details", "FailureDetails"),
    EventType.SubOrchestrationInstanceCreated: (
        "Name",
        "Version",
        "InstanceId",
        "Input",
        "ClientSpanId",
        "Tags",
    ),
    EventType.SubOrchestrationInstanceCompleted: ("Result",),
    EventType.SubOrchestrationInstanceFailed: ("Reason", "Details", "FailureDetails"),
    EventType.EventSent: ("InstanceId", "Name", "Input"),
    EventType.EventRaised: ("Name", "Input", "ParentTraceContext"),
    EventType.GenericEvent: ("Data",),
    EventType.HistoryState: ("State",),
    EventType.ExecutionSuspended: ("Reason",),
    EventType.ExecutionResumed: ("Reason",),
    EventType.ExecutionRewound: ("Reason", "ParentExecutionId", "InstanceId", "ParentTraceContext"),
}

# Columns the tracking store owns; never event members.
_HISTORY_SYSTEM_COLUMNS = frozenset({"PartitionKey", "RowKey", "Timestamp", "ExecutionId", "EventType"})
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def event_type_name(value: int) -> str:
    """``EventType`` int → the enum name stored in tables (unknown values keep their number)."""
    return EVENT_TYPE_NAMES.get(int(value)) or str(int(value))


def event_type_value(name: str | int) -> int:
    if isinstance(name, int):
        return name
    found = _EVENT_TYPE_BY_NAME.get(name)
    return found if found is not None else int(name)


def to_table_datetime(value: str | datetime) -> str:
    """A DateTime value as the ISO text sent with ``Edm.DateTime``; canonical strings pass untouched."""
    if isinstance(value, str):
        if _CANONICAL_TS.match(value):
            return value
        return format_timestamp(parse_timestamp(value))
    return format_timestamp(value)


def canonical_timestamp(text: str) -> str:
    """.NET round-trip form with trailing fractional zeros dropped (Azure pads to 7 digits)."""
    if "." not in text:
        return text if text.endswith("Z") else format_timestamp(parse_timestamp(text))
    head, _, frac = text.partition(".")
    if not frac.endswith("Z") or not frac[:-1].isdigit():
        return format_timestamp(parse_timestamp(text))
    digits = frac[:-1].rstrip("0")
    return f"{head}.{digits}Z" if digits else f"{head}Z"


def table_datetime_text(value: Any) -> str:
    """The ISO text of a DateTime column as read back (SDK datetime, memory tuple, or string)."""
    if isinstance(value, tuple):
        value = value[0]
    if isinstance(value, str):
        return canonical_timestamp(value)
    raw = getattr(value, "tables_service_value", "")  # the SDK keeps the service's 7-digit text
    if raw:
        return canonical_timestamp(raw)
    return format_timestamp(value)


def table_datetime(value: Any) -> datetime | None:
    """A DateTime column as a plain aware ``datetime`` (microseconds)."""
    if value is None:
        return None
    if isinstance(value, tuple):
        value = value[0]
    if isinstance(value, str):
        return parse_timestamp(value)
    if isinstance(value, datetime):
        if type(value) is datetime and value.tzinfo is not None:
            return value
        # The SDK's ``TablesEntityDatetime`` subclass: hand out a plain datetime.
        return datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=UTC,
        )
    raise TypeError(f"not a DateTime column value: {value!r}")


def aware(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC (what the engine means; never local time)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def dt_column(value: str | datetime) -> tuple[str, EdmType]:
    """An ``Edm.DateTime`` property for the table SDK (a string keeps all 7 fractional digits)."""
    return (to_table_datetime(value), EdmType.DATETIME)


def _int_column(value: int) -> Any:
    if _INT32_MIN <= value <= _INT32_MAX:
        return value
    return (str(value), EdmType.INT64)


def _plain(value: Any) -> Any:
    """Unwrap SDK/memory typed values (Int64 ``EntityProperty``, ``(value, EdmType)`` tuples)."""
    if isinstance(value, EntityProperty):
        value = value.value
    elif isinstance(value, tuple):
        raw, edm = value
        if edm == EdmType.INT64:
            return int(raw)
        return raw
    return value


def _json_default(value: Any) -> Any:
    # The engine writes timestamps as strings; a stray datetime still gets the canonical text.
    if isinstance(value, datetime):
        return format_timestamp(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=_COMPACT, ensure_ascii=False, default=_json_default)


# --------------------------------------------------------------------------------------------------
# history rows


def event_to_entity(event: Event, partition_key: str, row_key: str, execution_id: str) -> dict[str, Any]:
    """A history event dict → the History table entity (B.3)."""
    entity: dict[str, Any] = {"PartitionKey": partition_key, "RowKey": row_key}
    for key, value in event.items():
        if value is None:
            continue  # tables cannot hold null; decoding puts the nullable members back
        if key in _HISTORY_SYSTEM_COLUMNS:
            if key == "EventType":
                entity["EventType"] = event_type_name(value)
            elif key == "Timestamp":  # reserved for the service's write time, hence the rename
                entity["_Timestamp"] = dt_column(value)
            continue
        if key in DATETIME_MEMBERS:
            entity[key] = dt_column(value)
        elif key in ENUM_MEMBERS:
            entity[key] = ENUM_MEMBERS[key](value).name if isinstance(value, int) else str(value)
        elif key in COMPLEX_MEMBERS or isinstance(value, (dict, list)):
            entity[key] = value if isinstance(value, str) else dumps(value)
        elif isinstance(value, bool):
            entity[key] = value
        elif isinstance(value, int):
            entity[key] = _int_column(value)
        elif isinstance(value, (str, float)):
            entity[key] = value
        else:
            entity[key] = str(value)
    entity["ExecutionId"] = execution_id
    return entity


def entity_to_event(entity: Mapping[str, Any]) -> Event:
    """A History table entity (with any ``*BlobName`` columns already resolved) → event dict."""
    event_type = event_type_value(entity["EventType"])
    event: Event = {"EventType": event_type}
    for key, value in entity.items():
        if key in _HISTORY_SYSTEM_COLUMNS:
            continue
        if key == "_Timestamp":
            event["Timestamp"] = table_datetime_text(value)
        elif key in DATETIME_MEMBERS:
            event[key] = table_datetime_text(value)
        elif key in ENUM_MEMBERS:
            event[key] = _enum_value(key, _plain(value))
        elif key in COMPLEX_MEMBERS:
            event[key] = _loads_complex(_plain(value))
        else:
            event[key] = _plain(value)
    for member in _NULLABLE_MEMBERS.get(event_type, ()):
        if member not in event:
            event[member] = None
    return event


def _enum_value(key: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(ENUM_MEMBERS[key][value])
        except KeyError:
            return int(value) if value.lstrip("-").isdigit() else value
    return value


def _loads_complex(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def blob_columns(entity: Mapping[str, Any]) -> dict[str, str]:
    """``{Prop: blob name}`` for every ``<Prop>BlobName`` column of a History row."""
    found: dict[str, str] = {}
    for key, value in entity.items():
        if key.endswith("BlobName") and isinstance(value, str) and value:
            found[key[: -len("BlobName")]] = value
    return found


# --------------------------------------------------------------------------------------------------
# queue envelopes

# ``MessageData.SequenceNumber``: a process-wide counter, only a tie-breaker when ordering messages.
_SEQUENCE = itertools.count(1)
MAX_VISIBILITY_SECONDS = 7 * 24 * 3600  # Azure Queues refuse longer initial invisibility


def next_sequence_number() -> int:
    return next(_SEQUENCE)


def visibility_seconds(seconds: float) -> int:
    """Queue visibility in whole seconds, rounded up (a timer must never surface early), capped at 7 days."""
    if seconds <= 0:
        return 0
    return min(MAX_VISIBILITY_SECONDS, math.ceil(seconds))


MESSAGE_DATA_TYPE = "DurableTask.AzureStorage.MessageData"
TASK_MESSAGE_TYPE = "DurableTask.Core.TaskMessage"
ORCHESTRATION_INSTANCE_TYPE = "DurableTask.Core.OrchestrationInstance"


def event_dotnet_type(event_type: int) -> str:
    return _DOTNET_TYPE_BY_INT.get(int(event_type), "DurableTask.Core.History.HistoryEvent")


def build_envelope(message: OutboundMessage, activity_id: str, sequence_number: int) -> dict[str, Any]:
    """The ``MessageData`` object of one outbound message (B.4.2)."""
    event = message.event
    queue_event: dict[str, Any] = {"$type": event_dotnet_type(event["EventType"])}
    queue_event.update(event)
    queue_event["EventType"] = int(event["EventType"])
    envelope: dict[str, Any] = {
        "$type": MESSAGE_DATA_TYPE,
        "ActivityId": activity_id,
        "TaskMessage": {
            "$type": TASK_MESSAGE_TYPE,
            "Event": queue_event,
            "SequenceNumber": 0,
            "OrchestrationInstance": {
                "$type": ORCHESTRATION_INSTANCE_TYPE,
                "InstanceId": message.instance_id,
                "ExecutionId": message.execution_id,
            },
        },
        "CompressedBlobName": None,
        "SequenceNumber": sequence_number,
    }
    if message.episode is not None:
        envelope["Episode"] = message.episode
    envelope["Sender"] = message.sender or {"InstanceId": "", "ExecutionId": ""}
    envelope["SerializableTraceContext"] = None
    return envelope


def wrapper_envelope(envelope: Mapping[str, Any], blob_name: str) -> dict[str, Any]:
    """The small queue message that points at a large message's blob (no ``TaskMessage``)."""
    wrapper: dict[str, Any] = {
        "$type": MESSAGE_DATA_TYPE,
        "ActivityId": envelope["ActivityId"],
        "CompressedBlobName": blob_name,
        "SequenceNumber": envelope["SequenceNumber"],
    }
    if "Episode" in envelope:
        wrapper["Episode"] = envelope["Episode"]
    wrapper["Sender"] = envelope["Sender"]
    wrapper["SerializableTraceContext"] = None
    return wrapper


def dumps_envelope(envelope: Mapping[str, Any]) -> str:
    try:
        text = dumps(envelope)
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:  # lone surrogates cannot be UTF-8: fall back to \u escapes
        return json.dumps(envelope, separators=_COMPACT, default=_json_default)


def parse_message_text(text: str | bytes) -> dict[str, Any]:
    """Queue message text → envelope dict; raw JSON (AzS 2.x) or Base64 of JSON (AzS 1.x) both work."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        try:
            stripped = base64.b64decode(stripped, validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError("queue message is neither JSON nor Base64 of JSON") from exc
    value = json.loads(stripped)
    if not isinstance(value, dict):
        raise ValueError("queue message JSON is not an object")
    return value


def _strip_types(value: dict[str, Any]) -> dict[str, Any]:
    """Drop Newtonsoft ``$type`` annotations from an event and its nested objects."""
    out = {k: v for k, v in value.items() if k != "$type"}
    for key, member in out.items():
        if isinstance(member, dict) and "$type" in member:
            out[key] = _strip_types(member)
    return out


def envelope_event(envelope: Mapping[str, Any]) -> tuple[Event, str, str | None]:
    """``(event, target instance id, target execution id)`` of a full (non-wrapper) envelope."""
    task_message = envelope.get("TaskMessage")
    if not isinstance(task_message, dict):
        raise ValueError("MessageData has no TaskMessage")
    event = _strip_types(task_message["Event"])
    event["EventType"] = event_type_value(event["EventType"])
    target = task_message.get("OrchestrationInstance") or {}
    execution_id = target.get("ExecutionId") or None  # "" from some senders means "not pinned"
    return event, target.get("InstanceId", ""), execution_id


# --------------------------------------------------------------------------------------------------
# Instances rows


def encode_continuation(token: Mapping[str, Any] | None) -> str | None:
    """The SDK's ``{"PartitionKey", "RowKey"}`` continuation as one opaque URL-safe string."""
    if not token:
        return None
    return base64.urlsafe_b64encode(json.dumps(dict(token), separators=_COMPACT).encode()).decode("ascii")


def decode_continuation(token: str | None) -> dict[str, Any] | None:
    """Inverse of ``encode_continuation``; raises ``ValueError`` for anything we did not produce."""
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise ValueError("invalid continuation token") from exc
    if not isinstance(value, dict):
        raise ValueError("invalid continuation token")
    return value


INSTANCE_DATETIME_COLUMNS = frozenset(
    {"CreatedTime", "LastUpdatedTime", "CompletedTime", "ScheduledStartTime"}
)
# Every column ``InstanceRow`` maps, in the provider's names (``select`` lists use these).
INSTANCE_COLUMNS = (
    "ExecutionId",
    "Name",
    "Version",
    "Input",
    "Output",
    "CustomStatus",
    "CreatedTime",
    "LastUpdatedTime",
    "CompletedTime",
    "RuntimeStatus",
    "ScheduledStartTime",
    "Generation",
    "Tags",
    "TaskHubName",
)


def instance_to_entity(row: InstanceRow, hub_name: str, *, full: bool) -> dict[str, Any]:
    """An ``InstanceRow`` → Instances entity; ``full`` writes the whole row (``"null"`` custom status)."""
    columns: dict[str, Any] = {
        "ExecutionId": row.execution_id,
        "Name": row.name,
        "Version": row.version,
        "Input": row.input,
        "Output": row.output,
        "CustomStatus": row.custom_status if row.custom_status is not None or not full else "null",
        "CreatedTime": row.created_time,
        "LastUpdatedTime": row.last_updated_time,
        "CompletedTime": row.completed_time,
        "RuntimeStatus": row.runtime_status.name,
        "ScheduledStartTime": row.scheduled_start_time,
        "Generation": row.generation,
        "Tags": row.tags,
        "TaskHubName": hub_name,
    }
    return instance_columns_to_entity(row.instance_id, columns, hub_name)


# InstanceUpdate / InstanceRow field -> provider column name.
INSTANCE_FIELD_COLUMNS = {
    "execution_id": "ExecutionId", "name": "Name", "version": "Version", "runtime_status": "RuntimeStatus",
    "input": "Input", "output": "Output", "custom_status": "CustomStatus", "created_time": "CreatedTime",
    "last_updated_time": "LastUpdatedTime", "completed_time": "CompletedTime",
    "scheduled_start_time": "ScheduledStartTime", "generation": "Generation", "tags": "Tags",
}


def instance_update_to_entity(instance_id: str, update: InstanceUpdate, hub_name: str) -> dict[str, Any]:
    """The Instances entity that merges ``update`` (its None fields left out, TaskHubName added)."""
    columns = {column: getattr(update, field) for field, column in INSTANCE_FIELD_COLUMNS.items()}
    return instance_columns_to_entity(instance_id, columns, hub_name)


def instance_columns_to_entity(instance_id: str, columns: Mapping[str, Any], hub_name: str) -> dict[str, Any]:
    """Provider column values → a typed Instances entity (None values left out, TaskHubName added)."""
    entity: dict[str, Any] = {"PartitionKey": escape_partition_key(instance_id), "RowKey": ""}
    for key, value in columns.items():
        if value is None:
            continue
        if key in INSTANCE_DATETIME_COLUMNS:
            entity[key] = dt_column(value)
        elif key == "RuntimeStatus" and not isinstance(value, str):
            entity[key] = getattr(value, "name", str(value))  # an OrchestrationStatus member
        elif key == "Tags" and not isinstance(value, str):
            entity[key] = dumps(value)
        elif isinstance(value, bool):
            entity[key] = value
        elif isinstance(value, int):
            entity[key] = _int_column(value)
        else:
            entity[key] = value
    entity.setdefault("TaskHubName", hub_name)
    return entity


def runtime_status(name: Any) -> OrchestrationStatus:
    """A ``RuntimeStatus`` column's value as the enum; a missing (or unknown) one reads as Pending."""
    return OrchestrationStatus.__members__.get(name, OrchestrationStatus.Pending) if name else (
        OrchestrationStatus.Pending)


def entity_to_instance(entity: Mapping[str, Any], etag: str | None = None) -> InstanceRow:
    """An Instances entity → ``InstanceRow`` (Input/Output as stored; blob URLs resolved by the caller)."""
    get = entity.get
    generation = _plain(get("Generation"))
    custom_status = get("CustomStatus")
    return InstanceRow(
        instance_id=unescape_partition_key(entity["PartitionKey"]),
        name=get("Name") or "",
        execution_id=get("ExecutionId") or "",
        runtime_status=runtime_status(get("RuntimeStatus")),
        input=get("Input"),
        output=get("Output"),
        custom_status="null" if custom_status is None else custom_status,
        created_time=table_datetime(get("CreatedTime")),
        last_updated_time=table_datetime(get("LastUpdatedTime")),
        completed_time=table_datetime(get("CompletedTime")),
        scheduled_start_time=table_datetime(get("ScheduledStartTime")),
        generation=int(generation) if generation is not None else 0,
        version=get("Version") or "",
        tags=get("Tags"),
        etag=etag,
    )


def received_message(queue: str, message_id: str, receipt: str, dequeue_count: int, inserted_on: datetime,
                     envelope: dict[str, Any]) -> ReceivedMessage:
    """A message received from ``queue``, decoded from its envelope (raises for one that does not decode)."""
    event, instance_id, execution_id = envelope_event(envelope)
    return ReceivedMessage(
        queue=queue,
        message_id=message_id,
        receipt=receipt,
        dequeue_count=dequeue_count,
        inserted_on=inserted_on,
        event=event,
        instance_id=instance_id,
        execution_id=execution_id,
        sequence_number=envelope.get("SequenceNumber") or 0,
        episode=envelope.get("Episode"),
        activity_id=envelope.get("ActivityId") or "",
        raw=envelope,
    )
