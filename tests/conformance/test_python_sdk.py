"""Every method of Microsoft's Python `DurableOrchestrationClient` (azure-functions-durable 1.7.0) against devhost.

The client is built from the binding JSON devhost hands to the app's functions, so its management calls
go to devhost's RPC path. Quirks of the SDK the spec records (§2.11, §3.1, §5) are asserted as such:
inputs and event data are JSON-encoded twice, `restart` returns the check-status dict, `get_status_all`
only reads the first page, `historyEvents` lands in an attribute of that name while `history` stays None.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import azure.durable_functions as df
import azure.functions as func
import pytest

from devhost.durable.client_binding import client_binding_json
from tests.conformance.support import CHECK_STATUS_FIELDS, DurableApi, new_id, request
from tests.hosts import RunningHost

Status = df.OrchestrationRuntimeStatus
T = TypeVar("T")


@pytest.fixture
def client(host: RunningHost) -> df.DurableOrchestrationClient:
    binding = client_binding_json(public_origin=host.base_url, rpc_origin=f"http://127.0.0.1:{host.port}",
                                  task_hub=host.hub_name)
    return df.DurableOrchestrationClient(binding)


@pytest.fixture
def run(sdk_loop: asyncio.AbstractEventLoop) -> Callable[[Awaitable[T]], T]:
    """Run one coroutine on the session's SDK event loop (the SDK caches one aiohttp session)."""
    return sdk_loop.run_until_complete  # type: ignore[return-value]


async def until(client: df.DurableOrchestrationClient, instance_id: str,
                check: Callable[[df.DurableOrchestrationStatus], bool], within: float = 20.0,
                **flags: bool) -> df.DurableOrchestrationStatus:
    deadline = time.monotonic() + within
    while True:
        status = await client.get_status(instance_id, **flags)
        if status and check(status):
            return status
        assert time.monotonic() < deadline, f"last status: {status.to_json() if status else None}"
        await asyncio.sleep(0.03)


def is_(*statuses: df.OrchestrationRuntimeStatus) -> Callable[[df.DurableOrchestrationStatus], bool]:
    return lambda status: status.runtime_status in statuses


def has_custom(key: str) -> Callable[[df.DurableOrchestrationStatus], bool]:
    return lambda status: isinstance(status.custom_status, dict) and key in status.custom_status


def http_request(host: RunningHost) -> func.HttpRequest:
    return func.HttpRequest(method="GET", url=f"http://localhost:{host.port}/api/orchestrators/x", body=b"",
                            headers={}, params={}, route_params={})


def test_start_new_and_get_status_flags(client: df.DurableOrchestrationClient, run: Callable[..., Any]) -> None:
    """start_new returns the id; get_status reads the status and, with its flags, the history (SDK shape)."""
    async def scenario() -> None:
        iid = new_id("sdk")
        assert await client.start_new("SetStatusTest", iid, {"stepDelaySeconds": 0}) == iid
        status = await until(client, iid, is_(Status.Completed))
        assert status.name == "SetStatusTest" and status.instance_id == iid
        assert status.input_ == '{"stepDelaySeconds": 0}'  # the SDK sent its input JSON-encoded twice
        assert status.output["completedActions"] == ["A", "B", "C"]
        assert status.custom_status["progress"] == 1.0
        assert isinstance(status.created_time, datetime) and status.created_time <= status.last_updated_time
        assert status.history is None and not hasattr(status, "historyEvents")
        hidden = await client.get_status(iid, show_input=False)  # sends no flag: the server default shows input
        assert hidden.input_ == '{"stepDelaySeconds": 0}'
        detailed = await client.get_status(iid, show_history=True)
        assert detailed.history is None  # the SDK quirk: the list lands in `historyEvents`
        kinds = [event["EventType"] for event in detailed.historyEvents]
        assert kinds == ["ExecutionStarted", "TaskCompleted", "TaskCompleted", "TaskCompleted", "ExecutionCompleted"]
        assert all("Result" not in event for event in detailed.historyEvents)
        with_output = await client.get_status(iid, show_history=True, show_history_output=True, show_input=True)
        assert with_output.historyEvents[1]["Result"] == {"action": "A", "step": 1, "result": "Action A completed."}
        assert with_output.historyEvents[-1]["Result"] == status.output

        generated = await client.start_new("CityRecommender", None, 1)
        assert len(generated) == 32 and int(generated, 16) >= 0
        running = await until(client, generated, has_custom("recommendedCities"))
        assert running.runtime_status == Status.Running and running.input_ == "1"
        await client.terminate(generated, "done")

        missing = await client.get_status(new_id("nobody"))
        assert not missing and missing.runtime_status is None

    run(scenario())


