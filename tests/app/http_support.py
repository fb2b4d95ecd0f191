"""Calling the app's HTTP functions in-process, and a stand-in for the extension's RPC endpoint.

The functions are called through their real durable-client middleware with a binding JSON string,
exactly as the worker calls them. `FakeDurableBackend` answers the few RPC routes the Python client
uses (status, raise event, start) the way the extension does (spec durable-http-api §2, §5).
"""

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.durable_functions.models.utils import http_utils

PUBLIC_BASE = "http://localhost:7071"
WEBHOOK = "http://localhost:7071/runtime/webhooks/durabletask"


def client_binding(rpc_base_url: str, task_hub: str = "CustomStatusHub") -> str:
    """The durable-client binding payload (spec durable-http-api §4.2) pointing at `rpc_base_url`."""
    query = f"taskHub={task_hub}&connection=Storage&code=KEY"
    instance = f"{WEBHOOK}/instances/INSTANCEID"
    return json.dumps(
        {
            "taskHubName": task_hub,
            "connectionName": None,
            "creationUrls": {
                "createNewInstancePostUri": f"{WEBHOOK}/orchestrators/{{functionName}}[/{{instanceId}}]?code=KEY",
                "createAndWaitOnNewInstancePostUri": (
                    f"{WEBHOOK}/orchestrators/{{functionName}}[/{{instanceId}}]"
                    "?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&code=KEY"
                ),
            },
            "managementUrls": {
                "id": "INSTANCEID",
                "statusQueryGetUri": f"{instance}?{query}",
                "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
                "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
                "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
                "purgeHistoryDeleteUri": f"{instance}?{query}",
                "restartPostUri": f"{instance}/restart?{query}",
                "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
                "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
            },
            "baseUrl": WEBHOOK,
            "requiredQueryStringParameters": "code=KEY",
            "rpcBaseUrl": rpc_base_url,
            "httpBaseUrl": None,
            "maxGrpcMessageSizeInBytes": None,
        }
    )


def http_request(
    method: str,
    route: str,
    *,
    route_params: dict[str, str],
    body: bytes | str | None = None,
) -> func.HttpRequest:
    """A request as the worker builds it for `/api/<route>`."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return func.HttpRequest(
        method=method,
        url=f"{PUBLIC_BASE}/api/{route}",
        headers={"Content-Type": "application/json"},
        params={},
        route_params=route_params,
        body=body or b"",
    )


def call(function: func.Function, req: func.HttpRequest, binding: str) -> tuple[func.HttpResponse, Any]:
    """Invoke an HTTP function's user function (middleware included); return the response and its JSON."""
    user_function: Callable[..., Awaitable[func.HttpResponse]] = function.get_user_function()

    async def invoke() -> func.HttpResponse:
        try:
            return await user_function(req=req, client=binding)
        finally:
            # The SDK keeps one module-level aiohttp session, bound to the loop that created it; close
            # it inside this loop so the next asyncio.run() starts with a fresh one.
            await http_utils._close_session()

    response = asyncio.run(invoke())
    body = response.get_body()
    return response, json.loads(body) if body else None


def unused_port() -> socket.socket:
    """A socket bound to a free loopback port but not listening: connecting to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class FakeInstance:
    """One instance as the fake backend reports it."""

    name: str
    runtime_status: str = "Running"
    custom_status: Any = None
    output: Any = None
    # When set, raiseEvent answers this status although the status route says Running (a race).
    raise_status: int | None = None

    def to_json(self, instance_id: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "instanceId": instance_id,
            "runtimeStatus": self.runtime_status,
            "input": None,
            "customStatus": self.custom_status,
            "output": self.output,
            "createdTime": "2024-05-01T12:00:00Z",
            "lastUpdatedTime": "2024-05-01T12:00:05Z",
        }


@dataclass
class FakeDurableBackend:
    """Records the client's calls and answers them like the extension's RPC listener."""

    instances: dict[str, FakeInstance] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, body text)
    base_url: str = ""
    storage_down: bool = False  # answer every call as devhost does while storage is unreachable

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._outage])
        app.router.add_get("/durabletask/instances/{id}", self._status)
        app.router.add_post("/durabletask/instances/{id}/raiseEvent/{name}", self._raise)
        app.router.add_post("/durabletask/orchestrators/{name}", self._start)
        return app

    @web.middleware
    async def _outage(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.storage_down:
            body = {"Message": "The task hub's storage is unavailable; retry later.", "StackTrace": None}
            return web.json_response(body, status=503, headers={"Retry-After": "5"})
        return await handler(request)

    async def _record(self, request: web.Request) -> str:
        body = await request.text()
        self.requests.append((request.method, request.path, body))
        return body

    async def _status(self, request: web.Request) -> web.Response:
        await self._record(request)
        instance_id = request.match_info["id"]
        instance = self.instances.get(instance_id)
        if instance is None:
            return web.Response(status=404)
        running = instance.runtime_status in {"Running", "Pending", "Suspended", "ContinuedAsNew"}
        return web.json_response(instance.to_json(instance_id), status=202 if running else 200)

    async def _raise(self, request: web.Request) -> web.Response:
        await self._record(request)
        instance = self.instances.get(request.match_info["id"])
        if instance is None:
            return web.Response(status=404)
        if instance.raise_status is not None:
            return web.Response(status=instance.raise_status)
        if instance.runtime_status in {"Completed", "Failed", "Terminated", "Canceled"}:
            return web.Response(status=410)
        return web.Response(status=202)

    async def _start(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"id": "abc123"}, status=202)

    def raised_bodies(self) -> list[tuple[str, str]]:
        """(event name, raw body) of every raise-event call."""
        return [(path.rsplit("/", 1)[-1], body) for method, path, body in self.requests if "/raiseEvent/" in path]


@contextmanager
def running_backend(backend: FakeDurableBackend) -> Iterator[FakeDurableBackend]:
    """Serve `backend` on a loopback port from a background thread."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(backend.app())
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    backend.base_url = f"http://127.0.0.1:{port}/durabletask/"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield backend
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.run_until_complete(runner.cleanup())
        loop.close()
