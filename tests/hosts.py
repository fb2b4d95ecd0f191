"""Hosts under test: devhost by default, Core Tools' `func start` with E2E_HOST=func.

Each host gets its own task hub name and a free port, so parallel runs never take each other's messages.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from devhost.azurite import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RunningHost:
    base_url: str  # e.g. http://localhost:7071
    port: int
    hub_name: str
    storage_connection: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def api(self, path: str) -> str:
        return self.url(f"api/{path.lstrip('/')}")

    def durable(self, path: str) -> str:
        return self.url(f"runtime/webhooks/durabletask/{path.lstrip('/')}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def host_command(kind: str, port: int, app_dir: Path = PROJECT_ROOT) -> list[str]:
    if kind == "func":
        func = shutil.which("func")
        if func is None:
            pytest.skip("E2E_HOST=func but Core Tools' `func` is not on the PATH")
        return [func, "start", "--port", str(port)]
    return [sys.executable, "-m", "devhost", "start", "--port", str(port), "--app-dir", str(app_dir)]


def wait_until_ready(host: RunningHost, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if host.process.poll() is not None:
            raise RuntimeError(f"host exited with {host.process.returncode}:\n{host.log_text()[-3000:]}")
        try:
            with urllib.request.urlopen(host.url("admin/host/status"), timeout=2) as reply:
                if b'"Running"' in reply.read():
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"host not ready within {timeout} s:\n{host.log_text()[-3000:]}")


def launch_host(storage_connection: str, tmp: Path, *, hub_name: str | None = None, port: int | None = None,
                extra_env: dict[str, str] | None = None, kind: str | None = None,
                app_dir: Path = PROJECT_ROOT) -> RunningHost:
    kind = kind or os.environ.get("E2E_HOST", "devhost")
    port = port or free_port()
    hub_name = hub_name or f"e2e{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "AzureWebJobsStorage": storage_connection,  # wins over local.settings.json, as with Core Tools
        "AzureFunctionsJobHost__extensions__durableTask__hubName": hub_name,
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    log_path = tmp / f"host-{hub_name}.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(host_command(kind, port, app_dir), cwd=PROJECT_ROOT, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    host = RunningHost(f"http://localhost:{port}", port, hub_name, storage_connection, process, log_path, env)
    try:
        wait_until_ready(host)
    except Exception:
        stop_host(host)
        raise
    return host


def stop_host(host: RunningHost, *, hard: bool = False) -> None:
    if host.process.poll() is None:
        host.process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
        try:
            host.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            host.process.kill()
            host.process.wait(timeout=5)
