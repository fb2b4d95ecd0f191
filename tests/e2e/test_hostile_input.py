"""Hostile input at the edges: every refusal is a 4xx JSON error that says why, and nothing is written."""

from __future__ import annotations

import asyncio
import os
import uuid
from urllib.parse import quote

import pytest

from tests.hosts import RunningHost
from tests.http_client import request

DEEP = ("[" * 2000 + "]" * 2000).encode()


def nothing_named(host: RunningHost, prefix: str) -> bool:
    """No instance whose id starts with ``prefix`` exists in the task hub."""
    reply = request("GET", host.durable(f"instances?instanceIdPrefix={quote(prefix)}"))
    return reply.status == 200 and reply.json == []


def test_lone_surrogate_input_is_refused_by_the_webhook_and_the_starter(host: RunningHost) -> None:
    """Row 1: a "\\ud800" input gets 400 from the start webhook and the app's starter; nothing starts."""
    instance_id = f"sur-{uuid.uuid4().hex}"
    reply = request("POST", host.durable(f"orchestrators/SetStatusTest/{instance_id}"), raw=b'"\\ud800"')
    assert reply.status == 400, reply
    assert "surrogate" in reply.json["ExceptionMessage"] and reply.json["StackTrace"] is None
    starter = request("POST", host.api("orchestrators/ReserveTicket"), raw=b'"\\ud800"')
    assert starter.status == 400 and "surrogate" in starter.json["error"]
    assert nothing_named(host, instance_id)
    assert request("GET", host.durable("instances")).status == 200


def test_malformed_continuation_token_is_400(host: RunningHost) -> None:
    """Row 2: a token this API never issued is a 400 naming the header, not a 500."""
    reply = request("GET", host.durable("instances"), headers={"x-ms-continuation-token": "x"})
    assert reply.status == 400, reply
    assert "x-ms-continuation-token" in reply.json["ExceptionMessage"]


@pytest.mark.parametrize("top", ["1e300", "99999999999", "abc"])
def test_absurd_top_is_400(host: RunningHost, top: str) -> None:
    reply = request("GET", host.durable(f"instances?top={top}"))
    assert reply.status == 400 and "'top'" in reply.json["ExceptionMessage"]


def test_huge_but_valid_top_is_served(host: RunningHost) -> None:
    """The largest 32-bit page size is accepted (storage pages hold at most 1,000 rows anyway)."""
    assert request("GET", host.durable("instances?top=2147483647&instanceIdPrefix=none-")).status == 200


def test_deep_json_is_400_on_the_app_and_the_webhooks(host: RunningHost) -> None:
    """Row 3: JSON nested 2,000 deep is a 400 everywhere, never a RecursionError 500."""
    instance_id = f"deep-{uuid.uuid4().hex}"
    webhook = request("POST", host.durable(f"orchestrators/SetStatusTest/{instance_id}"), raw=DEEP)
    assert webhook.status == 400 and "64 deep" in webhook.json["ExceptionMessage"]
    app = request("POST", host.api("orchestrators/SetStatusTest"), raw=DEEP)
    assert app.status == 400 and "64 deep" in app.json["error"]
    event = request("POST", host.durable(f"instances/{instance_id}/raiseEvent/Go"), raw=DEEP)
    assert event.status == 400
    assert nothing_named(host, instance_id)


@pytest.mark.parametrize(
    ("suffix", "fragment"),
    [("a" * 600, "256"), ("%40at", "start with @"), ("a%5Cb", "must not contain"), ("a%23b", "must not contain"),
     ("a%3Fb", "must not contain"), ("a%01b", "control characters")],
)
def test_start_refuses_ids_the_extension_rejects(host: RunningHost, suffix: str, fragment: str) -> None:
    """Row 4: ids DurableClient rejects are a 400 before anything is queued or written."""
    prefix = f"bad{uuid.uuid4().hex[:8]}"
    instance_id = suffix if suffix.startswith("%40") else prefix + suffix
    reply = request("POST", host.durable(f"orchestrators/ReserveTicket/{instance_id}"), raw=b'"u"')
    assert reply.status == 400, reply
    assert fragment in reply.json["ExceptionMessage"]
    assert nothing_named(host, prefix)


