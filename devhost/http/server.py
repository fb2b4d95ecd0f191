"""The aiohttp front end: function routes, ``/admin/host/status`` and the Durable HTTP API mounts.

One catch-all aiohttp route hands every request to ``Dispatcher``, which only decides *where* a
request goes; invoking functions is the worker's job and the Durable API is the extension's.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web
from multidict import CIMultiDict

from devhost import spans
from devhost.errors import AppLoadError, ConfigError, FunctionInvocationError
from devhost.http import cors
from devhost.http.admin_keys import KeysRoutes, is_key_route
from devhost.http.auth import DURABLE_SYSTEM_KEY, Authorizer
from devhost.http.routes import RouteTable, decode_path, join_prefix
from devhost.http.validation import InvalidInput, check_durable_request
from devhost.monitor.handler import is_monitor_path, serve_monitor
from devhost.secrets import AuthLevel
from devhost.storage_health import RETRY_AFTER_SECONDS, StorageHealth
from devhost.worker.http_data import HttpRequestData, HttpResponseData
from devhost.worker.invoker import Worker
from devhost.worker.loader import LoadedFunction

log = logging.getLogger("devhost.http")

MAX_REQUEST_BODY = 100 * 1024 * 1024  # the Functions host's default maxRequestBodySize (~100 MB)
WEBHOOK_PREFIX = "/runtime/webhooks/durabletask"
RPC_PREFIX = "/durabletask"
_DROPPED_RESPONSE_HEADERS = {"content-length", "transfer-encoding", "connection"}
HOMEPAGE = (
    "<!DOCTYPE html><html><head><title>Your Azure Function App is up and running.</title></head>"
    "<body><h1>Your Functions 4.0 app is up and running</h1>"
    "<p>Served locally by devhost.</p></body></html>"
)


class DurableApi(Protocol):
    async def handle_api(self, request: web.Request, tail: str, *, rpc: bool) -> web.StreamResponse:
        """Serve one Durable HTTP API request; ``tail`` is the still-encoded path after the API base."""
        ...


def api_tail(raw_path: str, decoded_path: str, prefix: str) -> str:
    """The path after the API base, still percent-encoded, so that the API decodes each segment once.

    The extension decodes instance ids and event names from the raw URL; only when the base itself was
    percent-encoded (and so is not found in the raw path) does the decoded path stand in for it.
    """
    if raw_path.lower() == prefix or raw_path.lower().startswith(prefix + "/"):
        return raw_path[len(prefix):].lstrip("/")
    return decoded_path[len(prefix):].lstrip("/")


class AdminInvoker(Protocol):
    def invoke_by_admin(self, name: str, body: Any) -> None: ...


def build_route_table(functions: Sequence[LoadedFunction], route_prefix: str) -> RouteTable[LoadedFunction]:
    """Compile every HTTP function's route (``routePrefix`` applied); a bad template is a load error."""
    table: RouteTable[LoadedFunction] = RouteTable()
    for fn in functions:
        assert fn.http is not None
        template = join_prefix(route_prefix, fn.http.route)
        try:
            table.add(template, fn.http.methods, fn)
        except ValueError as exc:
            raise AppLoadError(f"function '{fn.name}': invalid route template {fn.http.route!r}: {exc}") from exc
    return table


