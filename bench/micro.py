"""Micro measurements that hold on a busy machine: CPU per request or invocation, least of several repeats.

``python -m bench.micro [N] [REPEATS]``: devhost's own HTTP hop. An aiohttp server and an aiohttp
client in one process, as devhost and the app's durable client are; N POST requests one after another
(the SDK's start call: a small JSON body, a JSON reply), for each event loop (asyncio, uvloop) and each
path (loopback TCP, ``devhost.http.loopback``'s in-process connector). Printed: this process's CPU per
request (``time.process_time``), the minimum over REPEATS runs, since other load can only add to it.

``python -m bench.micro requests [--flows F] [--reads R] [--clients C] [--repeats N]``: a running devhost
(``python -m devhost start`` on a fresh task hub of one Azurite, a fresh devhost per repeat) and its
process CPU from /proc, less its idle rate (queue polls, the file watcher) over the same wall time:
per app-route start (``POST /api/orchestrators/ReserveTicket`` with a long offer, until devhost is
idle again: the starter, the loopback call, both episodes and the activity), per status read of a
waiting instance, and per raise of ``BookingConfirmed`` (until idle again: the last episode). C clients
at once; printed: the minimum over the repeats.

``python -m bench.micro invoke [N] [REPEATS]``: this process's CPU per worker invocation of the app's
functions (a sync activity, an orchestrator's first episode, ReserveTicket's last episode: ten events to
replay) and of the HTTP test app's (a sync and an async function): the converters, the invocation log
lines and the hand-off to the thread pool or to the worker's own loop and back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

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


def loopback_hop(count: int, repeats: int) -> None:
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


# -- requests: CPU of a running devhost per request ----------------------------------------------------

DURABLE = "runtime/webhooks/durabletask"


async def _until_idle(pid: int, idle_rate: float, window: float = 0.3, limit_s: float = 30.0) -> None:
    """Wait until devhost's CPU over a window is back near its idle rate (the work a request set off is done)."""
    from bench.launcher import cpu_seconds

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        began, cpu = time.monotonic(), cpu_seconds(pid)
        await asyncio.sleep(window)
        if (cpu_seconds(pid) - cpu) / (time.monotonic() - began) <= idle_rate + 0.03:
            return


async def _measure_requests(base: str, pid: int, flows: int, reads: int, clients: int) -> dict[str, float]:
    """devhost's CPU ms per start, status read and raise (idle rate subtracted)."""
    from bench.launcher import cpu_seconds

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        async def start(user: int) -> str:
            body = {"userId": f"user-{user}", "discountTimeout": 3600}
            async with session.post(f"{base}/api/orchestrators/ReserveTicket", json=body) as reply:
                if reply.status != 202:
                    raise RuntimeError(f"start answered {reply.status}: {await reply.text()}")
                return str((await reply.json())["id"])

        async def status(instance_id: str) -> dict[str, Any]:
            async with session.get(f"{base}/{DURABLE}/instances/{instance_id}") as reply:
                result: dict[str, Any] = await reply.json()
                return result

        async def confirm(instance_id: str) -> None:
            url = f"{base}/{DURABLE}/instances/{instance_id}/raiseEvent/BookingConfirmed"
            async with session.post(url, json=True) as reply:
                if reply.status != 202:
                    raise RuntimeError(f"raise answered {reply.status}")

        async def offered(instance_id: str) -> None:
            for _ in range(3000):  # polled, as a client would: at most a minute
                if "discount" in str((await status(instance_id)).get("customStatus")):
                    return
                await asyncio.sleep(0.02)
            raise RuntimeError(f"{instance_id} never showed its discount")

        async def pool(items: Iterable[Any], call: Callable[[Any], Awaitable[Any]]) -> None:
            pending = iter(items)

            async def client() -> None:
                for item in pending:
                    await call(item)

            await asyncio.gather(*(client() for _ in range(clients)))

        async def cpu_ms_per(count: int, work: Callable[[], Awaitable[None]], idle_rate: float) -> float:
            began, cpu = time.monotonic(), cpu_seconds(pid)
            await work()
            return (cpu_seconds(pid) - cpu - idle_rate * (time.monotonic() - began)) * 1000 / count

        for user in range(5):  # warm-up: first-use costs (imports, connections) are not per-request costs
            instance_id = await start(user)
            await offered(instance_id)
            await confirm(instance_id)
        await asyncio.sleep(0.5)
        began, cpu = time.monotonic(), cpu_seconds(pid)
        await asyncio.sleep(1.5)
        idle_rate = (cpu_seconds(pid) - cpu) / (time.monotonic() - began)

        ids: list[str] = []

        async def start_all() -> None:
            async def one(user: int) -> None:
                ids.append(await start(user))
            await pool(range(flows), one)
            await _until_idle(pid, idle_rate)

        async def confirm_all() -> None:
            await pool(ids, confirm)
            await _until_idle(pid, idle_rate)

        async def read_all() -> None:
            await pool((ids[i % len(ids)] for i in range(reads)), status)

        figures = {"start (app route)": await cpu_ms_per(flows, start_all, idle_rate)}
        for instance_id in ids:
            await offered(instance_id)  # every instance waits for its event before the reads and raises
        figures["status read"] = await cpu_ms_per(reads, read_all, idle_rate)
        figures["raise event"] = await cpu_ms_per(flows, confirm_all, idle_rate)
        figures["idle (cores)"] = idle_rate
        return figures


