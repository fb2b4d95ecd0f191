"""devhost's HTTP front end over real HTTP: function routes, admin status and the durable mounts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

from devhost.azurite import free_port
from devhost.config import load_config
from devhost.durable.client_binding import client_binding_json
from devhost.host import Host
from devhost.http.server import Dispatcher, HttpServer, build_route_table, create_app
from devhost.worker.invoker import Worker
from tests.devhost.http.support import APPS, LoopThread
from tests.http_client import request


@pytest.fixture(scope="module")
def base(start_host: Callable[..., Host]) -> str:
    """Origin of a running devhost serving the HTTP toy app."""
    host = start_host("http_app")
    return f"http://127.0.0.1:{host.config.port}"


def test_admin_status_reports_running(base: str) -> None:
    """GET /admin/host/status answers like Core Tools once the host is up."""
    reply = request("GET", f"{base}/admin/host/status")
    status = json.loads(reply.body)
    assert reply.status == 200
    assert status["state"] == "Running" and status["version"] == "4.x-devhost"
    assert isinstance(status["processUptime"], int) and status["id"]


def test_optional_route_parameter_and_case_insensitive_literals(base: str) -> None:
    """``hello/{name?}`` answers with and without the name, whatever the literal's case."""
    assert request("GET", f"{base}/api/hello").body.startswith(b"hello world from hello (")
    assert request("GET", f"{base}/API/Hello/Ann").body.startswith(b"hello Ann from hello (")


def test_wrong_method_and_unknown_route_are_empty_404s(base: str) -> None:
    """A method outside the route's list, or no route at all, gives 404 with an empty body."""
    for method, path in [("POST", "/api/hello"), ("DELETE", "/api/items/1"), ("GET", "/api/nothing")]:
        reply = request(method, f"{base}{path}", raw=b"" if method != "GET" else None, content_type=None)
        assert (reply.status, reply.body) == (404, b""), path


def test_int_constraint_and_literal_precedence(base: str) -> None:
    """``items/{id:int}`` takes numbers only, and the literal ``items/special`` wins over it."""
    assert request("GET", f"{base}/api/items/42").body == b"item 42"
    assert request("GET", f"{base}/api/items/special").body == b"special"
    assert request("GET", f"{base}/api/items/abc").status == 404


def test_request_is_echoed_as_the_function_sees_it(base: str) -> None:
    """Headers arrive lower-cased, empty query values are dropped, and the body arrives as bytes."""
    reply = request("POST", f"{base}/api/echo/a/b%20c?x=1&x=2&blank=", raw=b"payload", content_type=None,
                 headers={"X-Test": "yes", "Content-Type": "text/plain"})
    assert reply.status == 201 and reply.headers["Content-Type"] == "application/json"
    echoed = json.loads(reply.body)
    assert echoed["method"] == "POST"
    assert echoed["url"] == f"{base}/api/echo/a/b%20c?x=1&x=2&blank="
    assert echoed["headers"]["x-test"] == "yes"
    assert echoed["query"] == {"x": "1,2"}
    assert echoed["route"] == {"rest": "a/b c"}
    assert echoed["body"] == "payload"


def test_cookies_and_custom_headers_are_returned(base: str) -> None:
    """Each Set-Cookie of an HttpResponse becomes its own header, next to the custom ones."""
    reply = request("GET", f"{base}/api/cookie")
    assert reply.status == 204 and reply.headers["X-Custom"] == "yes"
    assert reply.headers.get_all("Set-Cookie") == [
        "a=1; path=/; httponly", "b=two%20words; max-age=60; path=/; secure; samesite=lax",
    ]


def test_raising_function_gives_an_empty_500(base: str) -> None:
    """An exception in the function yields 500 without leaking its message."""
    reply = request("GET", f"{base}/api/boom")
    assert reply.status == 500 and reply.body == b""


def test_str_return_is_plain_text(base: str) -> None:
    """A function returning str answers 200 text/plain."""
    reply = request("GET", f"{base}/api/plain")
    assert (reply.status, reply.body) == (200, b"just text")
    assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_homepage_when_no_function_owns_the_root(base: str) -> None:
    """GET / shows the Functions welcome page, as the host does."""
    reply = request("GET", f"{base}/")
    assert reply.status == 200 and b"Functions 4.0 app is up and running" in reply.body


