"""Composition and lifecycle: config → worker → (Azurite) → durable extension → HTTP server.

Startup loads the app first, so a broken app fails fast without waiting for Azurite. Shutdown runs in
reverse: stop accepting HTTP (waiting briefly for in-flight requests), stop the durable extension,
close the worker, stop an Azurite that devhost started.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from devhost import ids
from devhost.azurite import AzuriteProcess, ensure_development_storage
from devhost.azurite_supervisor import AzuriteSupervisor
from devhost.config import HostConfig
from devhost.event_loop import loop_factory
from devhost.file_watcher import watch
from devhost.heap import freeze_startup_heap
from devhost.http.access import AccessControl
from devhost.http.cors import CorsPolicy
from devhost.http.loopback import install_for_sdk
from devhost.http.server import Dispatcher, HttpServer, build_route_table, create_app
from devhost.listening import rpc_origin
from devhost.secrets import host_id
from devhost.storage_health import StorageHealth, probe_until_back, queue_endpoint
from devhost.storage_settings import require_durable_storage
from devhost.worker.invoker import Worker
from devhost.worker.selection import apply_selection

if TYPE_CHECKING:
    from devhost.bindings.accounts import StorageAccounts
    from devhost.durable.extension import DurableExtension
    from devhost.triggers.manager import TriggerManager

log = logging.getLogger("devhost.host")

HOST_VERSION = "4.x-devhost"
DEFAULT_HOSTS = ("127.0.0.1",)
OPTIONAL_HOSTS = ("::1",)  # so clients that resolve localhost to IPv6 first still connect


class Host:
    """One running function app: worker, durable extension and HTTP server."""

    def __init__(self, config: HostConfig, *, hosts: Sequence[str] | None = None) -> None:
        self.config = config
        address = config.http.address
        self.hosts = list(hosts) if hosts else [address] if address else list(DEFAULT_HOSTS)
        self.worker = Worker(config)
        self.disabled: list[str] = []
        self.access: AccessControl | None = None
        self.extension: DurableExtension | None = None
        self.storage: StorageAccounts | None = None
        self.triggers: TriggerManager | None = None
        self.azurite: AzuriteProcess | None = None
        self.azurite_supervisor: AzuriteSupervisor | None = None
        self.errors: list[str] = []  # why the host is in the Error state
        self.storage_health = StorageHealth()  # whether the task hub's storage answers
        self._storage_probe: asyncio.Task[None] | None = None
        self.server: HttpServer | None = None
        self.state = "Default"
        self.instance_id = ids.uuid4_hex()
        self._started_at = time.monotonic()
        self._stop_requested: asyncio.Event | None = None
        self._stopped = False

    @property
    def base_url(self) -> str:
        """What users type: ``0.0.0.0`` / loopback binds are shown as ``localhost``, as Core Tools does."""
        host = self.hosts[0]
        if host in ("0.0.0.0", "::", "127.0.0.1", "::1", ""):
            host = "localhost"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.config.port}"

    @property
    def needs_durable(self) -> bool:
        """Whether the app uses Durable Functions (and therefore storage) at all."""
        w = self.worker
        uses_client = any(
            info.binding is not None and info.binding.type == "durableClient"
            for fn in w.functions.values() for info in fn.input_types.values()
        )
        return bool(w.orchestrators or w.activities or w.entities or uses_client)

    @property
    def needs_storage(self) -> bool:
        """Whether the app needs Azure Storage: durable functions, storage triggers or storage bindings."""
        from devhost.bindings.support import STORAGE_OUTPUTS, STORAGE_TRIGGERS

        storage_kinds = STORAGE_TRIGGERS | STORAGE_OUTPUTS
        return self.needs_durable or any(
            str(raw.get("type")) in storage_kinds for fn in self.worker.functions.values() for raw in fn.raw_bindings)

    @property
    def trigger_types(self) -> list[str]:
        return [str(b.get("type", "")) for fn in self.worker.functions.values() for b in fn.raw_bindings]

    async def start(self) -> None:
        """Load the app and start everything; on failure, undo what was started and re-raise."""
        began = time.perf_counter()
        self.state = "Initialized"
        try:
            self.worker.load()
            self.disabled = apply_selection(self.worker, self.config.http.functions)
            routes = build_route_table(self.worker.http_functions, self.config.route_prefix)
            if self.needs_durable:
                # Before Azurite or any storage call: a missing or unsupported setting stops here.
                storage = require_durable_storage(self.config.host_json, self.config.storage, self.trigger_types)
                log.info("Task hub storage: %s", storage.describe())
            cors_policy = (CorsPolicy.build(self.config.http.cors_origins, self.config.http.cors_credentials)
                           if self.config.http.cors_origins else None)
            self.access = access = AccessControl(self.config, instance_id=self.instance_id, disabled=self.disabled)
            if (self.needs_storage or access.needs_storage) and self.config.uses_development_storage:
                self.azurite = await asyncio.to_thread(ensure_development_storage, self.config.app_dir)
                if self.azurite is not None:
                    self.azurite_supervisor = AzuriteSupervisor(self.azurite, on_give_up=self.fail)
                    self.azurite_supervisor.start()
            # Keys and the task hub both wait on storage: prepare them side by side. The binding's key is
            # set before any HTTP function (the only users of the client binding) can run.
            outcomes = await asyncio.gather(
                access.prepare(self.worker.http_functions, durable=self.needs_durable), self._start_durable(),
                return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            if self.extension is not None:
                self.extension.required_query = str(outcomes[0])
            self._attach_storage()
            # Outage handling needs a way to see storage come back: an endpoint to probe.
            endpoint = queue_endpoint(self.config.storage_connection) if self.extension is not None else None
            if endpoint is not None:
                self._storage_probe = asyncio.create_task(probe_until_back(self.storage_health, endpoint))
            dispatcher = Dispatcher(worker=self.worker, routes=routes, durable=self.extension, status=self.status,
                                    authorizer=access.authorizer, keys=access.key_routes(self.worker.functions),
                                    admin=self.triggers, storage=self.storage_health if endpoint else None)
            optional = OPTIONAL_HOSTS if self.hosts == list(DEFAULT_HOSTS) else ()
            self.server = HttpServer(create_app(dispatcher, cors_policy), hosts=self.hosts, port=self.config.port,
                                     optional_hosts=optional)
            await self.server.start()
            if self.extension is not None:
                server = self.server
                rpc_host = urlsplit(self.extension.rpc_origin).hostname
                host_loop = asyncio.get_running_loop()
                # Starters' calls skip the socket; the SDK's session is made on the loop the starters run on.
                await self.worker.call_on_user_loop(lambda: install_for_sdk(
                    lambda: server.request_handlers, self.config.port, rpc_host=rpc_host, server_loop=host_loop))
            # Last: a trigger that fires at once may start an orchestration through the HTTP API.
            assert self.triggers is not None
            await self.triggers.start()
        except BaseException:
            await self.stop()
            raise
        self.state = "Running"
        log.info("Host started (%dms)", round((time.perf_counter() - began) * 1000))

    async def _start_durable(self) -> None:
        if not self.needs_durable:
            return
        # Imported only when needed: the storage SDKs cost half a second of startup.
        from devhost.durable.extension import DurableExtension

        self.extension = DurableExtension(self.config, self.worker)
        self.extension.rpc_origin = rpc_origin(self.hosts, self.config.port)
        self.worker.client_binding = self.extension.client_binding_json
        if queue_endpoint(self.config.storage_connection) is not None:  # else nothing could see it come back
            self.extension.engine.health = self.storage_health
            self.storage_health.on_recovery(self.extension.recover)
        await self.extension.start()

    def _attach_storage(self) -> None:
        """Storage bindings for every function, and the listeners of timer, queue and blob triggers."""
        from devhost.bindings.accounts import StorageAccounts
        from devhost.bindings.storage import StorageBindings
        from devhost.triggers.manager import TriggerManager

        self.storage = StorageAccounts(os.environ)
        self.worker.storage_bindings = StorageBindings(self.storage)
        self.triggers = TriggerManager(self.worker, self.storage, self.config.host_json,
                                       host_id(self.config.app_dir), disabled=self.disabled)

    async def stop(self) -> None:
        """Stop in reverse order; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        self.state = "Stopping"
        log.info("Stopping host...")
        steps: list[tuple[str, Callable[[], Any]]] = []
        if self.server is not None:
            steps.append(("HTTP server", self.server.stop))
        if self.triggers is not None:
            steps.append(("trigger listeners", self.triggers.stop))
        if self.extension is not None:
            steps.append(("durable extension", self.extension.stop))
        steps.append(("worker", self.worker.close))
        if self.access is not None:
            steps.append(("secret store", self.access.close))
        if self.storage is not None:
            steps.append(("storage clients", self.storage.close))
        for what, step in steps:
            try:
                await step()
            except Exception:
                log.exception("Stopping the %s failed", what)
        if self._storage_probe is not None:
            self._storage_probe.cancel()
            await asyncio.gather(self._storage_probe, return_exceptions=True)
        if self.azurite_supervisor is not None:
            await self.azurite_supervisor.stop()
        if self.azurite is not None:
            await asyncio.to_thread(self.azurite.stop)
            self.azurite = None
        self.state = "Stopped"
        log.info("Host stopped.")

    def fail(self, error: str) -> None:
        """Something the host depends on is gone for good: status says Error, and why."""
        self.errors.append(error)
        if self.state == "Running":
            self.state = "Error"

    def request_stop(self) -> None:
        """Ask ``serve_forever`` to stop (signal handlers call this)."""
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def serve_forever(self, on_started: Callable[[Host], None] | None = None) -> None:
        """Start, run until ``request_stop()``, then stop."""
        self._stop_requested = asyncio.Event()
        try:
            await self.start()
            if on_started is not None:
                on_started(self)
            await self._stop_requested.wait()
        finally:
            await self.stop()

    def status(self) -> dict[str, Any]:
        """``GET /admin/host/status``, shaped like the Functions host's HostStatus."""
        storage_down = self.extension is not None and not self.storage_health.available
        status: dict[str, Any] = {
            "id": host_id(self.config.app_dir),
            "state": "Error" if storage_down and self.state == "Running" else self.state,
            "version": HOST_VERSION,
            "versionDetails": _version_details(),
            "platformVersion": "",
            "instanceId": self.instance_id,
            "computerName": socket.gethostname(),
            "processUptime": round((time.monotonic() - self._started_at) * 1000),
            "functionAppContentEditingState": "Unknown",
        }
        errors = list(self.errors)
        if storage_down:
            errors.append(f"Storage is unreachable: {self.storage_health.reason}")
        if errors:
            status["errors"] = errors  # HostStatus.Errors, as the Functions host reports them
        if self.extension is not None:
            status["storage"] = self.storage_health.describe()
        bundle = next((v for k, v in self.config.host_json.items() if k.lower() == "extensionbundle"), None)
        if isinstance(bundle, dict):
            status["extensionBundle"] = {"id": bundle.get("id"), "version": bundle.get("version")}
        return status