class Dispatcher:
    """Routes one request to status, the Durable API, a function, the homepage, or 404."""

    def __init__(self, *, worker: Worker, routes: RouteTable[LoadedFunction], durable: DurableApi | None,
                 status: Callable[[], Mapping[str, Any]], authorizer: Authorizer | None = None,
                 keys: KeysRoutes | None = None, admin: AdminInvoker | None = None,
                 storage: StorageHealth | None = None) -> None:
        self.worker = worker
        self.routes = routes
        self.durable = durable
        self.status = status
        self.auth = authorizer or Authorizer(None)
        self.keys = keys
        self.admin = admin
        self.storage = storage

    async def handle(self, request: web.Request) -> web.StreamResponse:
        routed = self._route(request)
        if not spans.on:
            return await routed
        return await spans.timed("request", f"{request.method} {request.rel_url.raw_path[:160]}", routed)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        path = decode_path(raw_path)
        lowered = path.lower()
        if is_monitor_path(lowered):
            # Static files that need no key; the API calls the page makes go through the routes below.
            return await serve_monitor(request, path)
        if lowered == "/admin/host/status" and request.method in ("GET", "HEAD"):
            refused = await self.auth.route_gate(request, AuthLevel.ADMIN)
            return refused or web.json_response(dict(self.status()))
        if lowered == "/admin/host/ping" and request.method in ("GET", "POST", "HEAD"):
            return web.Response(status=200)
        if self.keys is not None and is_key_route(path):
            return await self.keys.handle(request, path)
        if lowered.startswith("/admin/functions/") and request.method == "POST":
            return await self._admin_invoke(request, path[len("/admin/functions/"):])
        for prefix, rpc in ((WEBHOOK_PREFIX, False), (RPC_PREFIX, True)):
            if lowered == prefix or lowered.startswith(prefix + "/"):
                refused = await self._durable_gate(request, rpc)
                return refused or await self._durable(request, api_tail(raw_path, path, prefix), rpc)
        match = self.routes.match(request.method, path)
        if match is None:
            if path in ("", "/") and request.method in ("GET", "HEAD"):
                return web.Response(text=HOMEPAGE, content_type="text/html")
            return web.Response(status=404)
        refused = await self.auth.function_gate(request, match.target)
        return refused or await self._function(request, match.target, match.values)

    async def _durable_gate(self, request: web.Request, rpc: bool) -> web.Response | None:
        """The webhooks need the durabletask_extension system key (or the master key). The RPC path needs
        no key but, like the extension's own listener on 127.0.0.1, only callers on this machine reach it."""
        if not rpc:
            return await self.auth.route_gate(request, AuthLevel.SYSTEM, DURABLE_SYSTEM_KEY)
        if self.auth.enabled and not from_this_machine(request):
            return web.Response(status=404)
        return None

    async def _durable(self, request: web.Request, tail: str, rpc: bool) -> web.StreamResponse:
        if self.durable is None:
            return web.Response(status=404)
        try:
            await check_durable_request(request, tail)
        except InvalidInput as exc:
            return exc.response()
        if self.storage is not None and not self.storage.available:
            return storage_unavailable(self.storage)  # at once, instead of each request waiting to fail
        try:
            return await self.durable.handle_api(request, tail, rpc=rpc)
        except web.HTTPException:
            raise
        except Exception as exc:
            what = f"{request.method} {request.rel_url.path}"
            if self.storage is not None and (self.storage.failed(exc, what) or (
                    self._app_hub(request) and self.storage.lost_writes(exc, what))):
                return storage_unavailable(self.storage)  # the task hub is being re-created: retry shortly
            log.exception("Durable HTTP API request %s %s failed", request.method, request.rel_url)
            return web.Response(status=500)

    def _app_hub(self, request: web.Request) -> bool:
        """Whether the request addresses the app's own task hub (the one the engine runs)."""
        named = next((v.strip() for k, v in request.query.items() if k.lower() == "taskhub"), "")
        return not named or named.lower() == str(getattr(self.durable, "hub_name", "")).lower()

    async def _admin_invoke(self, request: web.Request, name: str) -> web.StreamResponse:
        """``POST /admin/functions/{name}`` with ``{"input": "..."}``: 202 once the run has started."""
        from devhost.triggers.manager import AdminInvocationError

        refused = await self.auth.route_gate(request, AuthLevel.ADMIN)  # the master key, when keys are checked
        if refused is not None:
            return refused
        if self.admin is None or not name or "/" in name:
            return web.Response(status=404)
        try:
            body = json.loads(await request.read() or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):
            return web.json_response({"error": 'the body must be JSON like {"input": "..."}'}, status=400)
        try:
            self.admin.invoke_by_admin(name, body)
        except AdminInvocationError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        return web.Response(status=202)

    async def _function(self, request: web.Request, fn: LoadedFunction,
                        route_values: Mapping[str, str]) -> web.StreamResponse:
        data = HttpRequestData.build(
            method=request.method,
            url=str(request.url),
            headers=request.headers.items(),
            query=request.query.items(),
            route_params=route_values,
            body=await request.read(),
        )
        try:
            response = await self.worker.invoke_http(fn, data)
            return to_web_response(response)
        except FunctionInvocationError:
            refusal = self.worker.refusals.get(fn.name)
            if refusal is not None:  # a function devhost cannot run says why, instead of a bare 500
                return web.json_response({"error": f"function '{fn.name}' cannot run on devhost: {refusal}"},
                                         status=501)
            return web.Response(status=500)  # already logged by the worker; the host exposes nothing
        except Exception:
            log.exception("Writing the response of 'Functions.%s' failed", fn.name)
            return web.Response(status=500)


