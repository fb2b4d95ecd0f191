"""The entity messages as the extension writes them: requests to entities and responses to callers."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from devhost.durable.history import Event, EventType, format_timestamp, new_event
from devhost.durable.taskhub.base import OutboundMessage

OPERATION_EVENT = "op"
# The namespace of DTFx's deterministic NewGuid (a name-based, SHA-1 UUID).
DETERMINISTIC_NAMESPACE = uuid.UUID("9e952958-5e33-4daf-827f-2fa12937b875")
OPERATION_ERROR = "Microsoft.Azure.WebJobs.Extensions.DurableTask.OperationErrorException"


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def deterministic_guid(instance_id: str, now: datetime, counter: int) -> str:
    """The orchestration's NewGuid: the same on every replay of the same point."""
    return str(uuid.uuid5(DETERMINISTIC_NAMESPACE, f"{instance_id}_{format_timestamp(now)}_{counter}"))


def request_message(*, request_id: str, operation: str, input_text: str | None, signal: bool,
                    parent: str | None, parent_execution: str | None, timestamp: datetime,
                    scheduled_time: datetime | None = None) -> str:
    """The RequestMessage JSON an operation travels in."""
    body: dict[str, Any] = {"op": operation, "signal": signal, "input": input_text, "id": request_id,
                            "parent": parent, "parentExecution": parent_execution,
                            "timestamp": format_timestamp(timestamp)}
    if scheduled_time is not None:
        body["due"] = format_timestamp(scheduled_time)
    return compact(body)


def operation_message(entity_instance_id: str, request_json: str, *, sender: dict[str, str],
                      timestamp: datetime, visible_at: datetime | None = None) -> OutboundMessage:
    """The ``op`` event for an entity (no execution id: it goes to whatever generation is current)."""
    event = new_event(EventType.EventRaised, timestamp=timestamp, Name=OPERATION_EVENT, Input=request_json)
    return OutboundMessage(event=event, instance_id=entity_instance_id, execution_id=None, sender=sender,
                           visible_at=visible_at)


def response_event(request_id: str, result_text: str | None, *, failed: bool, timestamp: datetime) -> Event:
    """The answer to a call: EventRaised named by the request id, holding a ResponseMessage."""
    body: dict[str, Any] = {"result": result_text}
    if failed:
        body["exceptionType"] = OPERATION_ERROR
    return new_event(EventType.EventRaised, timestamp=timestamp, Name=request_id, Input=compact(body))