def test_start_new_of_an_unknown_orchestrator(client: df.DurableOrchestrationClient, run: Callable[..., Any]) -> None:
    """current: start_new of an unknown name succeeds and the instance then Fails with the shim's wrapped text."""
    async def scenario() -> None:
        iid = await client.start_new("NoSuchOrchestrator")
        status = await until(client, iid, is_(Status.Failed))
        assert status.output.startswith("Orchestrator function 'NoSuchOrchestrator' failed: "
                                        "The function 'NoSuchOrchestrator' doesn't exist")

    run(scenario())


def test_get_status_all_and_by(client: df.DurableOrchestrationClient, run: Callable[..., Any],
                               host: RunningHost) -> None:
    """get_status_all reads the first page; get_status_by filters by time, status and prefix."""
    async def scenario() -> None:
        prefix = f"00000-sdk{uuid.uuid4().hex[:8]}-"  # sorts before every other id of the hub
        began = datetime.now(UTC) - timedelta(seconds=1)
        done = await client.start_new("SetStatusTest", f"{prefix}done", {"stepDelaySeconds": 0})
        waiting = await client.start_new("CityRecommender", f"{prefix}waiting", 2)
        await until(client, done, is_(Status.Completed))
        await until(client, waiting, has_custom("recommendedCities"))
        ended = datetime.now(UTC) + timedelta(seconds=1)

        everything = await client.get_status_all()
        first_page = DurableApi(host, "rpc").get("instances/").json
        assert [s.instance_id for s in everything] == [item["instanceId"] for item in first_page]
        assert len(everything) <= 100 and {done, waiting} <= {s.instance_id for s in everything}

        by = await client.get_status_by(began, ended, [Status.Completed], prefix)
        assert [(s.instance_id, s.runtime_status) for s in by] == [(done, Status.Completed)]
        both = await client.get_status_by(began, ended, [Status.Completed, Status.Running], prefix)
        assert {s.instance_id for s in both} == {done, waiting}
        later = await client.get_status_by(ended, None, None, prefix)
        assert later == []
        await client.terminate(waiting, "done")

    run(scenario())


def test_raise_event_terminate_suspend_resume(client: df.DurableOrchestrationClient, run: Callable[..., Any]) -> None:
    """raise_event (double-encoded data), suspend, resume and terminate, with their 404/410 handling."""
    async def scenario() -> None:
        ticket = await client.start_new("ReserveTicket", None, "sdk-user")
        await until(client, ticket, has_custom("discount"))
        await client.suspend(ticket, "a pause")
        await until(client, ticket, is_(Status.Suspended))
        await client.resume(ticket, "carry on")
        await until(client, ticket, is_(Status.Running))
        await client.raise_event(ticket, "BookingConfirmed", True)
        final = await until(client, ticket, is_(Status.Completed))
        assert final.output is True
        history = (await client.get_status(ticket, show_history=True)).historyEvents
        raised = next(e for e in history if e["EventType"] == "EventRaised")
        assert raised["Input"] == '"true"'  # json.dumps(True) sent as a JSON string, stored as received
        with pytest.raises(Exception, match="is gone"):
            await client.raise_event(ticket, "BookingConfirmed", True)  # 410
        with pytest.raises(Exception, match="No instance with ID"):
            await client.raise_event(new_id("nobody"), "BookingConfirmed", True)  # 404

        city = await client.start_new("CityRecommender", None, 3)
        await until(client, city, has_custom("recommendedCities"))
        await client.terminate(city, "user left: 100% & more")
        terminated = await until(client, city, is_(Status.Terminated))
        assert terminated.output == "user left: 100% & more"
        await client.terminate(city, "again")  # 410 is fine for the SDK
        await client.suspend(city, "late")  # so is 410 for suspend and resume
        await client.resume(city, "late")
        for operation in (client.terminate, client.suspend, client.resume):
            with pytest.raises(Exception, match="No instance with ID"):
                await operation(new_id("nobody"), "why")

    run(scenario())