def storage_unavailable(storage: StorageHealth) -> web.Response:
    """503 while the task hub's storage cannot be reached, in the extension's error shape."""
    body = {"Message": "The task hub's storage is unavailable; retry later.",
            "ExceptionMessage": f"Storage cannot be reached: {storage.reason}" if not storage.available
            else "Storage lost the task hub's last writes; the hub is being re-created.",
            "ExceptionType": "DurableTask.AzureStorage.Storage.DurableTaskStorageException", "StackTrace": None}
    return web.json_response(body, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def to_web_response(data: HttpResponseData) -> web.Response:
    """An aiohttp response with the function's status, headers (repeats kept) and body."""
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in data.headers:
        if name.lower() not in _DROPPED_RESPONSE_HEADERS:
            headers.add(name, value)
    return web.Response(status=data.status, headers=headers, body=data.body or None)


def from_this_machine(request: web.Request) -> bool:
    """Whether the caller runs on this machine: it connected from loopback, or from the very address it
    connected to (a process here calling the machine's own network address)."""
    transport = request.transport
    if transport is None:
        return False
    peer, local = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
    if not peer or not local:
        return False
    try:
        caller = ipaddress.ip_address(str(peer[0]).split("%")[0])
        own = ipaddress.ip_address(str(local[0]).split("%")[0])
    except ValueError:
        return False
    caller = getattr(caller, "ipv4_mapped", None) or caller
    own = getattr(own, "ipv4_mapped", None) or own
    return caller.is_loopback or caller == own


def create_app(dispatcher: Dispatcher, cors_policy: cors.CorsPolicy | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_REQUEST_BODY)
    if cors_policy is not None:
        cors.install(app, cors_policy)
    app.router.add_route("*", "/{tail:.*}", dispatcher.handle)
    return app


class HttpServer:
    """Serves an aiohttp app on one port and a set of loopback (or given) addresses."""

    def __init__(self, app: web.Application, *, hosts: Sequence[str], port: int,
                 optional_hosts: Sequence[str] = ()) -> None:
        self.app = app
        self.hosts = list(hosts)
        self.optional_hosts = list(optional_hosts)  # e.g. ::1; skipped quietly when unavailable
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        # shutdown_timeout bounds how long stop() waits for in-flight requests.
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
        await runner.setup()
        self._runner = runner
        try:
            for host in self.hosts:
                try:
                    await web.TCPSite(runner, host, self.port, reuse_address=True).start()
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        raise ConfigError(f"Port {self.port} is unavailable. Close the process using that port, "
                                          "or specify another port using --port [-p].") from None
                    raise ConfigError(f"cannot listen on {host}:{self.port}: {exc.strerror or exc}") from None
            for host in self.optional_hosts:
                try:
                    await web.TCPSite(runner, host, self.port, reuse_address=True).start()
                except OSError as exc:
                    log.debug("Not listening on %s:%s: %s", host, self.port, exc)
        except BaseException:
            await self.stop()
            raise

    @property
    def request_handlers(self) -> web.Server | None:
        """aiohttp's low-level server (a factory of request handlers) once started, for in-process calls."""
        return self._runner.server if self._runner is not None else None

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
