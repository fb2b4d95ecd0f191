"""Durable entities end to end on devhost: Microsoft's client, orchestrations and the HTTP routes."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import azure.durable_functions as df

from devhost.durable.client_binding import client_binding_json
from tests.entities.conftest import APP_DIR, output_of, start
from tests.hosts import RunningHost, launch_host, stop_host
from tests.http_client import NO_BODY, poll, request


def sdk_client(host: RunningHost) -> df.DurableOrchestrationClient:
    binding = client_binding_json(public_origin=host.base_url, rpc_origin=f"http://127.0.0.1:{host.port}",
                                  task_hub=host.hub_name)
    return df.DurableOrchestrationClient(binding)


def counter_state(host: RunningHost, key: str) -> Any:
    reply = request("GET", host.durable(f"entities/counter/{key}"))
    return reply.json if reply.status == 200 else None


def until_state(host: RunningHost, key: str, value: Any, timeout: float = 60.0) -> None:
    poll(lambda: counter_state(host, key), lambda state: state == value, timeout=timeout, interval=0.05,
         what=f"counter {key} at {value}")


def signal(host: RunningHost, url_tail: str, body: Any = NO_BODY) -> int:
    return request("POST", host.durable(url_tail), body).status


def test_a_thousand_concurrent_signals_count_exactly_once(entity_host: RunningHost,
                                                          sdk_loop: asyncio.AbstractEventLoop) -> None:
    """Microsoft's client, raw HTTP callers and orchestrations signal one counter 1,000 times: it ends at 1,000."""
    key = f"k{uuid.uuid4().hex[:8]}"
    client = sdk_client(entity_host)
    orchestrations = [start(entity_host, "SignalCounter", {"key": key, "times": 100}) for _ in range(3)]

    async def from_sdk() -> None:
        entity = df.EntityId("Counter", key)
        gate = asyncio.Semaphore(16)

        async def one() -> None:
            async with gate:
                await client.signal_entity(entity, "add", 1)

        await asyncio.gather(*(one() for _ in range(500)))

    def from_http(_: int) -> int:
        return signal(entity_host, f"entities/Counter/{key}?op=add", 1)

    with ThreadPoolExecutor(8) as pool:  # raw HTTP callers, while Microsoft's client signals too
        posted = pool.map(from_http, range(200))
        sdk_loop.run_until_complete(from_sdk())
        assert set(posted) == {202}
    assert [output_of(entity_host, i) for i in orchestrations] == [100, 100, 100]
    until_state(entity_host, key, 1000)
    # Nothing may be applied twice: the count stays at 1000 while any redelivery would land.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert counter_state(entity_host, key) == 1000


def test_call_entity_answers_in_order(entity_host: RunningHost) -> None:
    """call_entity returns each operation's result in call order; a failed operation raises in the caller."""
    key = f"c{uuid.uuid4().hex[:8]}"
    assert output_of(entity_host, start(entity_host, "CallCounter", key)) == [1, 3, 6, "counter refused"]
    assert counter_state(entity_host, key) == 6


def test_sdk_reads_entity_state(entity_host: RunningHost, sdk_loop: asyncio.AbstractEventLoop) -> None:
    """read_entity_state: not there before the first operation, the state after it."""
    key = f"r{uuid.uuid4().hex[:8]}"
    client = sdk_client(entity_host)
    entity = df.EntityId("Counter", key)

    async def scenario() -> None:
        missing = await client.read_entity_state(entity)
        assert missing.entity_exists is False
        await client.signal_entity(entity, "add", 5)
        deadline = time.monotonic() + 20
        while True:
            found = await client.read_entity_state(entity)
            if found.entity_exists:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert found.entity_state == 5

    sdk_loop.run_until_complete(scenario())


def test_entity_routes_answer_as_the_extension(entity_host: RunningHost) -> None:
    """GET (404, then the state), POST ?op= (202), list with fetchState, DELETE (202, then 404)."""
    key = f"h{uuid.uuid4().hex[:8]}"
    url = entity_host.durable(f"entities/counter/{key}")
    missing = request("GET", url)
    assert (missing.status, missing.body) == (404, b"")
    assert signal(entity_host, f"entities/counter/{key}?op=add", 7) == 202
    until_state(entity_host, key, 7)
    listed = request("GET", entity_host.durable("entities/counter?fetchState=true"))
    assert listed.status == 200 and listed.header("x-ms-continuation-token") is not None
    mine = [e for e in listed.json if e["entityId"] == {"name": "counter", "key": key}]
    assert len(mine) == 1 and mine[0]["state"] == 7 and mine[0]["lastOperationTime"].endswith("Z")
    assert all(e["state"] is None for e in request("GET", entity_host.durable("entities/counter")).json)
    assert len(request("GET", entity_host.durable("entities/counter?top=1")).json) == 1
    bad_key = request("POST", entity_host.durable("entities/counter/a%23b?op=add"), 1)
    assert bad_key.status == 400 and "Entity keys must not contain" in bad_key.json["Message"]
    assert signal(entity_host, f"entities/counter/{key}?op=add") == 202  # no body: no input
    bad = request("POST", f"{url}?op=add", raw=b"{oops")
    assert bad.status == 400 and b"Could not parse JSON content" in bad.body
    assert request("DELETE", url).status == 202
    poll(lambda: request("GET", url), lambda r: r.status == 404, timeout=20, what="entity deleted")


def test_state_survives_kill_9(storage_connection: str, tmp_path: Path) -> None:
    """After kill -9 a new devhost on the same hub reads the state and goes on counting from it."""
    first = launch_host(storage_connection, tmp_path, app_dir=APP_DIR)
    key = f"s{uuid.uuid4().hex[:8]}"
    try:
        for _ in range(20):
            assert signal(first, f"entities/counter/{key}?op=add", 1) == 202
        until_state(first, key, 20)
    finally:
        stop_host(first, hard=True)
    second = launch_host(storage_connection, tmp_path, hub_name=first.hub_name, app_dir=APP_DIR)
    try:
        assert counter_state(second, key) == 20
        assert signal(second, f"entities/counter/{key}?op=add", 5) == 202
        until_state(second, key, 25)
    finally:
        stop_host(second)
