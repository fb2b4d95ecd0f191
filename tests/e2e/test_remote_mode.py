"""Remote mode: E2E_BASE_URL (with E2E_FUNCTION_KEY / E2E_SYSTEM_KEY) runs this suite against a running host."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.http import access_key
from tests.hosts import PROJECT_ROOT, RunningHost

pytestmark = pytest.mark.local_only("starts the suite against the host this run launched")


def test_keys_follow_the_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Durable extension's webhooks get the system key, app routes the function key, ``?code=`` URLs none."""
    monkeypatch.setenv("E2E_FUNCTION_KEY", "fn")
    monkeypatch.setenv("E2E_SYSTEM_KEY", "sys")
    assert access_key("https://app.example/api/orchestrators/ReserveTicket") == "fn"
    assert access_key("https://app.example/runtime/webhooks/durabletask/instances/x?taskHub=h") == "sys"
    assert access_key("https://app.example/runtime/webhooks/durabletask/instances/x?code=abc") is None
    monkeypatch.delenv("E2E_FUNCTION_KEY")
    assert access_key("https://app.example/api/instances/x") is None


def test_suite_runs_against_a_running_host(host: RunningHost) -> None:
    """Pointed at an already running host, the black-box tests pass and the storage-reading one says why it skips."""
    env = {
        **os.environ,
        "E2E_BASE_URL": host.base_url,
        "E2E_FUNCTION_KEY": "function-key",  # sent as x-functions-key; this host does not require keys
        "E2E_SYSTEM_KEY": "system-key",
        "E2E_TASK_HUB": host.hub_name,
    }
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
               "tests/e2e/test_reserve_ticket.py::test_confirmed_booking", "tests/e2e/test_storage_layout.py"]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=240,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed, 1 skipped" in result.stdout, result.stdout[-3000:]
    assert "remote host; this test reads the task hub's tables" in result.stdout
