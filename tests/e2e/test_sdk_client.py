"""Microsoft's DurableOrchestrationClient, built from devhost's binding JSON, against the running host."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import azure.durable_functions as df
import pytest

from devhost.durable.client_binding import client_binding_json
from tests.hosts import RunningHost

# In Azure the binding's rpcBaseUrl is a loopback endpoint inside the app, out of a test's reach.
pytestmark = pytest.mark.local_only("gives Microsoft's client devhost's binding and its RPC endpoint")


def sdk_client(host: RunningHost) -> df.DurableOrchestrationClient:
    binding = client_binding_json(public_origin=host.base_url, rpc_origin=f"http://127.0.0.1:{host.port}",
                                  task_hub=host.hub_name)
    return df.DurableOrchestrationClient(binding)


async def wait_status(client: df.DurableOrchestrationClient, instance_id: str,
                      predicate: Callable[[df.DurableOrchestrationStatus], bool],
                      within: float = 20) -> df.DurableOrchestrationStatus:
    deadline = time.monotonic() + within
    while True:
        status = await client.get_status(instance_id)
        if status and predicate(status):
            return status
        assert time.monotonic() < deadline, f"last status: {status.to_json() if status else None}"
        await asyncio.sleep(0.02)


def test_start_status_and_double_encoded_false(host: RunningHost, sdk_loop: asyncio.AbstractEventLoop) -> None:
    """start_new, get_status and raise_event(False): the double-encoded "false" declines the booking."""
    client = sdk_client(host)

    async def scenario() -> None:
        instance_id = await client.start_new("ReserveTicket", None, "sdk-user")
        running = await wait_status(client, instance_id, lambda s: isinstance(s.custom_status, dict)
                                    and "discount" in s.custom_status)
        assert running.runtime_status == df.OrchestrationRuntimeStatus.Running
        assert running.name == "ReserveTicket"
        await client.raise_event(instance_id, "BookingConfirmed", False)
        final = await wait_status(client, instance_id,
                                  lambda s: s.runtime_status == df.OrchestrationRuntimeStatus.Completed)
        assert final.output is False
        assert "declined" in final.custom_status["message"]

    sdk_loop.run_until_complete(scenario())


def test_raise_event_true_and_history(host: RunningHost, sdk_loop: asyncio.AbstractEventLoop) -> None:
    """raise_event(True) confirms, and get_status with history lists the activity and the event."""
    client = sdk_client(host)

    async def scenario() -> None:
        instance_id = await client.start_new("ReserveTicket", None, "sdk-yes")
        await wait_status(client, instance_id, lambda s: isinstance(s.custom_status, dict)
                          and "discount" in s.custom_status)
        await client.raise_event(instance_id, "BookingConfirmed", True)
        final = await wait_status(client, instance_id,
                                  lambda s: s.runtime_status == df.OrchestrationRuntimeStatus.Completed)
        assert final.output is True
        detailed = await client.get_status(instance_id, show_history=True, show_history_output=True)
        kinds = [e["EventType"] for e in detailed.historyEvents]
        assert kinds[0] == "ExecutionStarted" and kinds[-1] == "ExecutionCompleted"
        completed = next(e for e in detailed.historyEvents if e["EventType"] == "TaskCompleted")
        assert completed["FunctionName"] == "CalculateDiscount"
        assert isinstance(completed["Result"], int)
        raised = next(e for e in detailed.historyEvents if e["EventType"] == "EventRaised")
        assert raised["Name"] == "BookingConfirmed"

    sdk_loop.run_until_complete(scenario())


def test_terminate(host: RunningHost, sdk_loop: asyncio.AbstractEventLoop) -> None:
    """terminate ends a waiting instance as Terminated with the reason as its output."""
    client = sdk_client(host)

    async def scenario() -> None:
        instance_id = await client.start_new("CityRecommender", None, 3)
        await wait_status(client, instance_id, lambda s: isinstance(s.custom_status, dict)
                          and "recommendedCities" in s.custom_status)
        await client.terminate(instance_id, "user left")
        final = await wait_status(client, instance_id,
                                  lambda s: s.runtime_status == df.OrchestrationRuntimeStatus.Terminated)
        assert final.output == "user left"
        assert final.custom_status["recommendedCities"] == ["Tokyo", "London"]

    sdk_loop.run_until_complete(scenario())
