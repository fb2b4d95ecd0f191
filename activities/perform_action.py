"""`PerformAction`: carry out one of `SetStatusTest`'s next actions (a stand-in for real work)."""

from collections.abc import Mapping

import azure.durable_functions as df

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def PerformAction(request: dict) -> dict:
    if not isinstance(request, Mapping) or not isinstance(request.get("action"), str):
        raise ValueError(f"PerformAction needs {{'action': str, 'step': int}}, got {request!r}.")
    action = request["action"]
    return {"action": action, "step": request.get("step"), "result": f"Action {action} completed."}
