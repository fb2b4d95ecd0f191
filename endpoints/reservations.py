"""`POST /api/reservations/{instanceId}/confirmation`: confirm or decline a `ReserveTicket` booking.

Body `{"confirmed": true|false}`. Checks, in order: body (400), instance exists (404), not finished
(410), is a `ReserveTicket` instance (409). Then raises `BookingConfirmed` with the bool and answers 202.
"""

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
from orchestrators.events import BOOKING_CONFIRMED
from orchestrators.inputs import RESERVE_TICKET

bp = df.Blueprint()


@bp.route(route="reservations/{instanceId}/confirmation", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def confirm_reservation(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        instance_id = route_instance_id(req)
        body = read_json_object(req, '{"confirmed": true}')
        confirmed = body.get("confirmed")
        # Only real JSON booleans: the point of this endpoint is that "false" can never confirm.
        if not isinstance(confirmed, bool):
            raise HttpError(400, "'confirmed' must be the JSON boolean true or false.")
        status = await fetch_status(client, instance_id)
        ensure_orchestration(status, instance_id, RESERVE_TICKET)
        await raise_event(client, instance_id, BOOKING_CONFIRMED, confirmed)
    except HttpError as error:
        return error.response()
    return json_response({"instanceId": instance_id, "event": BOOKING_CONFIRMED, "confirmed": confirmed}, 202)
