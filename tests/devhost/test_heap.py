"""devhost freezes its start-up heap once ``devhost start`` has started, unless told not to."""

from __future__ import annotations

import gc
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devhost.azurite import free_port
from devhost.heap import freeze_startup_heap
from tests.devhost.test_cli import wait_for_status

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).resolve().parent / "apps" / "http_app"


def test_switched_off_leaves_the_collector_alone() -> None:
    """With ``DEVHOST_GC_FREEZE=0`` nothing is collected or frozen."""
    before = gc.get_freeze_count()
    assert freeze_startup_heap({"DEVHOST_GC_FREEZE": "0"}) == 0
    assert gc.get_freeze_count() == before


@pytest.mark.parametrize("switch", ["", "0"])
def test_start_freezes_the_heap_it_started_with(switch: str) -> None:
    """``devhost start`` freezes the objects start-up left (many thousands), and says so in its debug log."""
    env = {k: v for k, v in os.environ.items() if k not in ("AzureWebJobsStorage", "DEVHOST_GC_FREEZE")}
    env["PYTHONUNBUFFERED"] = "1"
    if switch:
        env["DEVHOST_GC_FREEZE"] = switch
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "devhost", "start", "--verbose", "--port", str(port),
                             "--app-dir", str(APP)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_for_status(proc, f"http://127.0.0.1:{port}/admin/host/status")["state"] == "Running"
    finally:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    frozen = re.search(r"Start-up heap frozen: (\d+) objects", out)
    if switch == "0":
        assert frozen is None
    else:
        assert frozen is not None, out[-2000:]
        assert int(frozen.group(1)) > 10_000
