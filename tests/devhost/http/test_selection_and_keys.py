"""Disabled functions, --functions and file-kept keys on the HTTP toy app, in process.

Core Tools' local default treats every caller as an admin, and an admin may call a disabled HTTP
function; with keys checked a disabled function answers 404 to anyone but the master key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from devhost.cli import format_function_list
from devhost.config import HttpSettings, load_config
from devhost.host import Host
from devhost.secrets import FileSecretsRepository, SecretManager, stable_hash
from tests.devhost.http.support import APPS
from tests.http_client import request


@pytest.fixture
def start(start_host: Callable[..., Host]) -> Callable[[HttpSettings], Host]:
    """Start the HTTP toy app with these HTTP settings (stopped at module end)."""
    return lambda http_settings: start_host("http_app", http=http_settings)


def base(host: Host) -> str:
    return f"http://127.0.0.1:{host.config.port}"


def test_disabled_function_without_keys_runs_as_core_tools(start: Callable[..., Host],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Listed as disabled; without --enableAuth every caller is an admin, so it still answers."""
    monkeypatch.setenv("AzureWebJobs.hello.Disabled", "true")
    host = start(HttpSettings())
    assert host.disabled == ["hello"]
    listing = format_function_list(host.worker, host.base_url, "api", disabled=host.disabled)
    assert "Function hello is disabled." in listing and "\thello:" not in listing
    assert request("GET", f"{base(host)}/api/hello").status == 200


def test_keys_from_files_and_disabled_function(start: Callable[..., Host], monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """With AzureWebJobsSecretStorageType=files the keys are host.json and {function}.json in the folder;
    a disabled function answers 404 except to the master key; anonymous functions need no key."""
    monkeypatch.setenv("AzureWebJobsSecretStorageType", "files")
    monkeypatch.setenv("FUNCTIONS_SECRETS_PATH", str(tmp_path))
    monkeypatch.setenv("AzureWebJobs__echo__Disabled", "1")
    host = start(HttpSettings(enable_auth=True))
    stored = json.loads((tmp_path / "host.json").read_text())
    master = stored["masterKey"]["value"]
    assert request("GET", f"{base(host)}/api/hello").status == 200  # the toy app is anonymous
    assert request("GET", f"{base(host)}/api/echo/x").status == 404
    assert request("GET", f"{base(host)}/api/echo/x?code=wrong").status == 404
    assert request("GET", f"{base(host)}/api/echo/x?code={master}").status == 201
    assert request("GET", f"{base(host)}/admin/host/status").status == 401
    assert request("GET", f"{base(host)}/admin/host/status", headers={"x-functions-key": master}).status == 200
    assert request("GET", f"{base(host)}/durabletask/instances").status == 404  # no durable extension here


def test_functions_allow_list(start: Callable[..., Host]) -> None:
    """--functions loads only the named functions (case-insensitive); the others are gone."""
    host = start(HttpSettings(functions=("HELLO", "plain")))
    assert sorted(host.worker.functions) == ["hello", "plain"]
    assert request("GET", f"{base(host)}/api/hello").status == 200
    assert request("GET", f"{base(host)}/api/cookie").status == 404


def test_secret_manager_levels_and_changes(tmp_path: Path) -> None:
    """Master → admin, system keys → system, host keys → function, a function's keys only for it."""
    async def scenario() -> None:
        manager = SecretManager(FileSecretsRepository(tmp_path), host_name="localhost:7071", instance_id="i")
        master = await manager.master_key()
        system = await manager.system_key("durabletask_extension")
        assert await manager.system_key("durabletask_extension") == system
        own = (await manager.function_keys("Echo"))["default"]
        assert (await manager.grant(master, None)).level.name == "ADMIN"
        assert (await manager.grant(system, "echo")).key_name == "durabletask_extension"
        assert (await manager.grant(own, "echo")).level.name == "FUNCTION"
        assert (await manager.grant(own, "hello")).level.name == "ANONYMOUS"
        _, created = await manager.set_key("functionkeys", "extra", "value-1")
        assert created and (await manager.grant("value-1", None)).key_name == "extra"
        assert (await manager.set_key("functionkeys", "EXTRA", "value-2"))[1] is False
        assert await manager.delete_key("functionkeys", "extra")
        assert (await manager.grant("value-2", None)).level.name == "ANONYMOUS"
        fresh = SecretManager(FileSecretsRepository(tmp_path), host_name="localhost:7071", instance_id="j")
        assert await fresh.master_key() == master  # what the first one created is read back
        document = json.loads((tmp_path / "echo.json").read_text())
        assert list(document) == ["keys", "hostName", "instanceId", "source", "decryptionKeyId"]

    asyncio.run(scenario())


def test_stable_hash_is_dotnets() -> None:
    """Utility.GetStableHash: 23, then h*31+c over UTF-16 units, wrapping as a 32-bit int."""
    assert stable_hash("ab") == (23 * 31 + 97) * 31 + 98
    value = 23
    for ch in "/home/user/some/rather/long/function/app/path":
        value = (value * 31 + ord(ch)) & 0xFFFFFFFF
    assert stable_hash("/home/user/some/rather/long/function/app/path") == (
        value - (1 << 32) if value >= 1 << 31 else value)


def test_disabled_durable_functions_do_not_run() -> None:
    """A disabled orchestrator or activity is unknown to the durable extension; the others stay."""
    from devhost.worker.invoker import Worker
    from devhost.worker.selection import apply_selection

    worker = Worker(load_config(APPS / "durable_app", environ={}))
    worker.load()
    try:
        disabled = apply_selection(worker, None, {"AzureWebJobs.failing_orchestrator.Disabled": "True",
                                                  "AzureWebJobs__say_hello__Disabled": "1",
                                                  "AzureWebJobs.greeter.Disabled": "false"})
        assert sorted(disabled) == ["failing_orchestrator", "say_hello"]
        assert "Failer" not in worker.orchestrators and "greeter" in worker.orchestrators
        assert "SayHello" not in worker.activities and "explode" in worker.activities
        assert "say_hello" in worker.functions  # still listed, as disabled
    finally:
        asyncio.run(worker.close())
