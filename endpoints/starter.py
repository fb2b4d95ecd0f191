"""`POST /api/orchestrators/{functionName}`: validate the input, then start the orchestration."""

import azure.durable_functions as df
import azure.functions as func

from endpoints.common import HttpError, backend_error, read_json_body
from orchestrators.inputs import STARTABLE, InputError

bp = df.Blueprint()


def resolve_orchestrator(name: str) -> str:
    """The registered spelling of `name` (case-insensitive, like durable function names); else 404."""
    for known in STARTABLE:
        if known.casefold() == name.casefold():
            return known
    raise HttpError(
        404,
        f"Unknown orchestrator '{name[:100]}'. Known orchestrators: {', '.join(STARTABLE)}.",
    )


@bp.route(route="orchestrators/{functionName}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_orchestration(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        name = resolve_orchestrator(req.route_params.get("functionName") or "")
        raw_input = read_json_body(req)
        try:
            request = STARTABLE[name](raw_input)
        except InputError as error:
            raise HttpError(400, f"Invalid input for {name}: {error}") from error
        try:
            instance_id = await client.start_new(name, None, request.to_json())
        except Exception as error:
            raise backend_error(f"start {name}", error) from error
    except HttpError as error:
        return error.response()
    return client.create_check_status_response(req, instance_id)
