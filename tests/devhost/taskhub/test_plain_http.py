"""The small HTTP/1.1 client of the hot storage calls, against a scripted server that sees the raw bytes:
what goes on the wire, keep-alive reuse and its limits, bodies split anywhere, and every way a
response can end early."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from devhost.durable.taskhub import storage_http
from devhost.durable.taskhub.plain_http import Disconnected, PlainHttpClient
from devhost.durable.taskhub.storage_http import StorageAccount, StorageHttp
from tests.devhost.taskhub.conftest import run

Reply = Callable[[int, bytes, asyncio.StreamWriter], Awaitable[bool]]  # (request number, request) -> keep open


@dataclass
class Server:
    port: int = 0
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + (await reader.readexactly(length) if length else b"")


@asynccontextmanager
async def scripted(reply: Reply) -> AsyncIterator[Server]:
    server = Server()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        server.open_now += 1
        server.most_open = max(server.most_open, server.open_now)
        try:
            while (request := await _read_request(reader)) is not None:
                server.requests.append(request)
                if not await reply(len(server.requests), request, writer):
                    break
        finally:
            server.open_now -= 1
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


def ok(body: bytes = b"ok", extra: bytes = b"") -> Reply:
    async def reply(_: int, __: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return True
    return reply


def test_request_bytes_are_the_callers() -> None:
    async def scenario() -> None:
        async with scripted(ok()) as server:
            client = PlainHttpClient()
            await client.request("GET", "127.0.0.1", server.port, "/a/q/messages?x=1&y=%2B", {"x-ms-a": "1"})
            await client.request("DELETE", "127.0.0.1", server.port, "/a/q/messages/1?popreceipt=r", {})
            await client.request("POST", "127.0.0.1", server.port, "/a/q/messages",
                                 {"content-type": "application/xml", "content-length": "4"}, b"<x/>")
            await client.close()
        get, delete, post = server.requests
        assert get == (b"GET /a/q/messages?x=1&y=%2B HTTP/1.1\r\nHost: 127.0.0.1:" + str(server.port).encode()
                       + b"\r\nx-ms-a: 1\r\n\r\n")
        assert delete.endswith(b"\r\nContent-Length: 0\r\n\r\n")  # as aiohttp sends a bodiless DELETE
        assert post.endswith(b"content-type: application/xml\r\ncontent-length: 4\r\n\r\n<x/>")
        assert b"Content-Type" not in get + delete  # nothing invented: the service signs what it receives
        assert server.connections == 1  # one keep-alive connection for calls one after another

    run(scenario())


def test_host_header() -> None:
    from devhost.durable.taskhub.plain_http import _encode

    assert _encode("GET", "127.0.0.1", 80, "/", {}, b"").startswith(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    assert b"\r\nHost: [::1]:10001\r\n" in _encode("GET", "::1", 10001, "/", {}, b"")


def test_line_breaks_in_headers_are_refused() -> None:
    async def scenario() -> None:
        async with scripted(ok()) as server:
            client = PlainHttpClient()
            with pytest.raises(ValueError):
                await client.request("GET", "127.0.0.1", server.port, "/x", {"x-ms-a": "1\r\nInjected: yes"})
            with pytest.raises(ValueError):
                await client.request("GET", "127.0.0.1", server.port, "/x HTTP/1.1\r\nInjected: yes", {})
            await client.close()
        assert server.requests == []

    run(scenario())


def test_bodies_split_anywhere() -> None:
    """Content-Length and chunked bodies (with extensions and trailers) arriving a few bytes at a time."""
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-ms-a: v\r\n\r\n"
               b"5;ext=1\r\nhello\r\n7\r\n, \r\n\r\nx\r\n0\r\nTrailer: t\r\n\r\n")
    plain = b"HTTP/1.1 201 Created\r\nContent-Length: 11\r\nx-ms-popreceipt: r==\r\n\r\nhello world"

    async def reply(number: int, _: bytes, writer: asyncio.StreamWriter) -> bool:
        data = chunked if number % 2 else plain
        for i in range(0, len(data), 3):
            writer.write(data[i:i + 3])
            await writer.drain()
            await asyncio.sleep(0)
        return True

    async def scenario() -> None:
        async with scripted(reply) as server:
            client = PlainHttpClient()
            for _ in range(2):
                first = await client.request("GET", "127.0.0.1", server.port, "/", {})
                assert (first.status, first.body, first.headers["X-MS-A"]) == (200, b"hello, \r\n\r\nx", "v")
                second = await client.request("PUT", "127.0.0.1", server.port, "/", {})
                assert (second.status, second.body, second.headers["x-ms-popreceipt"]) == (201, b"hello world",
                                                                                            "r==")
            await client.close()
        assert server.connections == 1

    run(scenario())


def test_no_content_interim_responses_and_connection_close() -> None:
    async def reply(number: int, _: bytes, writer: asyncio.StreamWriter) -> bool:
        if number == 1:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nETag: e\r\n\r\n")
            return True
        if number == 2:
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi")
            return False
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")  # no length: the body ends with the connection
        return False

    async def scenario() -> None:
        async with scripted(reply) as server:
            client = PlainHttpClient()
            first = await client.request("PATCH", "127.0.0.1", server.port, "/", {})
            assert (first.status, first.body, first.headers["etag"]) == (204, b"", "e")
            second = await client.request("GET", "127.0.0.1", server.port, "/", {})
            assert second.body == b"hi"
            third = await client.request("GET", "127.0.0.1", server.port, "/", {})
            assert third.body == b"until the end"
            await client.close()
        assert server.connections == 2  # reused after the 204, not after "Connection: close"

    run(scenario())


def test_a_response_cut_short_fails_and_the_next_request_works() -> None:
    async def reply(number: int, _: bytes, writer: asyncio.StreamWriter) -> bool:
        if number == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
            return False
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    async def scenario() -> None:
        async with scripted(reply) as server:
            client = PlainHttpClient()
            with pytest.raises(Disconnected):
                await client.request("GET", "127.0.0.1", server.port, "/", {})
            assert (await client.request("GET", "127.0.0.1", server.port, "/", {})).body == b"ok"
            await client.close()

    run(scenario())


def test_no_answer_times_out_and_the_connection_is_not_reused() -> None:
    async def reply(number: int, _: bytes, writer: asyncio.StreamWriter) -> bool:
        if number == 1:
            return True  # never answers this one
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    async def scenario() -> None:
        async with scripted(reply) as server:
            client = PlainHttpClient(total_timeout=0.3)
            with pytest.raises(TimeoutError):
                await client.request("GET", "127.0.0.1", server.port, "/", {})
            assert (await client.request("GET", "127.0.0.1", server.port, "/", {})).body == b"ok"
            await client.close()
        assert server.connections == 2

    run(scenario())


def test_cancelled_request_leaves_no_half_used_connection() -> None:
    async def reply(number: int, _: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.2 if number == 1 else 0)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d" % number)
        return True

    async def scenario() -> None:
        async with scripted(reply) as server:
            client = PlainHttpClient()
            task = asyncio.ensure_future(client.request("GET", "127.0.0.1", server.port, "/", {}))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # A new connection answers this one; the old one's late reply never reaches it.
            assert (await client.request("GET", "127.0.0.1", server.port, "/", {})).body == b"2"
            await client.close()
        assert server.connections == 2

    run(scenario())


def test_concurrency_is_limited_across_hosts_and_idle_connections_expire() -> None:
    async def slow(_: int, __: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.02)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    async def scenario() -> None:
        async with scripted(slow) as first, scripted(ok()) as second:
            client = PlainHttpClient(limit=2, keepalive=0.1)
            answers = await asyncio.gather(
                *(client.request("GET", "127.0.0.1", first.port, f"/{i}", {}) for i in range(8)))
            assert [a.body for a in answers] == [b"ok"] * 8
            assert first.most_open == 2 and first.connections == 2
            # Idle connections to the first host do not hold up the second one.
            assert (await client.request("GET", "127.0.0.1", second.port, "/", {})).body == b"ok"
            await asyncio.sleep(0.15)  # idle longer than keepalive: not reused
            await client.request("GET", "127.0.0.1", second.port, "/", {})
            assert second.connections == 2
            await client.close()

    run(scenario())


def test_storage_http_retries_a_dropped_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """A keep-alive connection the server dropped is a connection error: retried like a refused one."""
    monkeypatch.setattr(storage_http, "RETRY_DELAYS", (0.0, 0.0, 0.0))

    async def reply(number: int, _: bytes, writer: asyncio.StreamWriter) -> bool:
        if number == 1:
            return False  # closes without answering
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    async def scenario() -> None:
        async with scripted(reply) as server:
            base = f"http://127.0.0.1:{server.port}/devstoreaccount1"
            account = StorageAccount("devstoreaccount1", storage_http.DEV_ACCOUNT_KEY, base, base, base)
            http = StorageHttp(account, "2021-02-12", "2019-02-02")
            try:
                reply_ = await http.send("GET", f"{base}/q/messages?numofmessages=1", {}, table=False)
            finally:
                await http.close()
            assert (reply_.status, reply_.content) == (200, b"ok")
        assert len(server.requests) == 2
        assert server.requests[1].startswith(b"GET /devstoreaccount1/q/messages?numofmessages=1 HTTP/1.1\r\n")
        assert b"\r\nauthorization: SharedKey devstoreaccount1:" in server.requests[1]

    run(scenario())
