"""``python -m devhost``: the command line, the function listing, logging and a clean shutdown."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devhost.azurite import free_port
from devhost.cli import format_function_list
from devhost.config import HostConfig
from devhost.logs import HostFormatter, setup_logging
from devhost.worker.invoker import Worker

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"


def devhost(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "AzureWebJobsStorage"}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen([sys.executable, "-m", "devhost", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


STARTING_STATES = {"Default", "Starting", "Initialized"}  # the host's states before it settles


def wait_for_status(proc: subprocess.Popen[str], url: str, timeout: float = 15.0) -> dict[str, object]:
    """The host status once the host has left its starting states (it may answer while still starting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"devhost exited early with {proc.returncode}:\n{out}\n{err}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                status: dict[str, object] = json.loads(resp.read())
            if status.get("state") not in STARTING_STATES:
                return status
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.05)
    proc.kill()
    pytest.fail("devhost did not report a settled /admin/host/status in time")


def test_start_lists_functions_serves_and_stops_on_sigterm() -> None:
    """``start`` serves the app, prints the function list, and exits 0 soon after SIGTERM."""
    port = free_port()
    started = time.monotonic()
    proc = devhost("start", "--port", str(port), "--app-dir", str(APPS / "http_app"))
    try:
        status = wait_for_status(proc, f"http://127.0.0.1:{port}/admin/host/status")
        assert status["state"] == "Running"
        assert time.monotonic() - started < 10
        with urllib.request.urlopen(f"http://localhost:{port}/api/plain", timeout=5) as resp:
            assert resp.read() == b"just text"
    finally:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert f"\thello: [GET] http://localhost:{port}/api/hello/{{name?}}\n\n" in out
    assert f"\tspecial:  http://localhost:{port}/api/items/special\n\n" in out
    assert "\nFunctions:\n\n" in out
    assert re.search(r"\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] Executing 'Functions\.plain' "
                     r"\(Reason='This function was programmatically called via the host APIs\.', Id=[0-9a-f-]{36}\)",
                     out)
    assert re.search(r"Executed 'Functions\.plain' \(Succeeded, Id=[0-9a-f-]{36}, Duration=\d+ms\)", out)
    assert "Host stopped." in out


def test_config_error_is_one_line(tmp_path: Path) -> None:
    """A directory without host.json fails with exit code 1 and a single error line."""
    proc = devhost("start", "--app-dir", str(tmp_path), "--port", str(free_port()))
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert err.strip().splitlines() == [f"devhost: error: no host.json in {tmp_path}: run devhost from the "
                                        "app's root or pass --app-dir"]


def test_app_load_error_is_one_line(tmp_path: Path) -> None:
    """An app that cannot be indexed fails with exit code 1, the worker's message and no traceback."""
    (tmp_path / "host.json").write_text('{"version": "2.0"}')
    (tmp_path / "function_app.py").write_text("x = 1\n")
    proc = devhost("start", "--app-dir", str(tmp_path), "--port", str(free_port()))
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert err == "devhost: error: Could not find top level function app instances in function_app.py.\n"


def test_busy_port_is_one_line(tmp_path: Path) -> None:
    """A port that is already taken is reported like Core Tools does, with exit code 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = devhost("start", "--app-dir", str(APPS / "http_app"), "--port", str(port))
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert err == (f"devhost: error: Port {port} is unavailable. Close the process using that port, "
                   "or specify another port using --port [-p].\n")


def test_help_works() -> None:
    """``python -m devhost --help`` prints usage and exits 0."""
    proc = devhost("--help")
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "start" in out and "usage:" in out


def test_function_list_matches_func_start() -> None:
    """HTTP functions come first with methods and URL, then the other functions with their trigger."""
    worker = Worker(HostConfig(app_dir=APPS / "durable_app"))
    worker.load()
    listing = format_function_list(worker, "http://localhost:7071", "api")
    assert listing == textwrap.dedent("""
        Functions:

        \thttp_start: [POST] http://localhost:7071/api/orchestrators/{functionName}

        \tgreeter: orchestrationTrigger

        \tfailing_orchestrator: orchestrationTrigger

        \tsay_hello: activityTrigger

        \texplode: activityTrigger
    """)


def test_log_format_and_host_json_levels() -> None:
    """Log lines carry a UTC millisecond timestamp, and host.json categories set logger levels."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    record.created, record.msecs = 1795741323.456, 456.0
    assert HostFormatter().format(record) == "[2026-11-27T01:02:03.456Z] hello there"
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, logging.getLogger("Function.quiet").level)
    try:
        setup_logging({"logging": {"logLevel": {"default": "Warning", "Function.quiet": "None"}}}, stream=stream)
        logging.getLogger("Function.quiet").error("hidden")
        logging.getLogger("other").info("hidden too")
        logging.getLogger("other").warning("shown")
        assert stream.getvalue().endswith("] shown\n") and "hidden" not in stream.getvalue()
    finally:
        root.setLevel(saved[0])
        logging.getLogger("Function.quiet").setLevel(saved[1])
        logging.getLogger("devhost").setLevel(logging.NOTSET)
        for handler in list(root.handlers):
            if handler.get_name() == "devhost-console":
                root.removeHandler(handler)


def test_a_change_to_the_app_restarts_the_host(tmp_path: Path) -> None:
    """Editing the app's code (or host.json) restarts the host as Core Tools does: same command, new code."""
    app = tmp_path / "app"
    app.mkdir()
    for name in ("host.json", "function_app.py"):
        (app / name).write_text((APPS / "http_app" / name).read_text())
    port = free_port()
    proc = devhost("start", "--port", str(port), "--app-dir", str(app))
    url = f"http://127.0.0.1:{port}/api/plain"
    try:
        wait_for_status(proc, f"http://127.0.0.1:{port}/admin/host/status")
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.read() == b"just text"
        code = app / "function_app.py"
        code.write_text(code.read_text().replace('"just text"', '"edited text"'))
        deadline = time.monotonic() + 30
        body = b""
        while time.monotonic() < deadline and body != b"edited text":
            assert proc.poll() is None, "devhost exited instead of restarting"
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    body = resp.read()
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        assert body == b"edited text"
    finally:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert "File change detected: function_app.py. Restarting the host." in out
    assert out.count("Host stopped.") == 2
