"""devhost freezes its start-up heap once ``devhost start`` has started, unless told not to."""

from __future__ import annotations

import gc
import re
import signal
from pathlib import Path

import pytest

from devhost.azurite import free_port
from devhost.heap import freeze_startup_heap
from tests.devhost.test_cli import devhost, wait_for_status

APP = Path(__file__).resolve().parent / "apps" / "http_app"


def test_switched_off_leaves_the_collector_alone() -> None:
    """With ``DEVHOST_GC_FREEZE=0`` nothing is collected or frozen."""
    before = gc.get_freeze_count()
    assert freeze_startup_heap({"DEVHOST_GC_FREEZE": "0"}) == 0
    assert gc.get_freeze_count() == before


@pytest.mark.parametrize("switch", ["", "0"])
def test_start_freezes_the_heap_it_started_with(switch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``devhost start`` freezes the objects start-up left (many thousands), and says so in its debug log."""
    if switch:
        monkeypatch.setenv("DEVHOST_GC_FREEZE", switch)
    else:
        monkeypatch.delenv("DEVHOST_GC_FREEZE", raising=False)
    port = free_port()
    proc = devhost("start", "--verbose", "--port", str(port), "--app-dir", str(APP))
    try:
        assert wait_for_status(proc, f"http://127.0.0.1:{port}/admin/host/status")["state"] == "Running"
    finally:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    frozen = re.search(r"Start-up heap frozen: (\d+) objects", out + err)
    if switch == "0":
        assert frozen is None
    else:
        assert frozen is not None, (out + err)[-2000:]
        assert int(frozen.group(1)) > 10_000
