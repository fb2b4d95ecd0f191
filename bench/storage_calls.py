"""CPU per hot storage call (``rest`` / ``table_batch``) against a temporary Azurite.

``python -m bench.storage_calls [N] [ROUNDS]``: N sequential calls of each kind (default 200), timed with
``time.process_time()`` around the loop, so the number is this process's CPU (client side), not
Azurite's. Sequential on purpose: it isolates the per-call cost of the Python side. Rounds alternate
the SDK-pipeline path and the lean ``storage_http`` path; the medians are printed at the end.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from devhost.azurite import start_temporary_azurite
from devhost.durable.taskhub import rest, table_batch
from devhost.durable.taskhub.azure_storage import AzureStorageTaskHub
from devhost.durable.taskhub.table_batch import BatchOperation


async def _timed(name: str, count: int, call: Callable[[int], Awaitable[Any]], results: dict[str, float]) -> None:
    await call(0)  # warm-up: connection set-up and first-use imports are not per-call costs
    start = time.process_time()
    times = os.times()
    wall = time.perf_counter()
    for i in range(count):
        await call(i)
    cpu_ms = (time.process_time() - start) * 1000 / count
    wall_ms = (time.perf_counter() - wall) * 1000 / count
    after = os.times()
    # User vs kernel split: loopback TCP sends are processed in the sender's system time.
    user_ms = (after.user - times.user) * 1000 / count
    sys_ms = (after.system - times.system) * 1000 / count
    results[name] = cpu_ms
    print(
        f"{name:<18} {cpu_ms:7.3f} ms CPU/call (user {user_ms:.3f}, sys {sys_ms:.3f})  {wall_ms:7.3f} ms wall/call",
        flush=True,
    )


async def main(connection: str, count: int, lean: bool = True) -> dict[str, float]:
    # lean False: the SDK-pipeline path (what SAS/token credentials use, and what every hot call used before).
    hub = AzureStorageTaskHub(connection, "benchcalls", 1, lean_http=lean)
    await hub.create_if_not_exists()
    results: dict[str, float] = {}
    try:
        queue = hub.queues.endpoints[hub.work_item_queue_name]
        instances, history = hub.instances.table, hub.history.table
        text = '{"TaskMessage":{"x":' + "1" * 300 + "}}"
        items: list[rest.QueueItem] = []

        async def put(_: int) -> None:
            await rest.put_message(queue, text, 0)

        async def get(_: int) -> None:
            items.extend(await rest.get_messages(queue, 1, 60))

        async def delete(i: int) -> None:
            item = items.pop()
            await rest.delete_message(queue, item.message_id, item.pop_receipt)

        row = {"PartitionKey": "bench", "RowKey": "", "Name": "x" * 50, "RuntimeStatus": "Running", "N": 5}

        async def upsert(_: int) -> None:
            await rest.upsert_entity(instances, row, replace=True)

        async def merge(_: int) -> None:
            await rest.upsert_entity(instances, {**row, "N": 6}, replace=False)

        async def point_read(_: int) -> None:
            await rest.get_entity(instances, "bench", "")

        async def batch(i: int) -> None:
            rows = [
                {"PartitionKey": "bench", "RowKey": f"{i:08d}-{j}", "EventType": "TaskScheduled", "Input": "y" * 200}
                for j in range(4)
            ]
            await table_batch.submit(history, [BatchOperation("upsert_replace", r) for r in rows])

        async def query(_: int) -> None:
            rows = await rest.query_partition(history, "q")
            assert len(rows) == 10

        await table_batch.submit(
            history,
            [BatchOperation("upsert_replace", {"PartitionKey": "q", "RowKey": f"{j:04d}", "V": "z" * 100})
             for j in range(10)],
        )
        await _timed("queue put", count, put, results)
        await _timed("queue get", count, get, results)
        await _timed("queue delete", count, delete, results)
        await _timed("table upsert", count, upsert, results)
        await _timed("table merge", count, merge, results)
        await _timed("table point read", count, point_read, results)
        await _timed("table batch (4)", count, batch, results)
        await _timed("partition query", count, query, results)
    finally:
        await hub.delete_if_exists()
        await hub.close()
    return results


async def compare(connection: str, count: int, rounds: int) -> None:
    """Alternate SDK-pipeline and lean rounds on one Azurite, so machine noise hits both alike."""
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for _ in range(rounds):
        for lean in (False, True):
            print(f"--- {'lean' if lean else 'sdk'}", flush=True)
            runs[lean].append(await main(connection, count, lean))
    print(f"\n{'median CPU ms/call':<18} {'sdk':>7} {'lean':>7}")
    for name in runs[True][0]:
        sdk = statistics.median(r[name] for r in runs[False])
        lean_ms = statistics.median(r[name] for r in runs[True])
        print(f"{name:<18} {sdk:7.3f} {lean_ms:7.3f}  ({sdk / lean_ms:.1f}x)")


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    azurite = start_temporary_azurite()
    try:
        asyncio.run(compare(azurite.connection_string, n, rounds))
    finally:
        azurite.stop()