def test_route_prefix_can_be_removed_by_environment(start_host: Callable[..., Host]) -> None:
    """``AzureFunctionsJobHost__extensions__http__routePrefix=""`` serves routes without ``/api``."""
    host = start_host("http_app", {"AzureFunctionsJobHost__extensions__http__routePrefix": ""})
    origin = f"http://127.0.0.1:{host.config.port}"
    assert request("GET", f"{origin}/plain").body == b"just text"
    assert request("GET", f"{origin}/api/plain").status == 404


def test_host_stop_is_idempotent(loop_thread: LoopThread) -> None:
    """Stopping twice is harmless and leaves the host Stopped."""
    host = Host(load_config(APPS / "http_app", port=free_port(), environ={}))
    loop_thread.run(host.start())
    loop_thread.run(host.stop())
    loop_thread.run(host.stop())
    assert host.status()["state"] == "Stopped"


class RecordingDurableApi:
    """A stand-in for the durable extension's API that records calls and accepts orchestration starts."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bool, Any]] = []

    async def handle_api(self, request: web.Request, path: str, *, rpc: bool) -> web.StreamResponse:
        body = await request.json() if request.body_exists else None
        self.calls.append((request.method, path, rpc, body))
        if rpc and path.startswith("orchestrators/"):
            return web.json_response({"id": "inst-42"}, status=202)
        return web.json_response({"path": path, "rpc": rpc})


@pytest.fixture(scope="module")
def durable_origin(loop_thread: LoopThread) -> Iterator[tuple[str, RecordingDurableApi]]:
    """The durable toy app served with a recording durable API in place of the extension."""
    port = free_port()
    config = load_config(APPS / "durable_app", port=port, environ={})
    worker = Worker(config)
    worker.load()
    api = RecordingDurableApi()
    worker.client_binding = lambda hub, conn: client_binding_json(
        public_origin=f"http://localhost:{port}", rpc_origin=f"http://127.0.0.1:{port}",
        task_hub=hub or config.durable.hub_name, connection_name=conn)
    dispatcher = Dispatcher(worker=worker, routes=build_route_table(worker.http_functions, config.route_prefix),
                            durable=api, status=dict)
    server = HttpServer(create_app(dispatcher), hosts=["127.0.0.1"], port=port)
    loop_thread.run(server.start())
    yield f"http://127.0.0.1:{port}", api
    loop_thread.run(server.stop())
    loop_thread.run(worker.close())


def test_durable_api_is_mounted_on_both_prefixes(durable_origin: tuple[str, RecordingDurableApi]) -> None:
    """Webhook and RPC paths reach handle_api, case-insensitively, with the tail and the rpc flag."""
    origin, _ = durable_origin
    webhook = json.loads(request("GET", f"{origin}/runtime/webhooks/DurableTask/instances/abc?taskHub=x").body)
    rpc = json.loads(request("DELETE", f"{origin}/durabletask/instances/abc").body)
    assert webhook == {"path": "instances/abc", "rpc": False}
    assert rpc == {"path": "instances/abc", "rpc": True}


def test_http_starter_uses_the_client_binding(durable_origin: tuple[str, RecordingDurableApi]) -> None:
    """The starter's DurableOrchestrationClient posts to the RPC mount and builds a 202 status response."""
    origin, api = durable_origin
    reply = request("POST", f"{origin}/api/orchestrators/greeter", raw=b'{"who": "Tokyo"}', content_type=None,
                 headers={"Content-Type": "application/json"})
    assert reply.status == 202
    assert reply.headers["Location"].startswith(f"{origin}/runtime/webhooks/durabletask/instances/inst-42?")
    assert json.loads(reply.body)["id"] == "inst-42"
    method, path, rpc, body = api.calls[-1]
    assert (method, path, rpc) == ("POST", "orchestrators/greeter", True)
    assert json.loads(body) == {"who": "Tokyo"}  # the SDK double-encodes inputs
