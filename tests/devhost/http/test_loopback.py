"""Requests to devhost's own address served in process: real aiohttp on both ends, no socket between."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from devhost.azurite import free_port
from devhost.http import loopback
from devhost.http.server import HttpServer


def _echo_app(seen: list[dict[str, Any]]) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append({"method": request.method, "path": request.rel_url.raw_path, "remote": request.remote,
                     "transport": type(request.transport).__name__})
        return web.json_response({"method": request.method, "bytes": len(body), "query": dict(request.query)},
                                 status=202 if request.method == "POST" else 200)

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def _with_server(check: Any) -> None:
    seen: list[dict[str, Any]] = []
    server = HttpServer(_echo_app(seen), hosts=["127.0.0.1"], port=free_port())
    await server.start()
    try:
        assert server.request_handlers is not None
        await check(server, seen)
    finally:
        await server.stop()


def test_own_address_is_served_without_a_socket() -> None:
    """A port nothing listens on still answers when it is devhost's own: the request never left the process."""

    async def check(server: HttpServer, seen: list[dict[str, Any]]) -> None:
        unused = free_port()  # nothing listens here: only the in-process path can answer
        connector = loopback.InProcessConnector(lambda: server.request_handlers, {("127.0.0.1", unused)})
        async with aiohttp.ClientSession(connector=connector) as session:
            big = b"x" * (3 * 1024 * 1024)
            async with session.post(f"http://127.0.0.1:{unused}/durabletask/a?b=1", data=big) as reply:
                assert reply.status == 202
                assert await reply.json() == {"method": "POST", "bytes": len(big), "query": {"b": "1"}}
            for _ in range(3):  # keep-alive: the same in-memory connection serves the next requests
                async with session.get(f"http://127.0.0.1:{unused}/x") as reply:
                    assert (await reply.json())["method"] == "GET"
        assert {s["transport"] for s in seen} == {"_MemoryTransport"}
        assert seen[0]["remote"] == "127.0.0.1"

    asyncio.run(check_with_timeout(check))


def test_other_addresses_still_go_over_tcp() -> None:
    """Only the listed (host, port) pairs are served in process; the rest is ordinary TCP."""

    async def check(server: HttpServer, seen: list[dict[str, Any]]) -> None:
        connector = loopback.InProcessConnector(lambda: server.request_handlers, {("127.0.0.1", free_port())})
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(f"http://127.0.0.1:{server.port}/tcp") as reply:
                assert reply.status == 200
        assert seen[-1]["transport"] != "_MemoryTransport"

    asyncio.run(check_with_timeout(check))


def test_server_stop_ends_in_process_connections() -> None:
    """Stopping the server closes its in-memory connections as it closes sockets; the client sees them end."""

    async def run() -> None:
        seen: list[dict[str, Any]] = []
        server = HttpServer(_echo_app(seen), hosts=["127.0.0.1"], port=free_port())
        await server.start()
        connector = loopback.InProcessConnector(lambda: server.request_handlers, {("127.0.0.1", server.port)})
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(f"http://127.0.0.1:{server.port}/one") as reply:
                assert reply.status == 200
            await server.stop()
            with pytest.raises(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{server.port}/two") as reply:
                    await reply.read()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_sdk_session_is_installed_once_and_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Durable SDK's shared session gets the in-process connector, unless DEVHOST_LOOPBACK=tcp."""
    from azure.durable_functions.models.utils import http_utils

    from devhost.worker.invoker import close_durable_client_session

    # Whatever session an earlier test left behind belongs to another loop: this test starts without one.
    monkeypatch.setattr(http_utils, "_client_session", None)
    monkeypatch.setattr(http_utils, "_session_lock", asyncio.Lock())

    async def check(server: HttpServer, seen: list[dict[str, Any]]) -> None:
        try:
            monkeypatch.setenv(loopback.ENV_VAR, "tcp")
            assert not loopback.install_for_sdk(lambda: server.request_handlers, server.port)
            monkeypatch.delenv(loopback.ENV_VAR)
            assert loopback.install_for_sdk(lambda: server.request_handlers, server.port)
            assert not loopback.install_for_sdk(lambda: server.request_handlers, server.port)  # one session, kept
            status, body = await http_utils.post_async_request(f"http://127.0.0.1:{server.port}/durabletask/x",
                                                               {"a": 1})
            assert status == 202 and body["method"] == "POST"
            assert seen[-1]["transport"] == "_MemoryTransport"
        finally:
            await close_durable_client_session()

    assert "azure.durable_functions.models.utils.http_utils" in sys.modules
    asyncio.run(check_with_timeout(check))


async def check_with_timeout(check: Any) -> None:
    await asyncio.wait_for(_with_server(check), 30)
