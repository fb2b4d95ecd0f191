"""Durable toy app for devhost's own tests: a starter, two orchestrators and two activities."""

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="orchestrators/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["functionName"], None, req.get_json())
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def greeter(context: df.DurableOrchestrationContext):
    context.set_custom_status({"stage": "greeting"})
    greeting = yield context.call_activity("SayHello", context.get_input())
    return {"greeting": greeting}


@app.orchestration_trigger(context_name="context", orchestration="Failer")
def failing_orchestrator(context: df.DurableOrchestrationContext):
    yield context.call_activity("explode", "x")
    return "unreachable"


@app.activity_trigger(input_name="name", activity="SayHello")
def say_hello(name: str) -> str:
    return f"Hello {name}!"


@app.activity_trigger(input_name="value")
def explode(value: str) -> str:
    raise KeyError(value)
