"""Fault injection: devhost and Azurite killed at random (seeded) points while flows are in flight.

Checks that every instance completes with the right output, that no history row is written twice, and
that an Azurite devhost started is started again when it dies.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import is_listening
from tests.e2e.flows import start, wait_for_custom, wait_until_finished
from tests.e2e.test_crash_recovery import SHORT_LEASES, history_fingerprints, storage_state
from tests.hosts import RunningHost, launch_host, stop_host
from tests.http_client import poll, request

pytestmark = [pytest.mark.faults,
              pytest.mark.skipif(os.environ.get("E2E_HOST", "devhost") != "devhost", reason="kills devhost")]


def moved(urls: dict[str, Any], old: RunningHost, new: RunningHost) -> dict[str, Any]:
    """The check-status payload of ``urls`` pointed at the restarted host."""
    return {**urls, "statusQueryGetUri": urls["statusQueryGetUri"].replace(f"localhost:{old.port}",
                                                                            f"localhost:{new.port}")}


def assert_completed_once(connection: str, host: RunningHost, urls: dict[str, Any], expected: Any) -> None:
    try:
        final = wait_until_finished(urls, timeout=90)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{storage_state(connection, host.hub_name, urls['id'])}") from None
    assert final["runtimeStatus"] == "Completed", final
    assert expected(final["output"]), final
    rows = history_fingerprints(connection, host.hub_name, urls["id"])
    duplicates = [row for row, n in Counter(rows).items() if n > 1]
    assert not duplicates, duplicates
    assert sum(1 for row in rows if row[0] == "ExecutionCompleted") == 1


@pytest.mark.parametrize("seed", [20261201, 7])
def test_devhost_killed_at_random_points(storage_connection: str, tmp_path: Path, seed: int) -> None:
    """Three kill -9s at seeded random moments while flows start, wait, get confirmed and finish."""
    rng = random.Random(seed)
    host = launch_host(storage_connection, tmp_path, extra_env=SHORT_LEASES)
    steps: list[dict[str, Any]] = []
    tickets: list[dict[str, Any]] = []
    confirmed: set[str] = set()
    try:
        for round_number in range(3):
            steps += [start(host, "SetStatusTest", {"stepDelaySeconds": rng.choice([0, 1])}) for _ in range(3)]
            fresh = [start(host, "ReserveTicket", {"userId": f"fault-{seed}-{round_number}-{i}",
                                                   "discountTimeout": 600}) for i in range(3)]
            tickets += fresh
            # Confirm some of the tickets that are already waiting, at a random moment of this round.
            time.sleep(rng.uniform(0.0, 1.5))
            for urls in rng.sample(tickets, k=2):
                if urls["id"] in confirmed:
                    continue
                waiting = request("GET", urls["statusQueryGetUri"])
                if waiting.status == 202 and "discount" in (waiting.json.get("customStatus") or {}):
                    reply = request("POST", host.api(f"reservations/{urls['id']}/confirmation"), {"confirmed": True})
                    if reply.status == 202:
                        confirmed.add(urls["id"])
            time.sleep(rng.uniform(0.0, 1.0))
            old = host
            stop_host(old, hard=True)
            host = launch_host(storage_connection, tmp_path, hub_name=old.hub_name, extra_env=SHORT_LEASES)
            steps = [moved(u, old, host) for u in steps]
            tickets = [moved(u, old, host) for u in tickets]
        for urls in tickets:
            if urls["id"] not in confirmed:
                wait_for_custom(urls, "discount", timeout=60)
                assert request("POST", host.api(f"reservations/{urls['id']}/confirmation"),
                            {"confirmed": True}).status == 202
        for urls in steps:
            assert_completed_once(storage_connection, host, urls,
                                  lambda out: out["completedActions"] == ["A", "B", "C"])
        for urls in tickets:
            assert_completed_once(storage_connection, host, urls, lambda out: out is True)
    finally:
        stop_host(host)


def azurite_children(parent_pid: int) -> list[int]:
    """Processes whose parent is ``parent_pid`` and whose command line is Azurite's."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent_pid and b"azurite" in command:
            found.append(int(entry.name))
    return found


def test_azurite_devhost_started_is_restarted(tmp_path: Path) -> None:
    """kill -9 the Azurite devhost started: one log line, a new Azurite on the same ports, flows run again."""
    if any(is_listening(port) for port in (10000, 10001, 10002)):
        pytest.skip("the development storage ports 10000-10002 are in use on this machine")
    host = launch_host("UseDevelopmentStorage=true", tmp_path,
                       extra_env={"DEVHOST_AZURITE_LOCATION": str(tmp_path / "azurite")})
    try:
        first = poll(lambda: request("GET", host.url("admin/host/status")), lambda r: bool(azurite_children(
            host.process.pid)), timeout=10)
        assert first.status == 200
        (azurite_pid,) = azurite_children(host.process.pid)
        before = start(host, "SetStatusTest", {"stepDelaySeconds": 0})
        wait_until_finished(before, timeout=60)
        os.kill(azurite_pid, signal.SIGKILL)
        deadline = time.monotonic() + 60

        def replaced() -> bool:
            # The killed process can still be listed, and its ports still open, for a moment after the
            # kill returns: only another Azurite child on the ports counts as the restart.
            children = azurite_children(host.process.pid)
            return bool(children) and azurite_pid not in children and all(
                is_listening(p) for p in (10000, 10001, 10002))

        while not replaced():
            assert time.monotonic() < deadline, host.log_text()[-3000:]
            time.sleep(0.1)
        assert host.log_text().count("exited with code") == 1
        # Storage health sees Azurite back within a probe interval: the host is Running again.
        poll(lambda: request("GET", host.url("admin/host/status")), lambda r: r.json["state"] == "Running",
             timeout=30, interval=0.2)
        # Azurite may have lost its last writes; a new flow must still run to the end.
        after = poll(lambda: request("POST", host.api("orchestrators/SetStatusTest"), {"stepDelaySeconds": 0}),
                     lambda r: r.status == 202, timeout=60, interval=0.5)
        final = wait_until_finished(after.json, timeout=60)
        assert final["runtimeStatus"] == "Completed"
    finally:
        stop_host(host)
