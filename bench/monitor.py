"""``python -m bench.monitor``: what the monitor page's refreshes cost on a task hub with many instances.

It fills a fresh task hub (most instances Failed, a few Running), then makes the Durable HTTP API calls
the page makes, in the same way (devhost/monitor/static/counts.js and main.js):

- one screen of the list (``top=50``, no inputs);
- the full listing that builds the counts index (``top=1000``, no inputs, every page);
- one incremental refresh in steady state: the active instances, and those created since 10 s before
  the newest one seen;
- for comparison, the naive refresh (the full listing again).

Figures go to stdout and bench/results/monitor.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench import launcher

DURABLE = "runtime/webhooks/durabletask"
RESULTS = Path(__file__).resolve().parent / "results" / "monitor.json"
ACTIVE = "Pending,Running,Suspended,ContinuedAsNew"


async def fill(session: aiohttp.ClientSession, base: str, instances: int, running: int) -> float:
    """Start `instances` instances (`running` of them wait for an event); returns the seconds it took."""
    began = time.perf_counter()
    retried: list[int] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(instances):
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            # A bad choice fails CityRecommender in its first episode; a ReserveTicket waits for its event.
            name, body = (("ReserveTicket", {"userId": f"u{index}", "discountTimeout": 3600}) if index < running
                          else ("CityRecommender", 7))
            url = f"{base}/{DURABLE}/orchestrators/{name}/bench-{index:06d}"
            for attempt in range(6):
                async with session.post(url, json=body) as reply:
                    if reply.status == 202 or (attempt and reply.status == 409):  # 409: an earlier try got in
                        break
                    if reply.status < 500 or attempt == 5:
                        raise RuntimeError(f"start answered {reply.status}: {await reply.text()}")
                    retried.append(reply.status)
                await asyncio.sleep(attempt + 1)
            if index % 1000 == 999:
                print(f"started {index + 1} in {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)

    await asyncio.gather(*(worker() for _ in range(8)))
    if retried:
        print(f"{len(retried)} starts answered 5xx ({sorted(set(retried))}) and were retried", file=sys.stderr)
    return time.perf_counter() - began


async def list_all(session: aiohttp.ClientSession, base: str, query: dict[str, str]) -> dict[str, Any]:
    """Every page of GET /instances with `query`: rows, requests, bytes and seconds."""
    began = time.perf_counter()
    token, rows, requests, size = "", 0, 0, 0
    while True:
        headers = {"x-ms-continuation-token": token} if token else {}
        async with session.get(f"{base}/{DURABLE}/instances", params=query, headers=headers) as reply:
            body = await reply.read()
            token = reply.headers.get("x-ms-continuation-token", "")
        requests += 1
        size += len(body)
        rows += len(json.loads(body))
        if not token:
            break
    return {"rows": rows, "requests": requests, "bytes": size, "seconds": round(time.perf_counter() - began, 3)}


async def wait_settled(session: aiohttp.ClientSession, base: str, running: int, limit_s: float) -> None:
    """Until only the `running` waiting instances are still active."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        active = await list_all(session, base, {"runtimeStatus": ACTIVE, "showInput": "false", "top": "1000"})
        if active["rows"] <= running:
            return
        await asyncio.sleep(1)
    raise RuntimeError("instances did not settle in time")


async def measure(base: str, instances: int, running: int) -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:
        fill_s = await fill(session, base, instances, running)
        filled_at = time.monotonic()
        await wait_settled(session, base, running, limit_s=max(120.0, instances / 10))
        since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        scope = {"showInput": "false", "createdTimeFrom": since}
        figures: dict[str, Any] = {"instances": instances, "running": running, "fill_seconds": round(fill_s, 1)}
        began = time.perf_counter()
        async with session.get(f"{base}/{DURABLE}/instances", params={**scope, "top": "50"}) as reply:
            screen = await reply.read()
        figures["list_screen_50"] = {"bytes": len(screen), "seconds": round(time.perf_counter() - began, 3)}
        figures["index_full_listing"] = await list_all(session, base, {**scope, "top": "1000"})
        # Steady state: nothing was created in the last 10 s, as on a page left open.
        await asyncio.sleep(max(0.0, filled_at + 11 - time.monotonic()))
        newest = (datetime.now(UTC) - timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        active = await list_all(session, base, {**scope, "top": "1000", "runtimeStatus": ACTIVE})
        new = await list_all(session, base, {**scope, "top": "1000", "createdTimeFrom": newest})
        figures["index_incremental_refresh"] = {
            "rows": active["rows"] + new["rows"], "requests": active["requests"] + new["requests"],
            "bytes": active["bytes"] + new["bytes"], "seconds": round(active["seconds"] + new["seconds"], 3)}
        figures["naive_refresh_full_listing_again"] = await list_all(session, base, {**scope, "top": "1000"})
        return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.monitor", description=__doc__)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--running", type=int, default=100)
    args = parser.parse_args(argv)
    azurite = launcher.start_azurite()
    try:
        with tempfile.TemporaryDirectory() as workdir:
            host = launcher.start_devhost(azurite.connection_string, Path(workdir), tag="monitor")
            try:
                figures = asyncio.run(measure(host.base_url, args.instances, args.running))
            except Exception:
                print(f"devhost's log ends with:\n{host.log_tail()}", file=sys.stderr)
                raise
            finally:
                host.stop()
    finally:
        launcher.stop_azurite(azurite)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
