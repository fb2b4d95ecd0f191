"""What devhost can run: each function whose trigger or bindings it cannot provide gets a reason.

Such a function is still loaded and listed (as the host lists it), but every invocation fails with
that reason instead of running with a binding silently missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DURABLE_TRIGGERS = frozenset({"orchestrationTrigger", "activityTrigger", "entityTrigger"})
STORAGE_TRIGGERS = frozenset({"timerTrigger", "queueTrigger", "blobTrigger"})
SUPPORTED_TRIGGERS = frozenset({"httpTrigger"}) | DURABLE_TRIGGERS | STORAGE_TRIGGERS
SUPPORTED_INPUTS = frozenset({"durableClient", "blob", "table"})
SUPPORTED_OUTPUTS = frozenset({"http", "queue", "blob", "table"})
STORAGE_OUTPUTS = frozenset({"queue", "blob", "table"})
STORAGE_BINDINGS = STORAGE_OUTPUTS  # blob and table inputs share their output's type name


def _direction(raw: Mapping[str, Any]) -> str:
    return str(raw.get("direction", "IN")).upper()


def unsupported_reason(trigger_type: str, raw_bindings: Iterable[Mapping[str, Any]]) -> str | None:
    """Why devhost cannot run a function with these bindings, or None when it can."""
    problems: list[str] = []
    if trigger_type not in SUPPORTED_TRIGGERS:
        problems.append(f"devhost does not run {trigger_type} triggers")
    for raw in raw_bindings:
        kind = str(raw.get("type", ""))
        name = raw.get("name")
        if kind == trigger_type:
            if kind == "blobTrigger" and str(raw.get("source") or "LogsAndContainerScan") != "LogsAndContainerScan":
                problems.append(f"blob trigger '{name}' uses source {raw.get('source')}; devhost only scans "
                                "containers (LogsAndContainerScan)")
            continue
        direction = _direction(raw)
        if direction == "OUT" and kind not in SUPPORTED_OUTPUTS:
            problems.append(f"devhost has no {kind} output binding ('{name}')")
        elif direction == "IN" and kind not in SUPPORTED_INPUTS:
            problems.append(f"devhost cannot provide the {kind} input binding ('{name}')")
    return "; ".join(problems) if problems else None