def test_rewind_refusals(client: df.DurableOrchestrationClient, run: Callable[..., Any]) -> None:
    """rewind raises the extension's JSON-string message for a non-Failed instance and a fixed one for 404."""
    async def scenario() -> None:
        iid = await client.start_new("CityRecommender", None, 1)
        await until(client, iid, has_custom("recommendedCities"))
        with pytest.raises(Exception, match='only orchestrations in the "Failed" state can be rewound'):
            await client.rewind(iid, "please")
        with pytest.raises(Exception, match="No instance with ID"):
            await client.rewind(new_id("nobody"), "please")
        await client.terminate(iid, "done")

    run(scenario())


def test_rewind_of_a_failed_instance(client: df.DurableOrchestrationClient, run: Callable[..., Any]) -> None:
    """rewind of a Failed instance is accepted and the instance runs again."""
    async def scenario() -> None:
        iid = await client.start_new("CityRecommender", None, 9)
        await until(client, iid, is_(Status.Failed))
        await client.rewind(iid, "try again")

        def replayed(status: df.DurableOrchestrationStatus) -> bool:
            kinds = [e["EventType"] for e in getattr(status, "historyEvents", [])]
            return status.runtime_status == Status.Failed and "GenericEvent" in kinds

        await until(client, iid, replayed, show_history=True)

    run(scenario())


def test_restart(client: df.DurableOrchestrationClient, run: Callable[..., Any]) -> None:
    """restart returns the extension's check-status dict: a new id by default, the same id when asked."""
    async def scenario() -> None:
        iid = await client.start_new("CityRecommender", None, 2)
        await until(client, iid, has_custom("recommendedCities"))
        await client.terminate(iid, "stop")
        await until(client, iid, is_(Status.Terminated))

        fresh = await client.restart(iid)
        assert isinstance(fresh, dict) and list(fresh) == CHECK_STATUS_FIELDS and fresh["id"] != iid
        restarted = await until(client, fresh["id"], has_custom("recommendedCities"))
        assert restarted.input_ == "2" and restarted.name == "CityRecommender"  # the same (double-encoded) input

        same = await client.restart(iid, restart_with_new_instance_id=False)
        assert isinstance(same, dict) and same["id"] == iid
        again = await until(client, iid, is_(Status.Running))
        assert again.output is None and again.input_ == "2"
        with pytest.raises(Exception, match="unexpected status code 409"):
            await client.restart(iid, restart_with_new_instance_id=False)
        with pytest.raises(Exception, match="unexpected status code 400"):  # the extension answers 400, not 404
            await client.restart(new_id("nobody"))
        await client.terminate(iid, "done")
        await client.terminate(fresh["id"], "done")

    run(scenario())


