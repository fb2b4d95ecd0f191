"""The app's calls to devhost's own HTTP API, served in process: the same HTTP, no socket.

A starter's durable client posts to ``rpcBaseUrl`` (``http://127.0.0.1:{port}/durabletask/``), which is
devhost itself. Over loopback TCP that request costs two sockets' worth of system calls and event-loop
wake-ups on each side, in the process that also answers it. Here the SDK's shared aiohttp session gets
a connector that, for devhost's own address, joins aiohttp's client protocol straight to a request
handler of devhost's aiohttp server through a pair of in-memory transports: the request is still
written, parsed, routed and answered as HTTP/1.1 by the same code, so what the app sees is unchanged,
only the kernel is left out. Any other address goes over TCP as before.

The SDK keeps its session in module state (``http_utils._client_session``) and makes its own TCP one
whenever that is unset or closed (after a connection error, for instance), so this is a speed-up that
falls back by itself, never a second path with its own behaviour.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

log = logging.getLogger("devhost.http")

SDK_HTTP_MODULE = "azure.durable_functions.models.utils.http_utils"
ENV_VAR = "DEVHOST_LOOPBACK"  # "tcp": the SDK's calls to this host go over loopback TCP, e.g. to compare


class _MemoryTransport(asyncio.Transport):
    """One end of an in-memory byte pipe: what is written here is received by the peer protocol."""

    def __init__(self, loop: asyncio.AbstractEventLoop, extra: dict[str, Any]) -> None:
        super().__init__(extra)
        self._loop = loop
        self.peer: _MemoryTransport | None = None
        self.protocol: asyncio.Protocol | None = None
        self._closing = False

    # Delivery is deferred to the next loop iteration, as a socket's would be: a protocol must never
    # see data re-entrantly from inside its own write().
    def write(self, data: bytes | bytearray | memoryview) -> None:
        peer = self.peer
        if self._closing or peer is None or peer._closing or not data:
            return
        peer._deliver(peer._receive, bytes(data))

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def _deliver(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback`` on this end's loop: the two ends may live on different loops (threads)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._loop.call_soon(callback, *args)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback, *args)

    def _receive(self, data: bytes) -> None:
        if not self._closing and self.protocol is not None:
            self.protocol.data_received(data)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self.protocol is not None:
            self._deliver(self.protocol.connection_lost, None)
        peer = self.peer
        if peer is not None and not peer._closing:
            # The other side sees the connection end as it would see a socket's end.
            peer._deliver(peer.close)

    def abort(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass  # the peer writes whole messages; nothing piles up that flow control would stop

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return not self._closing


class InProcessConnector(aiohttp.TCPConnector):
    """A TCP connector that serves ``local`` (host, port) pairs in this process while ``handlers`` gives a server.

    ``handlers`` returns aiohttp's running ``web.Server`` (a factory of request handlers), or None once
    the server stopped: new connections then go to TCP and fail as they would against a stopped host.
    """

    def __init__(self, handlers: Callable[[], Callable[[], asyncio.Protocol] | None], local: set[tuple[str, int]],
                 *, server_loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handlers = handlers
        self._local = local
        # The server's loop: the host's, while the SDK's session lives on the worker's loop for user code.
        self._server_loop = server_loop

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> ResponseHandler:  # noqa: ASYNC109
        server = self._handlers()
        if server is None or (req.url.raw_host, req.url.port) not in self._local or req.proxy:
            return await super()._create_connection(req, traces, timeout)
        loop = asyncio.get_running_loop()
        server_loop = self._server_loop or loop
        port = req.url.port or 0
        client_end = _MemoryTransport(loop, {"peername": ("127.0.0.1", port), "sockname": ("127.0.0.1", 0)})
        server_end = _MemoryTransport(server_loop, {"peername": ("127.0.0.1", 0), "sockname": ("127.0.0.1", port)})
        client_end.peer, server_end.peer = server_end, client_end
        client = ResponseHandler(loop)
        handler = server()
        client_end.protocol, server_end.protocol = client, handler
        # The handler starts its request task on the server's loop; the request bytes the client writes
        # next are queued behind this call on that same loop, so they always arrive after it.
        server_end._deliver(handler.connection_made, server_end)
        client.connection_made(client_end)
        return client


def install_for_sdk(handlers: Callable[[], Callable[[], asyncio.Protocol] | None], port: int, *,
                    rpc_host: str | None = None, server_loop: asyncio.AbstractEventLoop | None = None) -> bool:
    """Give the Durable SDK a shared session whose calls to this host stay in process; False if no SDK.

    Call it on the loop the app's async functions run on (the session is bound to it); ``server_loop``
    is the loop of devhost's HTTP server, when that is another one.
    """
    http_utils = sys.modules.get(SDK_HTTP_MODULE)
    if http_utils is None or os.environ.get(ENV_VAR, "").strip().lower() == "tcp":
        return False  # the app does not use the durable client: nothing to speed up
    current = getattr(http_utils, "_client_session", None)
    if current is not None and not current.closed:
        return False  # already made (and in use): leave it alone
    # rpc_host: the loopback address the client binding names when devhost listens on another one.
    local = {("127.0.0.1", port), ("localhost", port), *([(rpc_host, port)] if rpc_host else [])}
    # The SDK's own settings for its session (limits and timeouts), so only the transport differs.
    connector = InProcessConnector(handlers, local, server_loop=server_loop, limit=30, limit_per_host=30)
    timeout = aiohttp.ClientTimeout(total=240, sock_connect=10, sock_read=None)
    http_utils._client_session = aiohttp.ClientSession(timeout=timeout, connector=connector)  # type: ignore[attr-defined]
    log.debug("Durable client calls to port %d are served in process", port)
    return True
