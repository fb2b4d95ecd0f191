"""`SetStatusTest`: work through next actions A, B, C and publish progress in the custom status.

The first status is the article's `{"nextActions": ["A", "B", "C"], "foo": 2}`; after every step it
becomes `{"nextActions": [...remaining], "completedActions": [...], "progress": 0..1, "foo": 2}` so a
client can draw a progress bar. A durable timer of `stepDelaySeconds` comes before every step (none
when 0), the first included, so the article's first status stays visible as long as the later ones.
"""

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from orchestrators.inputs import InputError, parse_set_status_test_input, read_input

bp = df.Blueprint()

PERFORM_ACTIVITY = "PerformAction"
ACTIONS = ("A", "B", "C")
FOO = 2


def progress_status(completed: list[str], results: list[Any] | None = None) -> dict[str, Any]:
    """The custom status after `completed` steps (the first status when none is completed)."""
    remaining = list(ACTIONS[len(completed) :])
    if not completed:
        return {"nextActions": remaining, "foo": FOO}
    status: dict[str, Any] = {
        "nextActions": remaining,
        "completedActions": list(completed),
        "progress": round(len(completed) / len(ACTIONS), 4),
        "foo": FOO,
    }
    if results:
        status["lastResult"] = results[-1]
    return status


@bp.orchestration_trigger(context_name="context")
def SetStatusTest(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    try:
        request = parse_set_status_test_input(read_input(context))
    except InputError as error:
        context.set_custom_status({"stage": "invalid-input", "error": str(error)})
        raise

    completed: list[str] = []
    results: list[Any] = []
    context.set_custom_status(progress_status(completed))
    for index, action in enumerate(ACTIONS):
        if request.step_delay_seconds > 0:
            # A durable timer, not sleep: the worker is released while the orchestration waits. The
            # first one keeps the article's first status on show for a poller.
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=request.step_delay_seconds))
        result = yield context.call_activity(PERFORM_ACTIVITY, {"action": action, "step": index + 1})
        completed.append(action)
        results.append(result)
        context.set_custom_status(progress_status(completed, results))

    return {"completedActions": completed, "results": results}
