"""Test app for what the deployed app does not use: a counter entity, orchestrations that call and signal it,
an orchestration that uses call_http, and an HTTP starter."""

import json

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _number(value: object) -> int:
    # Microsoft's client JSON-encodes signal input twice, so a number may arrive as its JSON text.
    return int(json.loads(value)) if isinstance(value, str) else int(value or 0)


@app.entity_trigger(context_name="context")
def Counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += _number(context.get_input())
        context.set_state(value)
        context.set_result(value)
    elif operation == "get":
        context.set_result(value)
    elif operation == "fail":
        raise ValueError("counter refused")
    elif operation == "delete":
        context.destruct_on_exit()
    else:
        context.set_state(value)


@app.orchestration_trigger(context_name="context")
def CallCounter(context: df.DurableOrchestrationContext):
    """Adds 1, 2 and 3 by calls and returns what each call answered, then the failure of 'fail'."""
    entity = df.EntityId("Counter", context.get_input())
    answers = []
    for amount in (1, 2, 3):
        answers.append((yield context.call_entity(entity, "add", amount)))
    try:
        yield context.call_entity(entity, "fail")
    except Exception as error:
        answers.append(str(error))
    return answers


@app.orchestration_trigger(context_name="context")
def SignalCounter(context: df.DurableOrchestrationContext):
    """Signals add 1 to the counter named by the input, `times` times."""
    request = context.get_input()
    entity = df.EntityId("Counter", request["key"])
    for _ in range(request["times"]):
        context.signal_entity(entity, "add", 1)
    return request["times"]
    yield  # a generator without yields before the return


@app.orchestration_trigger(context_name="context")
def FetchUrl(context: df.DurableOrchestrationContext):
    """call_http of the input's method and uri; returns what the SDK hands back."""
    request = context.get_input()
    response = yield context.call_http(request["method"], request["uri"])
    return response


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["name"], None, req.get_json())
    return client.create_check_status_response(req, instance_id)
