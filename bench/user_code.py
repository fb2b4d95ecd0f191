"""What running user code apart from the host costs per invocation (``python -m bench.user_code``).

devhost runs the app's ``async def`` functions on the worker's own event loop in another thread, so a
function that blocks cannot stall the host. This measures the hand-off: the same no-op coroutine awaited
directly on the calling loop (what devhost did before) and through ``UserCodeLoop``, and, for scale, a
no-op sync function through the worker's thread pool. Whole invocations through ``Worker.invoke_http``
(bindings, logging) are measured too, since that is what an HTTP request pays.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from devhost.config import HostConfig
from devhost.worker.invoker import HttpRequestData, Worker
from devhost.worker.user_loop import UserCodeLoop

APP = '''
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="noop")
async def noop(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")
'''


async def _noop() -> None:
    return None


def _noop_sync() -> None:
    return None


async def _per_call_us(call: Callable[[], Awaitable[Any]], count: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean microseconds per call."""
    for _ in range(min(count, 200)):
        await call()  # warm-up
    means = []
    for _ in range(rounds):
        began = time.perf_counter()
        for _ in range(count):
            await call()
        means.append((time.perf_counter() - began) / count * 1e6)
    return round(statistics.median(means), 1)


async def _measure(count: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    user_loop = UserCodeLoop()
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        same_loop = await _per_call_us(_noop, count)
        worker_loop = await _per_call_us(lambda: user_loop.run(_noop()), count)
        thread_pool = await _per_call_us(lambda: loop.run_in_executor(pool, _noop_sync), count)
    finally:
        await user_loop.close()
        pool.shutdown()
    with tempfile.TemporaryDirectory(prefix="bench-user-code-") as folder:
        app_dir = Path(folder)
        (app_dir / "host.json").write_text('{"version": "2.0"}')
        (app_dir / "function_app.py").write_text(textwrap.dedent(APP))
        worker = Worker(HostConfig(app_dir=app_dir))
        worker.load()
        fn = worker.functions["noop"]
        request = HttpRequestData.build(method="GET", url="http://localhost/api/noop", headers=[], query=[])
        try:
            invocation = await _per_call_us(lambda: worker.invoke_http(fn, request), max(count // 10, 100))
        finally:
            await worker.close()
    return {
        "coroutine_same_loop_us": same_loop,
        "coroutine_worker_loop_us": worker_loop,
        "handoff_cost_us": round(worker_loop - same_loop, 1),
        "sync_thread_pool_us": thread_pool,
        "http_invocation_us": invocation,
    }


def measure(count: int = 5000) -> dict[str, float]:
    """Per-invocation microseconds; function logging is silenced so that it is not what is measured."""
    quiet = logging.getLogger("Function")
    previous = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        return asyncio.run(_measure(count))
    finally:
        quiet.setLevel(previous)


if __name__ == "__main__":
    json.dump(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 5000), sys.stdout, indent=2)
    sys.stdout.write("\n")