def test_purge_instance_history_and_by(client: df.DurableOrchestrationClient, run: Callable[..., Any]) -> None:
    """purge_instance_history deletes one instance (0 for an unknown one); purge_instance_history_by a window."""
    async def scenario() -> None:
        began = datetime.now(UTC) - timedelta(milliseconds=50)
        one = await client.start_new("SetStatusTest", None, {"stepDelaySeconds": 0})
        two = await client.start_new("SetStatusTest", None, {"stepDelaySeconds": 0})
        waiting = await client.start_new("CityRecommender", None, 3)
        for iid in (one, two):
            await until(client, iid, is_(Status.Completed))
        await until(client, waiting, has_custom("recommendedCities"))

        purged = await client.purge_instance_history(one)
        assert purged.instances_deleted == 1
        assert not await client.get_status(one)
        assert (await client.purge_instance_history(one)).instances_deleted == 0
        with pytest.raises(Exception, match="unexpected status code 412"):
            await client.purge_instance_history(waiting)

        by = await client.purge_instance_history_by(began, datetime.now(UTC) + timedelta(seconds=1),
                                                    [Status.Completed])
        assert by.instances_deleted == 1
        assert not await client.get_status(two)
        assert await client.get_status(waiting)
        nothing = await client.purge_instance_history_by(began, None, [Status.Completed])
        assert nothing.instances_deleted == 0
        with pytest.raises(ValueError):
            await client.purge_instance_history_by(None)
        await client.terminate(waiting, "done")

    run(scenario())


def test_wait_for_completion_or_create_check_status_response(client: df.DurableOrchestrationClient,
                                                             run: Callable[..., Any], host: RunningHost) -> None:
    """The SDK's client-side wait: 200 with the output, 200/500 with the status, else its 9-field 202."""
    trigger = http_request(host)

    async def scenario() -> None:
        done = await client.start_new("SetStatusTest", None, {"stepDelaySeconds": 0})
        reply = await client.wait_for_completion_or_create_check_status_response(trigger, done, 15000, 50)
        assert reply.status_code == 200
        assert json.loads(reply.get_body())["completedActions"] == ["A", "B", "C"]

        failed = await client.start_new("CityRecommender", None, 5)
        reply = await client.wait_for_completion_or_create_check_status_response(trigger, failed, 15000, 50)
        assert reply.status_code == 500
        assert json.loads(reply.get_body())["runtimeStatus"] == "Failed"

        waiting = await client.start_new("CityRecommender", None, 1)
        reply = await client.wait_for_completion_or_create_check_status_response(trigger, waiting, 300, 100)
        assert reply.status_code == 202
        links = json.loads(reply.get_body())
        assert list(links) == ["id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "rewindPostUri",
                               "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri"]
        base = f"http://localhost:{host.port}/runtime/webhooks/durabletask/instances/{waiting}"
        assert links["id"] == waiting
        assert links["statusQueryGetUri"] == f"{base}?taskHub={host.hub_name}&connection=Storage"
        assert reply.headers["Location"] == links["statusQueryGetUri"] and reply.headers["Retry-After"] == "10"
        assert links == client.create_http_management_payload(waiting)

        await client.terminate(waiting, "stopped")
        reply = await client.wait_for_completion_or_create_check_status_response(trigger, waiting, 15000, 50)
        assert reply.status_code == 200
        assert json.loads(reply.get_body())["output"] == "stopped"

    run(scenario())


def test_create_check_status_response_links_reach_devhost(client: df.DurableOrchestrationClient,
                                                          run: Callable[..., Any], host: RunningHost) -> None:
    """The SDK's own check-status links (built from the binding) address the instance on devhost."""
    async def scenario() -> str:
        return await client.start_new("CityRecommender", None, 2)

    iid = run(scenario())
    response = client.create_check_status_response(http_request(host), iid)
    assert response.status_code == 202
    links = json.loads(response.get_body())
    status = request("GET", links["statusQueryGetUri"])
    assert status.status in (200, 202) and status.json["instanceId"] == iid
    terminate = request("POST", links["terminatePostUri"].replace("{text}", "via+link"))
    assert terminate.status == 202
    assert DurableApi(host, "webhook").wait_status(iid, "Terminated")["output"] == "via link"


def test_entity_methods_of_an_app_without_entities(client: df.DurableOrchestrationClient,
                                                   run: Callable[..., Any]) -> None:
    """read_entity_state finds nothing; signal_entity of a function the app lacks gets the extension's 400."""
    async def scenario() -> None:
        entity = df.EntityId("Counter", "k1")
        state = await client.read_entity_state(entity)
        assert state.entity_exists is False
        with pytest.raises(Exception, match="unexpected status code 400"):
            await client.signal_entity(entity, "add", 1)

    run(scenario())