def test_an_encoded_slash_in_a_start_id_is_no_route(host: RunningHost) -> None:
    """The extension decodes the whole path before routing: `a%2Fb` adds a segment, so nothing matches or starts."""
    prefix = f"bad{uuid.uuid4().hex[:8]}"
    reply = request("POST", host.durable(f"orchestrators/ReserveTicket/{prefix}a%2Fb"), raw=b'"u"')
    assert reply.status == 404 and not reply.body, reply
    assert nothing_named(host, prefix)


def test_operations_on_impossible_ids_are_404(host: RunningHost) -> None:
    """No instance can have such an id: status, events and purge answer 404 without asking storage."""
    long_id = "z" * 600
    assert request("GET", host.durable(f"instances/{long_id}")).status == 404
    assert request("POST", host.durable(f"instances/{long_id}/raiseEvent/E"), {"x": 1}).status == 404
    assert request("DELETE", host.durable(f"instances/{long_id}")).status == 404


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_distinct_task_hubs_do_not_grow_devhost(host: RunningHost) -> None:
    """Row 5: 300 distinct ?taskHub= values leave at most a bounded set of clients (and sockets) open."""
    prefix = f"Hub{uuid.uuid4().hex[:6]}"
    for i in range(20):  # warm up: the bounded set fills
        assert request("GET", host.durable(f"instances/x?taskHub={prefix}w{i}")).status in (404, 400)
    before = open_files(host.process.pid)
    for i in range(300):
        reply = request("GET", host.durable(f"instances/x?taskHub={prefix}n{i}"))
        assert reply.status == 404, reply
    assert open_files(host.process.pid) - before < 40


def test_start_on_another_task_hub_creates_it(host: RunningHost) -> None:
    """As the provider's client does, a start on a hub that does not exist yet creates that hub."""
    other = f"Other{uuid.uuid4().hex[:8]}"
    reply = request("POST", host.durable(f"orchestrators/SetStatusTest/one?taskHub={other}"), raw=b"{}")
    assert reply.status == 202, reply
    status = request("GET", host.durable(f"instances/one?taskHub={other}"))
    assert status.status == 202 and status.json["runtimeStatus"] == "Pending"  # nothing runs another hub here


def test_rows_that_cannot_be_rendered_never_take_the_listing_down(host: RunningHost) -> None:
    """Row 1: rows another writer left with a lone surrogate or 5,000-deep JSON still list and read, never 500."""
    from devhost.durable.history import OrchestrationStatus, utcnow
    from devhost.durable.taskhub.azure_storage import AzureStorageTaskHub
    from devhost.durable.taskhub.base import InstanceRow

    prefix = f"odd{uuid.uuid4().hex[:8]}-"

    async def write_rows() -> None:
        hub = AzureStorageTaskHub(host.storage_connection, host.hub_name, 4)
        try:
            now = utcnow()
            for suffix, text in (("surrogate", '"\ud800"'), ("deep", "[" * 5000 + "]" * 5000)):
                await hub.write_instance(InstanceRow(
                    instance_id=prefix + suffix, name="SetStatusTest", execution_id="e",
                    runtime_status=OrchestrationStatus.Completed, input=text, output=text, custom_status=text,
                    created_time=now, last_updated_time=now), replace=True)
        finally:
            await hub.close()

    asyncio.run(write_rows())
    listing = request("GET", host.durable(f"instances?instanceIdPrefix={prefix}"))
    assert listing.status == 200, listing
    assert sorted(item["instanceId"] for item in listing.json) == [prefix + "deep", prefix + "surrogate"]
    for suffix in ("deep", "surrogate"):
        single = request("GET", host.durable(f"instances/{prefix}{suffix}"))
        assert single.status == 200, single
    assert request("GET", host.durable("instances")).status == 200