def host_requests(flows: int, reads: int, clients: int, repeats: int) -> None:
    from bench import launcher

    best: dict[str, float] = {}
    azurite = launcher.start_azurite()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-micro-") as tmp:
            for _ in range(repeats):
                host = launcher.start_devhost(azurite.connection_string, Path(tmp), tag="micro")
                try:
                    figures = asyncio.run(_measure_requests(host.base_url, host.pid, flows, reads, clients))
                finally:
                    host.stop()
                    launcher.delete_task_hub(azurite.connection_string, host.hub)
                for name, value in figures.items():
                    best[name] = min(best.get(name, value), value)
    finally:
        launcher.stop_azurite(azurite)
    print(f"devhost CPU per request, {clients} clients, idle rate subtracted (min of {repeats}: "
          f"{flows} starts, {reads} status reads, {flows} raises):")
    for name, value in best.items():
        print(f"  {name:<18} {value:8.3f}" + (" cores" if name.startswith("idle") else " ms"))


# -- invoke: CPU per worker invocation ------------------------------------------------------------------

def _context_json(name: str, input_text: str) -> str:
    """An orchestrator's first episode as the extension sends it: OrchestratorStarted, ExecutionStarted."""
    stamp = "2026-01-01T12:00:00Z"
    started = {"EventType": 0, "EventId": -1, "IsPlayed": False, "Timestamp": stamp,
               "OrchestrationInstance": {"InstanceId": "inst-1", "ExecutionId": "exec-1"},
               "ParentInstance": None, "Name": name, "Version": "", "Input": input_text, "Tags": None}
    return json.dumps({
        "history": [{"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": stamp}, started],
        "input": input_text, "instanceId": "inst-1", "isReplaying": False, "parentInstanceId": None,
        "upperSchemaVersion": 1, "upperSchemaVersionNew": 2, "longRunningTimerIntervalDuration": "3.00:00:00",
        "maximumShortTimerDuration": "6.00:00:00", "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
    })


def _final_episode_json(input_text: str) -> str:
    """ReserveTicket's last episode as devhost sends it: the discount, the timer and BookingConfirmed."""
    first, started = json.loads(_context_json("ReserveTicket", input_text))["history"]

    def event(kind: int, stamp: str, **fields: Any) -> dict[str, Any]:
        return {"EventType": kind, "EventId": -1, "IsPlayed": False, "Timestamp": stamp, **fields}

    history = [
        first, {**started, "IsPlayed": True},
        event(4, "2026-01-01T12:00:00Z", Name="CalculateDiscount", Version="", Input=None, Tags=None, EventId=0),
        event(13, "2026-01-01T12:00:00Z"),
        event(12, "2026-01-01T12:00:00.0021Z"),
        event(5, "2026-01-01T12:00:00.002Z", TaskScheduledId=0, Result="18", IsPlayed=True),
        event(10, "2026-01-01T12:00:00.0021Z", FireAt="2026-01-01T12:01:00.0021Z", EventId=1),
        event(13, "2026-01-01T12:00:00.0021Z"),
        event(12, "2026-01-01T12:00:00.0213Z"),
        event(15, "2026-01-01T12:00:00.021Z", Name="BookingConfirmed", Input="true"),
    ]
    return json.dumps({**json.loads(_context_json("ReserveTicket", input_text)), "history": history,
                       "isReplaying": True})


