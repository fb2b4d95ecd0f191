"""The extension's JSON renderings: status objects and ``historyEvents``."""

from __future__ import annotations

from typing import Any

from devhost.durable.history import Event, EventType, OrchestrationStatus, parse_token, status_timestamp
from devhost.durable.taskhub.base import InstanceRow


def status_object(row: InstanceRow, *, show_input: bool = True,
                  history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``StatusResponsePayload`` with its fields in the extension's order."""
    payload: dict[str, Any] = {
        "name": row.name,
        "instanceId": row.instance_id,
        "runtimeStatus": row.runtime_status.name,
        "input": parse_token(row.input) if show_input else None,
        "customStatus": parse_token(row.custom_status),
        "output": parse_token(row.output),
        "createdTime": status_timestamp(row.created_time),
        "lastUpdatedTime": status_timestamp(row.last_updated_time),
    }
    if history is not None:
        payload["historyEvents"] = history
    return payload


def history_events(events: list[Event], *, show_input: bool, show_output: bool) -> list[dict[str, Any]]:
    """What ``DurableClient.GetDurableOrchestrationStatusAsync`` makes of the raw history."""
    rendered: list[dict[str, Any] | None] = []
    scheduled: dict[int, tuple[int, dict[str, Any]]] = {}  # EventId -> (index in rendered, event)
    for event in events:
        kind = event["EventType"]
        if kind in (EventType.OrchestratorStarted, EventType.OrchestratorCompleted):
            continue
        item = {k: v for k, v in event.items() if k not in ("EventId", "IsPlayed")}
        try:
            item["EventType"] = EventType(kind).name
        except ValueError:
            item["EventType"] = kind
        if kind == EventType.ExecutionStarted:
            item["FunctionName"] = item.pop("Name", None)
            for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                item.pop(key, None)
        elif kind in (EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated):
            item.pop("Version", None)
            scheduled[event["EventId"]] = (len(rendered), event)
        elif kind in (EventType.TaskCompleted, EventType.TaskFailed,
                      EventType.SubOrchestrationInstanceCompleted, EventType.SubOrchestrationInstanceFailed):
            origin = scheduled.pop(item.pop("TaskScheduledId", -1), None)
            if origin is not None:
                index, source = origin
                rendered[index] = None  # the matched scheduling event leaves the list
                item["ScheduledTime"] = source["Timestamp"]
                item["FunctionName"] = source.get("Name")
                if show_input:
                    item["Input"] = source.get("Input")
            if kind in (EventType.TaskCompleted, EventType.SubOrchestrationInstanceCompleted):
                if show_output:
                    item["Result"] = parse_token(item.get("Result"))
                else:
                    item.pop("Result", None)
        elif kind == EventType.ExecutionCompleted:
            try:
                item["OrchestrationStatus"] = OrchestrationStatus(item["OrchestrationStatus"]).name
            except (KeyError, ValueError):
                pass
            if show_output:
                item["Result"] = parse_token(item.get("Result"))
            else:
                item.pop("Result", None)
        elif kind == EventType.TimerFired:
            item.pop("TimerId", None)
        if not show_input:
            item.pop("Input", None)
        rendered.append(item)
    return [item for item in rendered if item is not None]
