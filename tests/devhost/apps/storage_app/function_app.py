"""Storage triggers and bindings for devhost's own tests (never deployed).

Names of queues, containers and tables come from app settings so each test run uses fresh ones.
"""

import json
import uuid

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.timer_trigger(arg_name="timer", schedule="*/3 * * * * *")
@app.durable_client_input(client_name="client")
async def start_on_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    await client.start_new("Hello", None, "timer")


@app.timer_trigger(arg_name="timer", schedule="0 0 3 * * *")
@app.table_output(arg_name="row", table_name="%TABLE%", connection="AzureWebJobsStorage")
def nightly_report(timer: func.TimerRequest, row: func.Out[str]) -> None:
    row.set(json.dumps({"PartitionKey": "timer", "RowKey": uuid.uuid4().hex, "IsPastDue": timer.past_due,
                        "Status": json.dumps(timer.schedule_status)}))


@app.orchestration_trigger(context_name="context", orchestration="Hello")
def hello(context: df.DurableOrchestrationContext):
    greeting = yield context.call_activity("Greet", context.get_input())
    return greeting


@app.activity_trigger(input_name="name", activity="Greet")
def greet(name: str) -> str:
    return f"Hello {name}!"


@app.queue_trigger(arg_name="msg", queue_name="%ORDERS_QUEUE%", connection="AzureWebJobsStorage")
@app.blob_output(arg_name="receipt", path="%CONTAINER%/{id}.json", connection="AzureWebJobsStorage")
def on_order(msg: func.QueueMessage, receipt: func.Out[str]) -> None:
    order = msg.get_json()
    if order.get("item") == "fail":
        raise ValueError(f"cannot process order {order['id']} (attempt {msg.dequeue_count})")
    receipt.set(json.dumps({**order, "dequeueCount": msg.dequeue_count, "messageId": msg.id}))


@app.blob_trigger(arg_name="upload", path="%UPLOADS%/{name}.txt", connection="AzureWebJobsStorage")
@app.table_output(arg_name="row", table_name="%TABLE%", connection="AzureWebJobsStorage")
def on_upload(upload: func.InputStream, row: func.Out[str]) -> None:
    name = upload.name.rsplit("/", 1)[-1].removesuffix(".txt")
    if name.startswith("fail-"):
        raise ValueError(f"cannot process upload {name}")
    row.set(json.dumps({"PartitionKey": f"upload-{name}", "RowKey": uuid.uuid4().hex,
                        "Content": upload.read().decode(), "Length": upload.length, "Path": upload.name}))


@app.route(route="enqueue", methods=["POST"])
@app.queue_output(arg_name="order", queue_name="%ORDERS_QUEUE%", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, order: func.Out[str]) -> func.HttpResponse:
    order.set(req.get_body().decode())
    return func.HttpResponse(status_code=202)


@app.route(route="orders/{id}", methods=["GET"])
@app.blob_input(arg_name="receipt", path="%CONTAINER%/{id}.json", connection="AzureWebJobsStorage")
@app.table_input(arg_name="rows", table_name="%TABLE%", partition_key="upload-{id}",
                 connection="AzureWebJobsStorage")
def read_back(req: func.HttpRequest, receipt: str, rows: str) -> func.HttpResponse:
    body = {"receipt": json.loads(receipt) if receipt else None, "uploads": json.loads(rows)}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")
