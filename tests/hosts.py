"""Hosts under test: devhost by default, Core Tools' `func start` with E2E_HOST=func, or any running host
(a deployed app, a devhost started elsewhere) with E2E_BASE_URL.

Each launched host gets its own task hub name and a free port, so parallel runs never take each other's
messages. A remote host is only talked to over HTTP: tests that look into storage or stop processes are
marked ``local_only`` and skip.
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devhost.azurite import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RunningHost:
    base_url: str  # e.g. http://localhost:7071
    port: int
    hub_name: str
    storage_connection: str
    process: subprocess.Popen[bytes] | None  # None for a remote host
    log_path: Path
    env: dict[str, str]

    @property
    def remote(self) -> bool:
        return self.process is None

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def api(self, path: str) -> str:
        return self.url(f"api/{path.lstrip('/')}")

    def durable(self, path: str) -> str:
        return self.url(f"runtime/webhooks/durabletask/{path.lstrip('/')}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""


def remote_host() -> RunningHost | None:
    """The host named by E2E_BASE_URL (keys: E2E_FUNCTION_KEY / E2E_SYSTEM_KEY), or None to launch one."""
    base_url = os.environ.get("E2E_BASE_URL", "").strip().rstrip("/")
    if not base_url:
        return None
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RuntimeError(f"E2E_BASE_URL must be an http(s) URL, got {base_url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    hub_name = os.environ.get("E2E_TASK_HUB", "CustomStatusHub")  # host.json's hubName
    return RunningHost(base_url, port, hub_name, "", None, Path(os.devnull), {})


def host_command(kind: str, port: int, extra_args: Sequence[str] = (), app_dir: Path = PROJECT_ROOT) -> list[str]:
    """The start command; ``extra_args`` are Core Tools' own flags (--enableAuth, --cors, --address ...)."""
    if kind == "func":
        func = shutil.which("func")
        if func is None:
            pytest.skip("E2E_HOST=func but Core Tools' `func` is not on the PATH")
        return [func, "start", "--port", str(port), *extra_args]
    return [sys.executable, "-m", "devhost", "start", "--port", str(port), "--app-dir", str(app_dir), *extra_args]


def wait_until_ready(host: RunningHost, timeout: float = 60.0, *, keys_checked: bool = False) -> None:
    """Poll the status route until it says Running; with keys checked it answers 401 to a keyless caller,
    which only the fully started host does (the HTTP server starts last)."""
    assert host.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if host.process.poll() is not None:
            raise RuntimeError(f"host exited with {host.process.returncode}:\n{host.log_text()[-3000:]}")
        try:
            with urllib.request.urlopen(host.url("admin/host/status"), timeout=2) as reply:
                if b'"Running"' in reply.read():
                    return
        except urllib.error.HTTPError as err:
            if keys_checked and err.code == 401:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"host not ready within {timeout} s:\n{host.log_text()[-3000:]}")


def launch_host(storage_connection: str, tmp: Path, *, hub_name: str | None = None, port: int | None = None,
                extra_env: dict[str, str] | None = None, kind: str | None = None,
                extra_args: Sequence[str] = (), address: str | None = None,
                app_dir: Path = PROJECT_ROOT) -> RunningHost:
    """Start a host and wait until it serves; ``address`` is passed as ``--address`` and used in its URLs."""
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
        args = [*extra_args, *(["--address", address] if address else [])]
        # `func start` runs in the app's directory; devhost is told where the app is.
        cwd = app_dir if kind == "func" else PROJECT_ROOT
        process = subprocess.Popen(host_command(kind, port, args, app_dir), cwd=cwd, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    host = RunningHost(f"http://{address or 'localhost'}:{port}", port, hub_name, storage_connection, process,
                       log_path, env)
    try:
        wait_until_ready(host, keys_checked="--enableAuth" in extra_args)
    except Exception:
        stop_host(host)
        raise
    return host


def stop_host(host: RunningHost, *, hard: bool = False) -> None:
    if host.process is not None and host.process.poll() is None:
        host.process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
        try:
            host.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            host.process.kill()
            host.process.wait(timeout=5)
