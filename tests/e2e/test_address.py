"""devhost on another loopback address (--address 127.0.0.2): the samples and the durable client work.

Core Tools binds only the address it is given; the durable client's rpcBaseUrl must reach devhost there.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import azure.durable_functions as df
import pytest

from devhost.durable.client_binding import client_binding_json
from tests.e2e.flows import start, wait_for_custom, wait_until_finished
from tests.hosts import RunningHost, launch_host, stop_host
from tests.http_client import request

ADDRESS = "127.0.0.2"


@pytest.fixture(scope="module")
def other_loopback_host(storage_connection: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    running = launch_host(storage_connection, tmp_path_factory.mktemp("address"), address=ADDRESS)
    try:
        yield running
    finally:
        stop_host(running)


def test_listens_only_where_told(other_loopback_host: RunningHost) -> None:
    """The host answers on 127.0.0.2 and nothing listens on 127.0.0.1 at its port."""
    assert request("GET", other_loopback_host.url("admin/host/status")).json["state"] == "Running"
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", other_loopback_host.port)) != 0


def test_samples_end_to_end(other_loopback_host: RunningHost) -> None:
    """All three samples run to completion; starters' durable client calls reach devhost on 127.0.0.2."""
    host = other_loopback_host
    city = start(host, "CityRecommender", 2)
    assert city["statusQueryGetUri"].startswith(f"http://{ADDRESS}:{host.port}/")
    wait_for_custom(city, "recommendedCities")
    assert request("POST", host.api(f"recommendations/{city['id']}/selection"), {"city": "London"}).status == 202

    ticket = start(host, "ReserveTicket", "user-addr")
    wait_for_custom(ticket, "discount")
    assert request("POST", host.api(f"reservations/{ticket['id']}/confirmation"), {"confirmed": True}).status == 202

    steps = start(host, "SetStatusTest", {"stepDelaySeconds": 0})
    assert wait_until_finished(city)["output"]["selectedCity"] == "London"
    assert wait_until_finished(ticket)["output"] is True
    assert wait_until_finished(steps)["output"]["completedActions"] == ["A", "B", "C"]
    assert request("GET", host.api(f"instances/{ticket['id']}")).json["runtimeStatus"] == "Completed"


def test_python_client_on_the_address(other_loopback_host: RunningHost, sdk_loop: asyncio.AbstractEventLoop) -> None:
    """Microsoft's client with rpcBaseUrl on 127.0.0.2 starts, reads and terminates instances."""
    host = other_loopback_host
    client = df.DurableOrchestrationClient(client_binding_json(
        public_origin=host.base_url, rpc_origin=f"http://{ADDRESS}:{host.port}", task_hub=host.hub_name))

    async def scenario() -> None:
        instance_id = await client.start_new("CityRecommender", None, 1)
        await client.terminate(instance_id, "bye")
        for _ in range(500):
            status = await client.get_status(instance_id)
            if status and status.runtime_status == df.OrchestrationRuntimeStatus.Terminated:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"not terminated: {status.to_json() if status else None}")

    sdk_loop.run_until_complete(scenario())
