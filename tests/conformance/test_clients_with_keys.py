"""Microsoft's Python and npm durable clients against a host that checks keys (--enableAuth).

Both get the binding devhost hands functions, whose ``requiredQueryStringParameters`` is
``code=<durabletask_extension key>``: their management calls go to the RPC path (no key, loopback), and
the check-status URLs they build carry ``code=`` and work on the key-checked webhooks.
"""

from __future__ import annotations

import asyncio
import json

import azure.durable_functions as df
import azure.functions as func

from devhost.durable.client_binding import client_binding_json
from tests.conformance.support import new_id
from tests.conformance.test_npm_client import node_client
from tests.host_keys import HostKeys
from tests.hosts import RunningHost
from tests.http_client import poll
from tests.http_client import request as http_request


def test_python_client_with_keys(auth_host: RunningHost, auth_keys: HostKeys,
                                 sdk_loop: asyncio.AbstractEventLoop) -> None:
    """start_new, get_status and raise_event work; create_check_status_response's URLs carry the key."""
    code = f"code={auth_keys.system}"
    client = df.DurableOrchestrationClient(client_binding_json(
        public_origin=auth_host.base_url, rpc_origin=f"http://127.0.0.1:{auth_host.port}",
        task_hub=auth_host.hub_name, required_query=code))

    async def scenario() -> None:
        instance_id = await client.start_new("ReserveTicket", None, "sdk-keys")
        request = func.HttpRequest("POST", f"{auth_host.base_url}/api/x", body=b"")
        payload = json.loads(client.create_check_status_response(request, instance_id).get_body())
        assert all(url.endswith(f"&{code}") for name, url in payload.items() if name != "id"), payload
        poll(lambda: http_request("GET", payload["statusQueryGetUri"]),
             lambda r: r.status == 202 and isinstance((r.json or {}).get("customStatus"), dict))
        assert http_request("GET", payload["statusQueryGetUri"].replace(code, "code=wrong")).status == 401
        await client.raise_event(instance_id, "BookingConfirmed", True)
        final = poll(lambda: http_request("GET", payload["statusQueryGetUri"]), lambda r: r.status == 200)
        assert final.json["output"] is True

    sdk_loop.run_until_complete(scenario())


def test_npm_client_with_keys(auth_host: RunningHost, auth_keys: HostKeys) -> None:
    """startNew and getStatus work; createHttpManagementPayload's URLs carry the key and work."""
    code = f"code={auth_keys.system}"
    with node_client(auth_host, code) as node:
        instance_id = node.call("startNew", "CityRecommender", {"instanceId": new_id("nodekeys"), "input": 1})
        node.wait(instance_id, lambda s: isinstance(s["customStatus"], dict)
                  and "recommendedCities" in s["customStatus"])
        links = node.call("createHttpManagementPayload", instance_id)
        assert links["statusQueryGetUri"].endswith(f"&{code}")
        assert http_request("GET", links["statusQueryGetUri"]).json["runtimeStatus"] == "Running"
        terminate = links["terminatePostUri"].replace("{text}", "done")
        assert http_request("POST", terminate.replace(code, "code=wrong")).status == 401
        assert http_request("POST", terminate).status == 202
        assert node.wait(instance_id, lambda s: s["runtimeStatus"] == "Terminated")["output"] == "done"
