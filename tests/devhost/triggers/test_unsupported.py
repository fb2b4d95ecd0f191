"""An app with bindings devhost cannot run: the start lists each with its reason, and invoking one fails
with that reason instead of running with the binding silently missing."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from devhost.azurite import free_port
from devhost.cli import format_function_list
from devhost.config import load_config
from devhost.host import Host
from tests.devhost.http.support import APPS, LoopThread
from tests.http_client import request


@pytest.fixture(scope="module")
def running() -> Iterator[Host]:
    loop = LoopThread()
    host = Host(load_config(APPS / "unsupported_app", port=free_port(), environ={}))
    loop.run(host.start())
    try:
        yield host
    finally:
        loop.run(host.stop())
        loop.close()


def test_start_lists_each_unsupported_function_with_its_reason(running: Host) -> None:
    """The function list ends with what devhost cannot run and why; supported functions are not in it."""
    listing = format_function_list(running.worker, running.base_url, "api")
    tail = listing.split("Functions devhost cannot run (invoking them fails):", 1)[1]
    assert "notify: devhost has no serviceBus output binding ('message')" in tail
    assert "on_telemetry: devhost does not run eventHubTrigger triggers" in tail
    assert "archive: binding 'copy': connection 'ArchiveStorage' is not set" in tail
    assert "ping" not in tail


def test_invoking_an_unsupported_function_fails_with_the_reason(running: Host,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """The HTTP functions with a Service Bus output or an unset connection answer 501 with the reason."""
    with caplog.at_level(logging.INFO):
        reply = request("POST", f"{running.base_url}/api/notify", raw=b"hello", content_type=None)
    assert reply.status == 501
    assert "serviceBus output binding" in json.loads(reply.body)["error"]
    assert any("Executed 'Functions.notify' (Failed" in r.getMessage() for r in caplog.records)
    archived = request("POST", f"{running.base_url}/api/archive", raw=b"hello", content_type=None)
    assert archived.status == 501 and "AzureWebJobsArchiveStorage" in json.loads(archived.body)["error"]
    assert request("GET", f"{running.base_url}/api/ping").status == 200


def test_admin_invocation_of_an_unsupported_trigger_is_refused(running: Host) -> None:
    """POST /admin/functions/{name} for the Event Hubs function answers 501 with the reason."""
    reply = request("POST", f"{running.base_url}/admin/functions/on_telemetry", {"input": "x"})
    assert reply.status == 501
    assert "eventHubTrigger" in json.loads(reply.body)["error"]
