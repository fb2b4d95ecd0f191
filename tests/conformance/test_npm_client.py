"""A second, independent client: the npm `durable-functions` package's DurableClient, driven from Node.

The package's public `getClient(context)` only needs an `InvocationContext` whose extra input is the
durableClient binding object, and `@azure/functions` lets anyone construct one, so the client runs
outside the Functions runtime (tests/conformance/node/client.js). Its calls go to `rpcBaseUrl`, i.e.
devhost's RPC path. Unlike the Python SDK it sends inputs and event data as plain JSON (no double
encoding) and follows `x-ms-continuation-token` in getStatusAll/getStatusBy.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devhost.durable.client_binding import client_binding_json
from tests.conformance.support import DurableApi, new_id
from tests.hosts import RunningHost

NODE_DIR = Path(__file__).parent / "node"


class NodeClient:
    """One `node client.js` process; `call` runs one DurableClient method and returns its result."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.counter = 0

    def _line(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            raise AssertionError(f"node client gave no answer (exit code {self.process.poll()})")
        return json.loads(line)

    def call(self, method: str, *args: Any, timeout: float = 30.0) -> Any:
        reply = self.attempt(method, *args, timeout=timeout)
        assert reply["ok"], f"{method} failed: {reply['error']}"
        return reply["result"]

    def error(self, method: str, *args: Any) -> str:
        reply = self.attempt(method, *args)
        assert not reply["ok"], f"{method} unexpectedly succeeded: {reply['result']}"
        return str(reply["error"])

    def attempt(self, method: str, *args: Any, timeout: float = 30.0) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.counter += 1
        self.process.stdin.write(json.dumps({"id": self.counter, "method": method, "args": list(args)}) + "\n")
        self.process.stdin.flush()
        reply = self._line(timeout)
        assert reply["id"] == self.counter
        return reply

    def wait(self, instance_id: str, check: Any, within: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            status = self.call("getStatus", instance_id)
            if check(status):
                return status
            assert time.monotonic() < deadline, f"last status: {status}"
            time.sleep(0.03)


def ensure_node_modules() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js/npm is not installed, so the npm durable-functions client cannot run")
    if (NODE_DIR / "node_modules" / "durable-functions" / "package.json").is_file():
        return
    done = subprocess.run(["npm", "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund", "--loglevel=error"],
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        pytest.skip(f"`npm ci` for tests/conformance/node failed, npm registry unavailable?\n{done.stderr[-2000:]}")


@contextmanager
def node_client(host: RunningHost, required_query: str = "") -> Iterator[NodeClient]:
    """A node client.js process with the binding devhost gives functions (``required_query``: code=...)."""
    ensure_node_modules()
    binding = json.loads(client_binding_json(public_origin=host.base_url, rpc_origin=f"http://127.0.0.1:{host.port}",
                                             task_hub=host.hub_name, required_query=required_query))
    env = {**os.environ, "WEBSITE_HOSTNAME": f"localhost:{host.port}"}
    process = subprocess.Popen(["node", str(NODE_DIR / "client.js"), json.dumps(binding)], cwd=NODE_DIR, env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    client = NodeClient(process)
    try:
        assert client._line(30.0) == {"ready": True, "taskHubName": host.hub_name}
        yield client
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def node(host: RunningHost) -> Iterator[NodeClient]:
    with node_client(host) as client:
        yield client


def date(moment: datetime) -> dict[str, str]:
    return {"$date": moment.isoformat()}


def test_start_query_raise_and_terminate(node: NodeClient, webhook: DurableApi) -> None:
    """startNew, getStatus, raiseEvent, terminate, getStatusBy and getStatusAll of the npm client all work."""
    began = datetime.now(UTC) - timedelta(seconds=1)
    ticket = new_id("node")
    ticket_input = {"userId": "node-user", "discountTimeout": 600}
    assert node.call("startNew", "ReserveTicket", {"instanceId": ticket, "input": ticket_input}) == ticket
    waiting = node.wait(ticket, lambda s: isinstance(s["customStatus"], dict) and "discount" in s["customStatus"])
    assert waiting["runtimeStatus"] == "Running" and waiting["name"] == "ReserveTicket"
    assert waiting["input"] == ticket_input  # plain JSON, not double-encoded as with the Python SDK
    assert node.call("raiseEvent", ticket, "BookingConfirmed", True) is None
    done = node.wait(ticket, lambda s: s["runtimeStatus"] == "Completed")
    assert done["output"] is True and done["customStatus"]["message"] == "Thank you for confirming your booking."
    raised = [e for e in webhook.status(ticket, showHistory="true").json["historyEvents"]
              if e["EventType"] == "EventRaised"]
    assert [e["Input"] for e in raised] == ["true"]

    city = node.call("startNew", "CityRecommender", {"input": 2})
    assert len(city) == 32
    node.wait(city, lambda s: isinstance(s["customStatus"], dict) and "recommendedCities" in s["customStatus"])
    assert node.call("terminate", city, "node says bye") is None
    terminated = node.wait(city, lambda s: s["runtimeStatus"] == "Terminated")
    assert terminated["output"] == "node says bye"

    ended = datetime.now(UTC) + timedelta(seconds=1)
    by = node.call("getStatusBy", {"createdTimeFrom": date(began), "createdTimeTo": date(ended),
                                   "runtimeStatus": ["Completed", "Terminated"]})
    statuses = {item["instanceId"]: item["runtimeStatus"] for item in by}
    assert statuses.get(ticket) == "Completed" and statuses.get(city) == "Terminated"
    assert all(item["runtimeStatus"] in ("Completed", "Terminated") for item in by)
    everything = node.call("getStatusAll")  # follows the continuation token through every page
    listed = [item["instanceId"] for item in everything]
    assert len(listed) == len(set(listed)) and {ticket, city} <= set(listed)


def test_suspend_resume_purge_and_errors(node: NodeClient, host: RunningHost) -> None:
    """suspend, resume, purge, the wait helper and the client's error mapping of devhost's answers."""
    iid = node.call("startNew", "CityRecommender", {"input": 1})
    node.wait(iid, lambda s: isinstance(s["customStatus"], dict) and "recommendedCities" in s["customStatus"])
    assert node.call("suspend", iid, "pause") is None
    node.wait(iid, lambda s: s["runtimeStatus"] == "Suspended")
    assert node.call("resume", iid, "continue") is None
    node.wait(iid, lambda s: s["runtimeStatus"] == "Running")
    assert 'only orchestrations in the "Failed" state can be rewound' in node.error("rewind", iid, "why")
    assert "412" in node.error("purgeInstanceHistory", iid)

    request = {"$request": f"http://localhost:{host.port}/api/x"}
    pending = node.call("waitForCompletionOrCreateCheckStatusResponse", request, iid,
                        {"timeoutInMilliseconds": 300, "retryIntervalInMilliseconds": 100})
    assert pending["status"] == 202
    links = json.loads(pending["body"])
    assert links["id"] == iid and links["statusQueryGetUri"].startswith(
        f"http://localhost:{host.port}/runtime/webhooks/durabletask/instances/{iid}?taskHub={host.hub_name}")

    assert node.call("terminate", iid, "stop") is None
    node.wait(iid, lambda s: s["runtimeStatus"] == "Terminated")
    finished = node.call("waitForCompletionOrCreateCheckStatusResponse", request, iid)
    assert finished["status"] == 200 and json.loads(finished["body"])["output"] == "stop"
    assert node.call("purgeInstanceHistory", iid) == {"instancesDeleted": 1}
    assert node.call("purgeInstanceHistory", iid) == {"instancesDeleted": 0}  # 404 maps to 0
    assert "404" in node.error("getStatus", iid)
    assert "No instance with ID" in node.error("raiseEvent", iid, "UserSelection", "Tokyo")
    assert node.call("readEntityState", {"name": "counter", "key": "k"}) == {"entityExists": False}