def _version_details() -> str:
    parts = []
    for dist in ("azure-functions", "azure-functions-durable"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return "devhost (" + ", ".join(parts) + ")"


def run(config: HostConfig, *, hosts: Sequence[str] | None = None,
        on_started: Callable[[Host], None] | None = None, restart: Callable[[], None] | None = None) -> int:
    """Run the host until SIGINT/SIGTERM on one event loop for its whole life; returns the exit code.

    A second signal while stopping gives up on a clean stop and exits at once. With ``restart``, a change
    to host.json or the app's files stops the host cleanly and then calls ``restart`` (which re-executes).
    """
    # The worker runs with the app directory as cwd; the Functions host tells apps where they run.
    os.chdir(config.app_dir)
    os.environ.setdefault("AZURE_FUNCTIONS_ENVIRONMENT", "Development")
    os.environ.setdefault("WEBSITE_HOSTNAME", f"localhost:{config.port}")
    host = Host(config, hosts=hosts)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals > 1:
                log.warning("Second stop signal: exiting without a clean shutdown.")
                if host.azurite is not None:
                    host.azurite.process.kill()
                os._exit(1)
            host.request_stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)

        def on_change(_: list[str]) -> None:
            nonlocal restarting
            restarting = True
            host.request_stop()

        def started(running: Host) -> None:
            frozen = freeze_startup_heap()
            if frozen:
                log.debug("Start-up heap frozen: %d objects kept out of full collections", frozen)
            if on_started is not None:
                on_started(running)

        watcher = asyncio.ensure_future(watch(config.app_dir, on_change)) if restart is not None else None
        try:
            await host.serve_forever(started)
        finally:
            if watcher is not None:
                watcher.cancel()

    restarting = False
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main())
    if restarting and restart is not None:
        restart()
    return 0
