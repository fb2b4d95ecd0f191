"""A small HTTP/1.1 client for plain-``http`` storage endpoints (Azurite on loopback), on asyncio protocols.

Why: for Azurite's short requests, aiohttp's client spends 250-400 us of devhost's CPU per request
(request and response objects, header multidicts, timers, stream readers, hooks) while the work itself
is one write, one read and a dozen header lines to split. A storage call is made about 15 times per
flow on the engine's critical path, so that overhead is a tenth of devhost's CPU per flow
(``python -m bench.storage_calls_cost``).

What it does: keep-alive connections per host (at most ``limit`` at once, idle ones dropped after
``keepalive`` seconds, below Node's 5 s server timeout), one request at a time per connection,
``Content-Length`` and chunked bodies, ``Connection: close``, a total timeout per request. What it
leaves out because the storage calls never need it: TLS (``https`` endpoints stay on aiohttp),
proxies, redirects, compression, ``Expect: 100-continue``, pipelining.

The bytes on the wire are the caller's: its method, the URL's path and query as given, ``Host``, its
headers, and ``Content-Length`` (also ``0`` for a bodiless PUT, POST, PATCH or DELETE, as aiohttp sends).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Mapping

from multidict import CIMultiDict

MAX_HEAD_BYTES = 64 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Disconnected(ConnectionError):
    """The server closed the connection (or broke HTTP) before the whole response arrived."""


class PlainResponse:
    """Status, headers (case-insensitive) and body of one response."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: CIMultiDict[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Connection(asyncio.Protocol):
    """One connection: sends a request, parses its response as the bytes arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self.idle_since = 0.0
        self.waiter: asyncio.Future[PlainResponse] | None = None
        self.buffer = bytearray()
        self._head_only = False
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._headers: CIMultiDict[str] | None = None
        self._length = -1  # -1: until the connection closes
        self._chunked = False
        self._chunks: list[bytes] = []

    # ------------------------------------------------------------------------- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self._headers is not None and self._length == -1 and not self._chunked:
            self._finish(bytes(self.buffer))  # a body delimited by the end of the connection
            return
        self.waiter = None
        waiter.set_exception(Disconnected(f"connection closed before the response was complete ({exc!r})"))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:
            self._broken("data without a request")
            return
        self.buffer += data
        try:
            self._parse()
        except (ValueError, IndexError) as exc:
            self._broken(f"malformed response: {exc}")

    # --------------------------------------------------------------------------------- request
    def send(self, request: bytes, head_only: bool) -> asyncio.Future[PlainResponse]:
        assert self.transport is not None and self.waiter is None
        self.waiter = self.loop.create_future()
        self._head_only = head_only
        self.transport.write(request)
        return self.waiter

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def _broken(self, why: str) -> None:
        waiter, self.waiter = self.waiter, None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(Disconnected(why))

    # --------------------------------------------------------------------------------- parsing
    def _parse(self) -> None:
        buffer = self.buffer
        while self._headers is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    raise ValueError("response head too large")
                return
            head = buffer[:end].decode("utf-8", "surrogateescape")
            del buffer[: end + 4]
            lines = head.split("\r\n")
            version, status_text = lines[0].split(" ", 2)[:2]
            status = int(status_text)
            headers: CIMultiDict[str] = CIMultiDict()
            for line in lines[1:]:
                name, colon, value = line.partition(":")
                if not colon:
                    raise ValueError(f"header line without a colon: {line[:40]!r}")
                headers.add(name.strip(), value.strip())
            if 100 <= status < 200:
                continue  # an interim response; the real one follows
            self._status, self._headers = status, headers
            connection = headers.get("Connection", "").lower()
            if "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection):
                self.reusable = False
            if self._head_only or status in (204, 304):
                self._length = 0
            elif "chunked" in headers.get("Transfer-Encoding", "").lower():
                self._chunked = True
            elif "Content-Length" in headers:
                self._length = int(headers["Content-Length"])
            else:
                self.reusable = False  # the body runs until the server closes
                return
        if self._chunked:
            self._parse_chunks()
        elif self._length >= 0 and len(buffer) >= self._length:
            body = bytes(buffer[: self._length])
            del buffer[: self._length]
            self._finish(body)

    def _parse_chunks(self) -> None:
        buffer = self.buffer
        while True:
            end = buffer.find(b"\r\n")
            if end < 0:
                return
            size = int(bytes(buffer[:end]).split(b";", 1)[0], 16)
            if size == 0:
                # The last chunk; then trailer lines (storage services send none) and an empty line.
                if buffer[end + 2 : end + 4] == b"\r\n":
                    done = end + 4
                else:
                    trailers = buffer.find(b"\r\n\r\n", end + 2)
                    if trailers < 0:
                        return
                    done = trailers + 4
                del buffer[:done]
                self._finish(b"".join(self._chunks))
                return
            if len(buffer) < end + 2 + size + 2:
                return
            self._chunks.append(bytes(buffer[end + 2 : end + 2 + size]))
            del buffer[: end + 2 + size + 2]

    def _finish(self, body: bytes) -> None:
        waiter, self.waiter = self.waiter, None
        assert self._headers is not None
        response = PlainResponse(self._status, self._headers, body)
        self._reset()
        if self.buffer:
            self.reusable = False  # bytes beyond the response: do not trust this connection again
        if waiter is not None and not waiter.done():
            waiter.set_result(response)


class PlainHttpClient:
    """Keep-alive connections to plain-``http`` hosts, on the event loop that uses them."""

    def __init__(self, *, limit: int = 64, keepalive: float = 4.0, connect_timeout: float = 5.0,
                 total_timeout: float = 10.0) -> None:
        self.limit = limit
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self.total_timeout = total_timeout
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._connections: set[_Connection] = set()  # open ones, idle or busy
        self._in_use: set[_Connection] = set()  # with ``_connecting``: at most ``limit``
        self._connecting = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def request(self, method: str, host: str, port: int, target: str, headers: Mapping[str, str],
                      body: bytes = b"") -> PlainResponse:
        """One request; ``target`` is the path and query exactly as they go on the request line.

        Raises ``ConnectionError`` (an ``OSError``) when the connection cannot be made or breaks, and
        ``TimeoutError`` when no whole response arrived within ``total_timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.total_timeout
        request = _encode(method, host, port, target, headers, body)
        connection = await self._acquire(loop, host, port, deadline)
        timer = loop.call_at(deadline, _time_out, connection)
        try:
            response = await connection.send(request, method == "HEAD")
        except BaseException:
            connection.close()  # cancelled or broken halfway: never reused
            self._release(host, port, connection)
            raise
        finally:
            timer.cancel()
        self._release(host, port, connection)
        return response

    async def _acquire(self, loop: asyncio.AbstractEventLoop, host: str, port: int,
                       deadline: float) -> _Connection:
        if self._loop is not loop:
            self._drop_all()  # first use, or another loop: connections belong to the loop that made them
            self._loop = loop
        while len(self._in_use) + self._connecting >= self.limit:
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # the turn it was given passes to the next one waiting
                raise
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
        idle = self._idle.get((host, port))
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < self.keepalive:
                self._in_use.add(connection)
                return connection
            connection.close()
            self._connections.discard(connection)
        self._connecting += 1
        try:
            connection = await self._connect(loop, host, port, deadline)
        except BaseException:
            self._connecting -= 1
            self._wake_one()
            raise
        self._connecting -= 1
        self._connections.add(connection)
        self._in_use.add(connection)
        return connection

    async def _connect(self, loop: asyncio.AbstractEventLoop, host: str, port: int,
                       deadline: float) -> _Connection:
        timeout = min(self.connect_timeout, max(0.0, deadline - loop.time()))
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(loop), host, port), timeout)
        except TimeoutError as exc:
            # A connection that could not be made is worth another try (a request that got no answer
            # may have been acted on, so that one is not).
            raise ConnectionRefusedError(f"connecting to {host}:{port} timed out") from exc
        return connection

    def _release(self, host: str, port: int, connection: _Connection) -> None:
        if connection not in self._in_use:  # dropped meanwhile (closed client, another loop)
            connection.close()
            return
        self._in_use.discard(connection)
        if connection.closed or not connection.reusable:
            connection.close()
            self._connections.discard(connection)
        else:
            connection.idle_since = time.monotonic()
            self._idle.setdefault((host, port), []).append(connection)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _drop_all(self) -> None:
        for connection in self._connections:
            with contextlib.suppress(RuntimeError):  # a transport of a loop that is closed already
                connection.close()
        self._connections.clear()
        self._idle.clear()
        self._in_use.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)  # try again: there is room now
        self._waiters.clear()

    async def close(self) -> None:
        """Close every connection; requests still waiting for an answer fail (and may be retried)."""
        self._drop_all()


def _time_out(connection: _Connection) -> None:
    waiter, connection.waiter = connection.waiter, None
    connection.close()
    if waiter is not None and not waiter.done():
        waiter.set_exception(TimeoutError("no complete response in time"))


def _encode(method: str, host: str, port: int, target: str, headers: Mapping[str, str], body: bytes) -> bytes:
    name = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets in Host
    lines = [f"{method} {target} HTTP/1.1", f"Host: {name}" if port == 80 else f"Host: {name}:{port}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if not body and method in _BODY_METHODS and "content-length" not in headers and "Content-Length" not in headers:
        lines.append("Content-Length: 0")
    head = "\r\n".join(lines)
    # A CR or LF inside a value or the target would start a header (or a request) of its own.
    if head.count("\n") != len(lines) - 1 or head.count("\r") != len(lines) - 1:
        raise ValueError("line break inside a request line or header")
    return (head + "\r\n\r\n").encode("utf-8") + body
