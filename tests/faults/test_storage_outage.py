"""Storage outages: while Azurite is gone the Durable API and the app answer 503 with Retry-After, the host
status says storage is down, the log says it once, and work resumes by itself when Azurite is back."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from devhost.azurite import AzuriteProcess
from tests.e2e.flows import start, wait_for_custom, wait_until_finished
from tests.hosts import RunningHost, launch_host, stop_host
from tests.http_client import poll, request

pytestmark = pytest.mark.faults



def test_outage_answers_503_then_work_resumes(own_azurite: AzuriteProcess, tmp_path: Path) -> None:
    """Row 6: 503 JSON with Retry-After everywhere, Error host status, one log line, then recovery."""
    host = launch_host(own_azurite.connection_string, tmp_path)
    try:
        before = start(host, "SetStatusTest", {"stepDelaySeconds": 0})
        wait_until_finished(before, timeout=60)
        own_azurite.process.send_signal(signal.SIGKILL)
        own_azurite.process.wait(10)

        webhook = poll(lambda: request("POST", host.durable("orchestrators/SetStatusTest"), raw=b"{}"),
                       lambda r: r.status != 202, timeout=60, interval=0.2)
        assert webhook.status == 503, webhook
        assert webhook.header("Retry-After") == "5" and "unavailable" in webhook.json["Message"]
        status = request("GET", before["statusQueryGetUri"])
        assert status.status == 503 and status.header("Retry-After")
        app = request("POST", host.api("orchestrators/SetStatusTest"), {"stepDelaySeconds": 0})
        assert app.status == 503 and app.header("Retry-After") == "5", app
        assert "None" not in app.json["error"]
        health = request("GET", host.url("admin/host/status")).json
        assert health["state"] == "Error" and health["storage"]["state"] == "Unreachable", health
        assert host.log_text().count("Storage is unreachable") == 1

        own_azurite.restart()
        back = poll(lambda: request("GET", host.url("admin/host/status")), lambda r: r.json["state"] == "Running",
                    timeout=30, interval=0.2)
        assert back.json["storage"]["state"] == "Available"
        assert "Storage is reachable again" in host.log_text()
        after = poll(lambda: request("POST", host.api("orchestrators/SetStatusTest"), {"stepDelaySeconds": 0}),
                     lambda r: r.status == 202, timeout=30, interval=0.5)
        assert wait_until_finished(after.json, timeout=60)["runtimeStatus"] == "Completed"
    finally:
        stop_host(host)


def table_statuses(connection: str, hub_name: str) -> dict[str, str]:
    """RuntimeStatus of every row in the hub's Instances table ({} when the table itself is gone)."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.data.tables import TableServiceClient

    table = TableServiceClient.from_connection_string(connection).get_table_client(f"{hub_name}Instances")
    try:
        return {row["PartitionKey"]: row["RuntimeStatus"] for row in table.list_entities()}
    except ResourceNotFoundError:
        return {}


def devhost_agrees(host: RunningHost, connection: str, ids: list[str]) -> str | None:
    """None when devhost answers, for every id, what the Instances table holds; else the first difference."""
    stored = table_statuses(connection, host.hub_name)
    for instance_id in ids:
        reply = request("GET", host.durable(f"instances/{instance_id}"))
        shown = reply.json["runtimeStatus"] if reply.status in (200, 202) else reply.status
        expected = stored.get(instance_id, 404)
        if shown != expected:
            return f"{instance_id}: devhost {shown}, storage {expected}"
    return None


@pytest.mark.parametrize("seed", [3, 11])
def test_azurite_killed_before_it_saved(own_azurite: AzuriteProcess, tmp_path: Path, seed: int) -> None:
    """Row 7: Azurite loses its last writes; within a deadline devhost answers what storage holds, and
    the task hub is usable again (re-created if it was lost)."""
    rng = random.Random(seed)
    host = launch_host(own_azurite.connection_string, tmp_path)
    try:
        tickets = [start(host, "ReserveTicket", {"userId": f"lost-{seed}-{i}", "discountTimeout": 600})
                   for i in range(4)]
        for urls in tickets:
            wait_for_custom(urls, "discount", timeout=60)
        for urls in rng.sample(tickets, k=2):
            request("POST", host.api(f"reservations/{urls['id']}/confirmation"), {"confirmed": True})
        time.sleep(rng.uniform(0.0, 1.0))  # the seeded kill point
        own_azurite.process.send_signal(signal.SIGKILL)
        own_azurite.process.wait(10)
        own_azurite.restart()
        ids = [u["id"] for u in tickets]
        deadline = time.monotonic() + 60
        while (difference := devhost_agrees(host, own_azurite.connection_string, ids)) is not None:
            assert time.monotonic() < deadline, difference
            time.sleep(0.5)
        after = poll(lambda: request("POST", host.api("orchestrators/SetStatusTest"), {"stepDelaySeconds": 0}),
                     lambda r: r.status == 202, timeout=60, interval=0.5)
        assert wait_until_finished(after.json, timeout=60)["runtimeStatus"] == "Completed"
    finally:
        stop_host(host)
