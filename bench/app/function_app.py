"""Bench-only Functions app: per-instance shapes for workload W2 (not part of the deployed app).

`Sequence100` calls `Echo` N times in a row (input N, default 100), `FanOutFanIn` runs N `Stamp`
activities in parallel (input N, default 500) and returns when each ran, and `EventSink` waits for N
`Ping` events one after another (input N, default 200).
"""

import time
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _count(context: df.DurableOrchestrationContext, default: int) -> int:
    # Started through the built-in webhook with a raw body such as `100`, the SDK holds the value
    # itself and get_input() fails to decode it again.
    try:
        value = context.get_input()
    except (TypeError, ValueError):
        value = getattr(context, "_input", None)
    return int(value) if isinstance(value, int | float | str) and str(value).strip() else default


@app.orchestration_trigger(context_name="context")
def Sequence100(context: df.DurableOrchestrationContext) -> Generator[Any, Any, int]:
    total = 0
    for i in range(_count(context, 100)):
        total += yield context.call_activity("Echo", i)
    return total


@app.orchestration_trigger(context_name="context")
def FanOutFanIn(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, float]]:
    n = _count(context, 500)
    stamps = yield context.task_all([context.call_activity("Stamp", i) for i in range(n)])
    return {"count": len(stamps), "firstRan": min(stamps), "lastRan": max(stamps)}


@app.orchestration_trigger(context_name="context")
def EventSink(context: df.DurableOrchestrationContext) -> Generator[Any, Any, int]:
    n = _count(context, 200)
    context.set_custom_status({"waitingFor": n})
    for _ in range(n):
        yield context.wait_for_external_event("Ping")
    return n


@app.activity_trigger(input_name="value")
def Echo(value: int) -> int:
    return value


@app.activity_trigger(input_name="value")
def Stamp(value: int) -> float:
    # Wall-clock time when this activity ran: the bench runs on the same machine, so it can compare.
    return time.time()
