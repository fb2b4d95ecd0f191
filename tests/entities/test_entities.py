"""Durable entities end to end on devhost: Microsoft's client, orchestrations and the HTTP routes."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest

from devhost.durable.client_binding import client_binding_json
from tests.hosts import RunningHost, launch_host, stop_host

APP_DIR = Path(__file__).resolve().parent / "app"


@pytest.fixture(scope="module")
def entity_host(storage_connection: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    """devhost running the entity test app on its own task hub."""
    running = launch_host(storage_connection, tmp_path_factory.mktemp("entities"), app_dir=APP_DIR)
    try:
        yield running
    finally:
        stop_host(running)


def sdk_client(host: RunningHost) -> df.DurableOrchestrationClient:
    binding = client_binding_json(public_origin=host.base_url, rpc_origin=f"http://127.0.0.1:{host.port}",
                                  task_hub=host.hub_name)
    return df.DurableOrchestrationClient(binding)


def http(method: str, url: str, body: Any = None, content_type: str = "application/json"
         ) -> tuple[int, Any, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            text = reply.read()
            return reply.status, json.loads(text) if text else None, dict(reply.headers)
    except urllib.error.HTTPError as failure:
        text = failure.read()
        return failure.code, json.loads(text) if text else None, dict(failure.headers)


def counter_state(host: RunningHost, key: str) -> Any:
    status, body, _ = http("GET", host.durable(f"entities/counter/{key}"))
    return body if status == 200 else None


def wait_for(predicate: Any, what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {within} s"
        time.sleep(0.05)


def start(host: RunningHost, name: str, value: Any) -> str:
    status, body, _ = http("POST", host.api(f"start/{name}"), value)
    assert status == 202, body
    return body["id"]


def output_of(host: RunningHost, instance_id: str) -> Any:
    result: dict[str, Any] = {}

    def done() -> bool:
        _, body, _ = http("GET", host.durable(f"instances/{instance_id}"))
        result.update(body or {})
        return bool(body) and body["runtimeStatus"] in ("Completed", "Failed")

    wait_for(done, f"instance {instance_id} finished")
    assert result["runtimeStatus"] == "Completed", result.get("output")
    return result["output"]


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
        return http("POST", entity_host.durable(f"entities/Counter/{key}?op=add"), 1)[0]

    with ThreadPoolExecutor(8) as pool:  # raw HTTP callers, while Microsoft's client signals too
        posted = pool.map(from_http, range(200))
        sdk_loop.run_until_complete(from_sdk())
        assert set(posted) == {202}
    assert [output_of(entity_host, i) for i in orchestrations] == [100, 100, 100]
    wait_for(lambda: counter_state(entity_host, key) == 1000, "count of 1000")
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
    assert http("GET", url)[:2] == (404, None)
    assert http("POST", f"{url}?op=add", 7)[0] == 202
    wait_for(lambda: counter_state(entity_host, key) == 7, "state 7")
    status, listing, headers = http("GET", entity_host.durable("entities/counter?fetchState=true"))
    assert status == 200 and "x-ms-continuation-token" in {h.lower() for h in headers}
    mine = [e for e in listing if e["entityId"] == {"name": "counter", "key": key}]
    assert len(mine) == 1 and mine[0]["state"] == 7 and mine[0]["lastOperationTime"].endswith("Z")
    status, listing, _ = http("GET", entity_host.durable("entities/counter"))
    assert all(e["state"] is None for e in listing)
    assert http("POST", f"{url}?op=add", None)[0] == 202  # no body: no input
    bad = urllib.request.Request(f"{url}?op=add", data=b"{oops", method="POST",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad, timeout=10)
    assert refused.value.code == 400 and b"Could not parse JSON content" in refused.value.read()
    assert http("DELETE", url)[0] == 202
    wait_for(lambda: http("GET", url)[0] == 404, "entity deleted")


def test_state_survives_kill_9(storage_connection: str, tmp_path: Path) -> None:
    """After kill -9 a new devhost on the same hub reads the state and goes on counting from it."""
    first = launch_host(storage_connection, tmp_path, app_dir=APP_DIR)
    key = f"s{uuid.uuid4().hex[:8]}"
    try:
        for _ in range(20):
            assert http("POST", first.durable(f"entities/counter/{key}?op=add"), 1)[0] == 202
        wait_for(lambda: counter_state(first, key) == 20, "count of 20")
    finally:
        stop_host(first, hard=True)
    second = launch_host(storage_connection, tmp_path, hub_name=first.hub_name, app_dir=APP_DIR)
    try:
        assert counter_state(second, key) == 20
        assert http("POST", second.durable(f"entities/counter/{key}?op=add"), 5)[0] == 202
        wait_for(lambda: counter_state(second, key) == 25, "count of 25")
    finally:
        stop_host(second)
