"""HTTP toy app for devhost's own tests: one function per behaviour under test."""

import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="hello/{name?}", methods=["GET"])
def hello(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    name = req.route_params.get("name", "world")
    return func.HttpResponse(f"hello {name} from {context.function_name} ({context.invocation_id})")


@app.route(route="echo/{*rest}", methods=["POST", "PUT", "GET"])
async def echo(req: func.HttpRequest) -> func.HttpResponse:
    payload = {
        "method": req.method,
        "url": req.url,
        "headers": dict(req.headers),
        "query": dict(req.params),
        "route": dict(req.route_params),
        "body": req.get_body().decode("utf-8", "replace"),
    }
    return func.HttpResponse(json.dumps(payload), mimetype="application/json", status_code=201)


@app.route(route="items/{id:int}", methods=["GET"])
def item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"item {req.route_params['id']}")


@app.route(route="items/special")
def special(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("special")


@app.function_name("cookies")
@app.route(route="cookie")
def set_cookies(req: func.HttpRequest) -> func.HttpResponse:
    headers = {"X-Custom": "yes", "Set-Cookie": "a=1; Path=/; HttpOnly"}
    response = func.HttpResponse("", status_code=204, headers=headers)
    response.headers.add("Set-Cookie", "b=\"two words\"; Max-Age=60; Secure; SameSite=Lax")
    return response


@app.route(route="boom")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise ValueError("secret internals")


@app.route(route="plain")
def plain(req: func.HttpRequest) -> str:
    return "just text"
