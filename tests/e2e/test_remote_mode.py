"""Remote mode: E2E_BASE_URL (with E2E_FUNCTION_KEY / E2E_SYSTEM_KEY) runs this suite against a running host."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.host_keys import HostKeys
from tests.hosts import PROJECT_ROOT, RunningHost
from tests.http_client import remote_key, request

pytestmark = pytest.mark.local_only("starts the suite against the host this run launched")


def test_keys_follow_the_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhooks get the system key, app routes the function key; ``?code=`` URLs and other hosts none."""
    monkeypatch.setenv("E2E_BASE_URL", "https://app.example/")
    monkeypatch.setenv("E2E_FUNCTION_KEY", "fn")
    monkeypatch.setenv("E2E_SYSTEM_KEY", "sys")
    assert remote_key("https://app.example/api/orchestrators/ReserveTicket") == "fn"
    assert remote_key("https://app.example/runtime/webhooks/durabletask/instances/x?taskHub=h") == "sys"
    assert remote_key("https://app.example/runtime/webhooks/durabletask/instances/x?code=abc") is None
    assert remote_key("http://127.0.0.1:7071/api/orchestrators/ReserveTicket") is None
    monkeypatch.delenv("E2E_FUNCTION_KEY")
    assert remote_key("https://app.example/api/instances/x") is None
    monkeypatch.delenv("E2E_BASE_URL")
    assert remote_key("https://app.example/runtime/webhooks/durabletask/instances/x") is None


def test_suite_runs_against_a_host_that_checks_keys(auth_host: RunningHost, auth_keys: HostKeys) -> None:
    """Against devhost with --enableAuth and the keys from its secrets store, the black-box tests pass and the
    storage-reading one says why it skips."""
    starter = auth_host.api("orchestrators/ReserveTicket")
    assert request("POST", starter, "user-1").status == 401  # the run below passes only because it sends keys
    env = {
        **os.environ,
        "E2E_BASE_URL": auth_host.base_url,
        "E2E_FUNCTION_KEY": auth_keys.host_default,  # a host function key opens every function-level route
        "E2E_SYSTEM_KEY": auth_keys.system,
        "E2E_TASK_HUB": auth_host.hub_name,
    }
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
               "tests/e2e/test_reserve_ticket.py::test_confirmed_booking", "tests/e2e/test_storage_layout.py"]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=240,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed, 1 skipped" in result.stdout, result.stdout[-3000:]
    assert "remote host; this test reads the task hub's tables" in result.stdout
