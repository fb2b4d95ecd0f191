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
import uuid
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

from devhost.azurite import AzuriteProcess, ensure_development_storage
from devhost.config import HostConfig
from devhost.file_watcher import watch
from devhost.http.server import Dispatcher, HttpServer, build_route_table, create_app
from devhost.worker.invoker import Worker

if TYPE_CHECKING:
    from devhost.durable.extension import DurableExtension

log = logging.getLogger("devhost.host")

HOST_VERSION = "4.x-devhost"
DEFAULT_HOSTS = ("127.0.0.1",)
OPTIONAL_HOSTS = ("::1",)  # so clients that resolve localhost to IPv6 first still connect


class Host:
    """One running function app: worker, durable extension and HTTP server."""

    def __init__(self, config: HostConfig, *, hosts: Sequence[str] | None = None) -> None:
        self.config = config
        self.hosts = list(hosts) if hosts else list(DEFAULT_HOSTS)
        self.worker = Worker(config)
        self.extension: DurableExtension | None = None
        self.azurite: AzuriteProcess | None = None
        self.server: HttpServer | None = None
        self.state = "Default"
        self.instance_id = uuid.uuid4().hex
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

    async def start(self) -> None:
        """Load the app and start everything; on failure, undo what was started and re-raise."""
        began = time.perf_counter()
        self.state = "Initialized"
        try:
            self.worker.load()
            routes = build_route_table(self.worker.http_functions, self.config.route_prefix)
            if self.needs_durable:
                if self.config.uses_development_storage:
                    self.azurite = await asyncio.to_thread(ensure_development_storage, self.config.app_dir)
                # Imported only when needed: the storage SDKs cost half a second of startup.
                from devhost.durable.extension import DurableExtension

                self.extension = DurableExtension(self.config, self.worker)
                self.worker.client_binding = self.extension.client_binding_json
                await self.extension.start()
            dispatcher = Dispatcher(worker=self.worker, routes=routes, durable=self.extension, status=self.status)
            optional = OPTIONAL_HOSTS if self.hosts == list(DEFAULT_HOSTS) else ()
            self.server = HttpServer(create_app(dispatcher), hosts=self.hosts, port=self.config.port,
                                     optional_hosts=optional)
            await self.server.start()
        except BaseException:
            await self.stop()
            raise
        self.state = "Running"
        log.info("Host started (%dms)", round((time.perf_counter() - began) * 1000))

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
        if self.extension is not None:
            steps.append(("durable extension", self.extension.stop))
        steps.append(("worker", self.worker.close))
        for what, step in steps:
            try:
                await step()
            except Exception:
                log.exception("Stopping the %s failed", what)
        if self.azurite is not None:
            await asyncio.to_thread(self.azurite.stop)
            self.azurite = None
        self.state = "Stopped"
        log.info("Host stopped.")

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
        status: dict[str, Any] = {
            "id": _host_id(),
            "state": self.state,
            "version": HOST_VERSION,
            "versionDetails": _version_details(),
            "platformVersion": "",
            "instanceId": self.instance_id,
            "computerName": socket.gethostname(),
            "processUptime": round((time.monotonic() - self._started_at) * 1000),
            "functionAppContentEditingState": "Unknown",
        }
        bundle = next((v for k, v in self.config.host_json.items() if k.lower() == "extensionbundle"), None)
        if isinstance(bundle, dict):
            status["extensionBundle"] = {"id": bundle.get("id"), "version": bundle.get("version")}
        return status


def _host_id() -> str:
    # The host id is derived from the machine name: lower-case, at most 32 characters.
    name = "".join(c for c in socket.gethostname().lower() if c.isalnum() or c == "-")
    return (name or "devhost")[:32].rstrip("-")


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

        watcher = asyncio.ensure_future(watch(config.app_dir, on_change)) if restart is not None else None
        try:
            await host.serve_forever(on_started)
        finally:
            if watcher is not None:
                watcher.cancel()

    restarting = False
    asyncio.run(main())
    if restarting and restart is not None:
        restart()
    return 0
