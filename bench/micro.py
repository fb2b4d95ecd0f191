"""Micro measurements that hold on a busy machine: CPU per request of devhost's own HTTP hop.

``python -m bench.micro [N] [REPEATS]``: an aiohttp server and an aiohttp client in one process, as
devhost and the app's durable client are; N POST requests one after another (the SDK's start call:
a small JSON body, a JSON reply), for each event loop (asyncio, uvloop) and each path (loopback TCP,
``devhost.http.loopback``'s in-process connector). Printed: this process's CPU per request
(``time.process_time``), the minimum over REPEATS runs, since other load can only add to it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

import aiohttp
from aiohttp import web

from devhost.azurite import free_port
from devhost.http.loopback import InProcessConnector
from devhost.http.server import HttpServer

BODY = {"input": "user-42", "name": "ReserveTicket"}


async def _handler(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"id": "0" * 32, "statusQueryGetUri": "http://127.0.0.1/x" * 4}, status=202)


async def _run(count: int, in_process: bool) -> float:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _handler)
    server = HttpServer(app, hosts=["127.0.0.1"], port=free_port())
    await server.start()
    try:
        local = {("127.0.0.1", server.port)} if in_process else set()
        connector = InProcessConnector(lambda: server.request_handlers, local, limit=30)
        async with aiohttp.ClientSession(connector=connector) as session:
            url = f"http://127.0.0.1:{server.port}/durabletask/orchestrators/ReserveTicket"
            for _ in range(20):  # warm-up: connection and first-use costs are not per-request costs
                async with session.post(url, json=BODY) as reply:
                    await reply.json()
            began = time.process_time()
            for _ in range(count):
                async with session.post(url, json=BODY) as reply:
                    await reply.json()
            return (time.process_time() - began) / count
    finally:
        await server.stop()


def _loops() -> dict[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    loops: dict[str, Callable[[], asyncio.AbstractEventLoop] | None] = {"asyncio": None}
    try:
        import uvloop

        loops["uvloop"] = uvloop.new_event_loop
    except ImportError:
        pass
    return loops


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    best: dict[tuple[str, str], float] = {}
    for _ in range(repeats):  # variants interleaved, so load hits them alike
        for loop_name, factory in _loops().items():
            for path, in_process in (("loopback TCP", False), ("in process", True)):
                with asyncio.Runner(loop_factory=factory) as runner:
                    cpu = runner.run(_run(count, in_process))
                key = (loop_name, path)
                best[key] = min(best.get(key, cpu), cpu)
    print(f"CPU per request, client and server in one process (min of {repeats} x {count}):")
    for (loop_name, path), cpu in best.items():
        print(f"  {loop_name:<8} {path:<13} {cpu * 1e6:7.1f} us")


if __name__ == "__main__":
    main()
