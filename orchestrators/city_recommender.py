"""`CityRecommender`: recommend cities for a user segment, then refine the one the user picks.

Custom status stages, in order:

* `awaiting-selection`: `recommendedCities`, `recommendedSeasons`, `selectionExpiresAt`; clients
  (and the selection endpoint) read the recommended cities from here.
* `refining`: the chosen city is being refined by the `RefineRecommendation` activity.
* `refined` (final): the refined recommendation; also the orchestration output.
* `expired` (final): no valid selection arrived in time; also the orchestration output.

A selection of a city that is not recommended is ignored and the orchestration keeps waiting until the
original deadline; the status then shows it as `lastRejectedSelection`. The HTTP selection endpoint
already refuses such cities, so only raw callers of the built-in raise-event API can get here.
"""

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from orchestrators.events import USER_SELECTION, normalize_event_data, read_selected_city
from orchestrators.inputs import InputError, parse_city_recommender_input, read_input
from orchestrators.timestamps import iso_utc

bp = df.Blueprint()

REFINE_ACTIVITY = "RefineRecommendation"
EXPIRED_MESSAGE = "The city selection expired before a recommended city was chosen."


@bp.orchestration_trigger(context_name="context")
def CityRecommender(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    try:
        request = parse_city_recommender_input(read_input(context))
    except InputError as error:
        context.set_custom_status({"stage": "invalid-input", "error": str(error)})
        raise

    # The deadline is fixed once, from the replay-safe clock of the first episode, so every timer
    # created for this wait (one per rejected selection) fires at the same moment on every replay.
    deadline = context.current_utc_datetime + timedelta(seconds=request.selection_timeout_seconds)
    status: dict[str, Any] = {
        "stage": "awaiting-selection",
        "recommendedCities": request.cities,
        "recommendedSeasons": request.seasons,
        "selectionExpiresAt": iso_utc(deadline),
    }
    context.set_custom_status(status)

    city: str | None = None
    while city is None:
        timer = context.create_timer(deadline)
        selection = context.wait_for_external_event(USER_SELECTION)
        winner = yield context.task_any([timer, selection])
        if winner == timer:
            outcome = {"stage": "expired", "message": EXPIRED_MESSAGE}
            context.set_custom_status(outcome)
            return outcome
        # The timer lost; cancelling it lets the instance complete without waiting for it to fire.
        timer.cancel()
        city = read_selected_city(selection.result, request.cities)
        if city is None:
            status = {**status, "lastRejectedSelection": _describe(selection.result)}
            context.set_custom_status(status)

    context.set_custom_status({"stage": "refining", "selectedCity": city})
    recommendation = yield context.call_activity(REFINE_ACTIVITY, {"city": city, "seasons": request.seasons})
    outcome = {"stage": "refined", "selectedCity": city, "recommendation": recommendation}
    context.set_custom_status(outcome)
    return outcome


def _describe(data: Any) -> Any:
    # Echo a rejected selection back in the status, trimmed so a hostile payload cannot push the
    # custom status towards its 16 KB limit.
    value = normalize_event_data(data)
    text = value if isinstance(value, str) else repr(value)
    return text[:64]
