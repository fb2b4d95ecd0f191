"""An app with bindings devhost cannot run: an Event Hubs trigger, a Service Bus output, and a blob output
whose connection is set nowhere."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="ping", methods=["GET"])
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")


@app.route(route="notify", methods=["POST"])
@app.service_bus_queue_output(arg_name="message", connection="ServiceBus", queue_name="notifications")
def notify(req: func.HttpRequest, message: func.Out[str]) -> func.HttpResponse:
    message.set(req.get_body().decode())
    return func.HttpResponse(status_code=202)


@app.event_hub_message_trigger(arg_name="event", event_hub_name="telemetry", connection="EventHub")
def on_telemetry(event: func.EventHubEvent) -> None:
    pass


@app.route(route="archive", methods=["POST"])
@app.blob_output(arg_name="copy", path="archive/{rand-guid}.txt", connection="ArchiveStorage")
def archive(req: func.HttpRequest, copy: func.Out[str]) -> func.HttpResponse:
    copy.set(req.get_body().decode())
    return func.HttpResponse(status_code=202)
