"""Storage outages: while Azurite is gone the Durable API and the app answer 503 with Retry-After, the host
status says storage is down, the log says it once, and work resumes by itself when Azurite is back."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.azurite import AzuriteProcess, start_temporary_azurite
from tests.conftest import PROJECT_ROOT
from tests.e2e.flows import start, wait_until_finished
from tests.e2e.http import call, poll
from tests.hosts import launch_host, stop_host

pytestmark = pytest.mark.faults


@pytest.fixture
def own_azurite() -> Iterator[AzuriteProcess]:
    """An Azurite of this test's own, to kill and bring back."""
    process = start_temporary_azurite(search_from=PROJECT_ROOT)
    try:
        yield process
    finally:
        process.stop()
        shutil.rmtree(process.location, ignore_errors=True)


def test_outage_answers_503_then_work_resumes(own_azurite: AzuriteProcess, tmp_path: Path) -> None:
    """Row 6: 503 JSON with Retry-After everywhere, Error host status, one log line, then recovery."""
    host = launch_host(own_azurite.connection_string, tmp_path)
    try:
        before = start(host, "SetStatusTest", {"stepDelaySeconds": 0})
        wait_until_finished(before, timeout=60)
        own_azurite.process.send_signal(signal.SIGKILL)
        own_azurite.process.wait(10)

        webhook = poll(lambda: call("POST", host.durable("orchestrators/SetStatusTest"), raw=b"{}"),
                       lambda r: r.status != 202, timeout=60, interval=0.2)
        assert webhook.status == 503, webhook
        assert webhook.header("Retry-After") == "5" and "unavailable" in webhook.json["Message"]
        status = call("GET", before["statusQueryGetUri"])
        assert status.status == 503 and status.header("Retry-After")
        app = call("POST", host.api("orchestrators/SetStatusTest"), {"stepDelaySeconds": 0})
        assert app.status == 503 and app.header("Retry-After") == "5", app
        assert "None" not in app.json["error"]
        health = call("GET", host.url("admin/host/status")).json
        assert health["state"] == "Error" and health["storage"]["state"] == "Unreachable", health
        assert host.log_text().count("Storage is unreachable") == 1

        own_azurite.restart()
        back = poll(lambda: call("GET", host.url("admin/host/status")), lambda r: r.json["state"] == "Running",
                    timeout=30, interval=0.2)
        assert back.json["storage"]["state"] == "Available"
        assert "Storage is reachable again" in host.log_text()
    finally:
        stop_host(host)