def invocations(count: int, repeats: int) -> None:
    from bench.launcher import PROJECT_ROOT
    from devhost.config import HostConfig
    from devhost.event_loop import loop_factory
    from devhost.logs import setup_logging
    from devhost.worker.http_data import HttpRequestData
    from devhost.worker.invoker import Worker

    with tempfile.TemporaryFile("w") as log_file:
        setup_logging({}, stream=log_file)  # the invocation lines are written, as devhost writes them
        app = Worker(HostConfig(app_dir=PROJECT_ROOT))
        http_app = Worker(HostConfig(app_dir=PROJECT_ROOT / "tests" / "devhost" / "apps" / "http_app"))
        app.load()
        http_app.load()
        context = _context_json("ReserveTicket", json.dumps({"userId": "user-1", "discountTimeout": 60}))
        final = _final_episode_json(json.dumps({"userId": "user-1", "discountTimeout": 60}))

        def request(path: str, route: dict[str, str]) -> HttpRequestData:
            return HttpRequestData.build(method="GET", url=f"http://localhost:7071{path}", headers=[("Host", "x")],
                                         query=[], route_params=route, body=b"")

        cases: dict[str, Callable[[], Awaitable[Any]]] = {
            "activity (sync)": lambda: app.invoke_activity("CalculateDiscount", '"user-1"'),
            "orchestrator (sync)": lambda: app.invoke_orchestrator("ReserveTicket", context),
            "orchestrator, last episode": lambda: app.invoke_orchestrator("ReserveTicket", final),
            "http (sync)": lambda: http_app.invoke_http(http_app.functions["plain"], request("/api/plain", {})),
            "http (async)": lambda: http_app.invoke_http(http_app.functions["echo"],
                                                         request("/api/echo/x", {"rest": "x"})),
        }

        async def run() -> dict[str, float]:
            best: dict[str, float] = {}
            try:
                for _ in range(repeats):  # cases interleaved, so load hits them alike
                    for name, invoke in cases.items():
                        for _ in range(20):
                            await invoke()
                        began = time.process_time()
                        for _ in range(count):
                            await invoke()
                        cpu = (time.process_time() - began) / count
                        best[name] = min(best.get(name, cpu), cpu)
            finally:
                await app.close()
                await http_app.close()
            return best

        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            best = runner.run(run())
    print(f"CPU per worker invocation, all threads of this process (min of {repeats} x {count}):")
    for name, cpu in best.items():
        print(f"  {name:<28} {cpu * 1e6:7.1f} us")


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].isdigit():
        loopback_hop(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, int(sys.argv[2]) if len(sys.argv) > 2 else 5)
        return
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    requests = commands.add_parser("requests", help="devhost's CPU per start, status read and raise")
    requests.add_argument("--flows", type=int, default=100)
    requests.add_argument("--reads", type=int, default=3000)
    requests.add_argument("--clients", type=int, default=4)
    requests.add_argument("--repeats", type=int, default=3)
    invoke = commands.add_parser("invoke", help="CPU per worker invocation")
    invoke.add_argument("count", type=int, nargs="?", default=1000)
    invoke.add_argument("repeats", type=int, nargs="?", default=5)
    args = parser.parse_args()
    if args.command == "requests":
        host_requests(args.flows, args.reads, args.clients, args.repeats)
    else:
        invocations(args.count, args.repeats)


if __name__ == "__main__":
    main()
