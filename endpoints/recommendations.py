"""`POST /api/recommendations/{instanceId}/selection`: pick one of the recommended cities.

Body `{"city": "Tokyo"}`. Checks, in order: body (400), instance exists (404), not finished (410), is a
`CityRecommender` instance (409), currently awaiting a selection (409), and the city is one the
instance's current custom status recommends (400, naming the allowed cities; case-insensitive). Then
raises `UserSelection` with the canonical city name and answers 202.
"""

from collections.abc import Mapping

import azure.durable_functions as df
import azure.functions as func

from endpoints.common import (
    HttpError,
    ensure_orchestration,
    fetch_status,
    json_response,
    raise_event,
    read_json_object,
    route_instance_id,
)
from orchestrators.events import USER_SELECTION, match_city
from orchestrators.inputs import CITY_RECOMMENDER

bp = df.Blueprint()


@bp.route(route="recommendations/{instanceId}/selection", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def select_city(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        instance_id = route_instance_id(req)
        body = read_json_object(req, '{"city": "Tokyo"}')
        requested = body.get("city")
        if not isinstance(requested, str) or not requested.strip():
            raise HttpError(400, "'city' must be a non-empty string.")
        status = await fetch_status(client, instance_id)
        ensure_orchestration(status, instance_id, CITY_RECOMMENDER)
        custom = status.custom_status
        allowed = custom.get("recommendedCities") if isinstance(custom, Mapping) else None
        # Before the first episode has run, or once a city was chosen, there is nothing to pick from.
        if not isinstance(allowed, list) or not allowed:
            raise HttpError(409, f"Instance '{instance_id}' is not waiting for a city selection right now.")
        city = match_city(requested, allowed)
        if city is None:
            raise HttpError(
                400,
                f"'{requested}' is not a recommended city; choose one of {', '.join(map(str, allowed))}.",
                allowedCities=allowed,
            )
        await raise_event(client, instance_id, USER_SELECTION, city)
    except HttpError as error:
        return error.response()
    return json_response({"instanceId": instance_id, "event": USER_SELECTION, "city": city}, 202)
