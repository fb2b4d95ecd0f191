"""`GET /api/instances/{instanceId}`: the instance's status, custom status included.

Answers 200 for every existing instance, finished ones too (their `output` is the point of asking),
and 404 when there is no such instance.
"""

import azure.durable_functions as df
import azure.functions as func

from endpoints.common import HttpError, fetch_status, json_response, route_instance_id
from orchestrators.timestamps import iso_utc

bp = df.Blueprint()


@bp.route(route="instances/{instanceId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_instance_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        instance_id = route_instance_id(req)
        status = await fetch_status(client, instance_id)
    except HttpError as error:
        return error.response()
    return json_response(
        {
            "instanceId": status.instance_id or instance_id,
            "name": status.name,
            "runtimeStatus": status.runtime_status.name if status.runtime_status else None,
            "customStatus": status.custom_status,
            "output": status.output,
            "createdTime": iso_utc(status.created_time) if status.created_time else None,
            "lastUpdatedTime": iso_utc(status.last_updated_time) if status.last_updated_time else None,
        }
    )
