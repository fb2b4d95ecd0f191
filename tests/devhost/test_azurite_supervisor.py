"""A devhost-started Azurite that dies is started again on its folder and ports; after bounded tries, an error."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable

import pytest
from azure.data.tables import TableServiceClient

from devhost.azurite import AzuriteProcess, is_listening
from devhost.azurite_supervisor import AzuriteSupervisor, RestartPolicy
from tests.conftest import PROJECT_ROOT

FAST = RestartPolicy(poll_seconds=0.05, backoff_seconds=(0.0, 0.1, 0.2), stable_after_seconds=60.0)



async def wait_for(condition: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_killed_azurite_is_restarted(own_azurite: AzuriteProcess,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """kill -9: one warning line, and the same ports answer again with a working Azurite."""

    async def scenario() -> None:
        supervisor = AzuriteSupervisor(own_azurite, policy=FAST)
        supervisor.start()
        try:
            first_pid = own_azurite.process.pid
            own_azurite.process.send_signal(signal.SIGKILL)
            await wait_for(lambda: supervisor.restarts == 1 and own_azurite.process.pid != first_pid)
            assert all(is_listening(port) for port in own_azurite.ports)
            assert supervisor.failed is None
        finally:
            await supervisor.stop()

    with caplog.at_level(logging.INFO, logger="devhost.azurite"):
        asyncio.run(scenario())
    exits = [r for r in caplog.records if "exited with code" in r.getMessage()]
    assert len(exits) == 1 and "starting it again" in exits[0].getMessage()
    tables = TableServiceClient.from_connection_string(own_azurite.connection_string)
    tables.create_table("AfterRestart")
    assert "AfterRestart" in {t.name for t in tables.list_tables()}


def test_restarts_are_bounded_then_the_host_is_told(own_azurite: AzuriteProcess) -> None:
    """When Azurite cannot start again, the supervisor gives up after the policy's attempts and says why."""
    given_up: list[str] = []
    own_azurite.args = ["/bin/false"]  # every restart exits at once

    async def scenario() -> None:
        supervisor = AzuriteSupervisor(own_azurite, policy=FAST, on_give_up=given_up.append)
        supervisor.start()
        try:
            own_azurite.process.send_signal(signal.SIGKILL)
            await wait_for(lambda: bool(given_up))
        finally:
            await supervisor.stop()

    asyncio.run(scenario())
    assert "could not be started again after 3 attempts" in given_up[0]
    assert "cannot reach storage" in given_up[0]


def test_host_status_is_error_once_storage_is_given_up() -> None:
    """/admin/host/status stops saying Running and lists the reason, as HostStatus.errors does."""
    from devhost.config import load_config
    from devhost.host import Host

    host = Host(load_config(PROJECT_ROOT / "tests" / "devhost" / "apps" / "http_app", port=7071, environ={}))
    host.state = "Running"
    host.fail("Azurite could not be started again after 5 attempts")
    status = host.status()
    assert status["state"] == "Error"
    assert status["errors"] == ["Azurite could not be started again after 5 attempts"]
