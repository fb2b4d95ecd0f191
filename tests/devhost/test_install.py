"""devhost as a tool for any app: `pip install` of this repository into a fresh venv, then `devhost start`
in a copy of Microsoft's function_chaining sample (written here, as the samples-v2 one is) runs the
orchestration to completion against the session's Azurite.

Slow (a PyPI install): marked `install`, left out of `make test` and run by .ci/run after it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from devhost.azurite import free_port
from tests.hosts import RunningHost, stop_host, wait_until_ready

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parents[2]

# Microsoft's Azure-Samples/azure-functions-durable-python samples-v2/function_chaining, as published.
FUNCTION_CHAINING = '''
import azure.functions as func
import azure.durable_functions as df

myApp = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


# An HTTP-triggered function with a Durable Functions client binding
@myApp.route(route="orchestrators/{functionName}")
@myApp.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client):
    function_name = req.route_params.get('functionName')
    instance_id = await client.start_new(function_name)
    response = client.create_check_status_response(req, instance_id)
    return response


# Orchestrator
@myApp.orchestration_trigger(context_name="context")
def hello_orchestrator(context):
    result1 = yield context.call_activity("hello", "Seattle")
    result2 = yield context.call_activity("hello", "Tokyo")
    result3 = yield context.call_activity("hello", "London")

    return [result1, result2, result3]


# Activity
@myApp.activity_trigger(input_name="city")
def hello(city: str):
    return "Hello " + city
'''

HOST_JSON = {
    "version": "2.0",
    "logging": {"applicationInsights": {"samplingSettings": {"isEnabled": True, "excludedTypes": "Request"}}},
    "extensionBundle": {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"},
}
LOCAL_SETTINGS = {"IsEncrypted": False, "Values": {"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                                                  "FUNCTIONS_WORKER_RUNTIME": "python"}}


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env.update(PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONUNBUFFERED="1")
    return env


def run(command: list[str], cwd: Path, timeout: float) -> str:
    result = subprocess.run(command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout,
                            check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def copy_repository(target: Path) -> Path:
    """The repository's tracked files (what `pip install <git URL>` would fetch), without build leftovers;
    outside a git checkout, what the distribution is built from."""
    try:
        tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        names = [n for n in tracked.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        sources = (path.relative_to(ROOT).as_posix() for path in (ROOT / "devhost").rglob("*.py"))
        names = ["pyproject.toml", "README.md", *sources]
    for name in names:
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def write_sample(app: Path) -> None:
    app.mkdir()
    (app / "function_app.py").write_text(textwrap.dedent(FUNCTION_CHAINING).lstrip(), encoding="utf-8")
    (app / "host.json").write_text(json.dumps(HOST_JSON, indent=2), encoding="utf-8")
    (app / "local.settings.json").write_text(json.dumps(LOCAL_SETTINGS, indent=2), encoding="utf-8")
    (app / "requirements.txt").write_text("azure-functions\nazure-functions-durable\n", encoding="utf-8")


def get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())


def test_pip_installed_devhost_runs_function_chaining(tmp_path: Path, storage_connection: str) -> None:
    """A fresh venv gets devhost from the repository; `devhost start` runs the sample's chain to the end."""
    source = copy_repository(tmp_path / "source")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, timeout=60)
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", str(source)], tmp_path,
        timeout=300)
    where = run([str(python), "-c", "import devhost; print(devhost.__file__)"], tmp_path, timeout=60)
    assert Path(where.strip()).is_relative_to(venv)

    app = tmp_path / "function_chaining"
    write_sample(app)
    port = free_port()
    hub = f"chain{uuid.uuid4().hex[:10]}"
    env = {**clean_env(), "AzureWebJobsStorage": storage_connection,
           "AzureFunctionsJobHost__extensions__durableTask__hubName": hub}
    log_path = tmp_path / "devhost.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen([str(venv / "bin" / "devhost"), "start", "--port", str(port)], cwd=app, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    host = RunningHost(f"http://127.0.0.1:{port}", port, hub, storage_connection, process, log_path, env)
    try:
        wait_until_ready(host)
        request = urllib.request.Request(host.url("api/orchestrators/hello_orchestrator"), data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert reply.status == 202
            status_url = json.loads(reply.read())["statusQueryGetUri"]
        deadline = time.monotonic() + 30
        status = get_json(status_url)
        while status["runtimeStatus"] not in ("Completed", "Failed", "Terminated"):
            assert time.monotonic() < deadline, f"not finished in 30 s: {status}\n{host.log_text()[-3000:]}"
            time.sleep(0.1)
            status = get_json(status_url)
        assert status["runtimeStatus"] == "Completed", host.log_text()[-3000:]
        assert status["output"] == ["Hello Seattle", "Hello Tokyo", "Hello London"]
        assert "hello_orchestrator: orchestrationTrigger" in host.log_text()
    finally:
        stop_host(host)
