"""W1's turn-taking: flows cut into rounds, peers kept alive across phases and held between turns, chunks pooled."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bench import launcher, workloads
from bench.peers.common import FlowTiming, merge_phases, phase_result
from tests.hosts import launch_host, stop_host


def _state(pid: int) -> str:
    """The process's scheduler state letter (R, S, T for stopped, ...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _wait_for_state(pid: int, wanted: set[str], timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        state = _state(pid)
        if state in wanted or time.monotonic() > deadline:
            return state
        time.sleep(0.01)


@pytest.mark.parametrize(("total", "rounds"), [(500, 5), (30, 2), (7, 3), (3, 5), (1, 1)])
def test_chunks_cover_every_flow_once(total: int, rounds: int) -> None:
    """The rounds are contiguous, none is empty, and together they hold each flow index exactly once."""
    plan = workloads.chunks(total, rounds)
    assert len(plan) == min(rounds, total)
    assert all(count > 0 for _, count in plan)
    assert [i for first, count in plan for i in range(first, first + count)] == list(range(total))
    assert max(c for _, c in plan) - min(c for _, c in plan) <= 1


def test_merged_phase_pools_flows_and_adds_walls() -> None:
    """Percentiles come from every chunk's flows together; throughput is all flows over the summed walls."""
    first = phase_result([FlowTiming(0.010, 0.005, 2)] * 3, 1.0, 1, [], False)
    second = phase_result([FlowTiming(0.030, 0.007, 4)], 1.0, 1, ["Boom: once"], True)
    merged = merge_phases([first, second])
    assert merged["instances"] == 4 and merged["chunks"] == 2
    assert merged["wall_s"] == 2.0 and merged["orchestrations_per_s"] == 2.0
    assert merged["start_to_status"]["p50_ms"] == 10.0 and merged["start_to_status"]["max_ms"] == 30.0
    assert merged["samples_ms"]["event_to_completed"] == [5.0, 5.0, 5.0, 7.0]
    assert merged["polls_per_flow"] == 2.5
    assert merged["errors"] == 1 and merged["first_errors"] == ["Boom: once"] and merged["capped"] is True


def test_peer_answers_each_phase_and_is_held_between_turns(tmp_path: Path) -> None:
    """A peer says ready once, answers each request with that phase, stays stopped while held, and exits on close."""
    peer = launcher.Peer("tests.bench.counting_peer", ["--workdir", str(tmp_path)], timeout=60)
    try:
        assert peer.info["ready"] is True and peer.info["name"] == "counting"
        pid = peer.process.pid
        peer.hold()
        assert _wait_for_state(pid, {"T", "t"}) in {"T", "t"}
        peer.release()
        first = peer.run("one at a time", 3, 1, 0, timeout=30)
        second = peer.run("32 clients", 2, 32, 1_000_000, timeout=30)
        assert (first["label"], first["instances"], first["concurrency"]) == ("one at a time", 3, 1)
        assert first["samples_ms"]["start_to_status"] == [0.0, 1.0, 2.0]
        assert (second["instances"], second["concurrency"]) == (2, 32)
        assert second["samples_ms"]["start_to_status"] == [1_000_000.0, 1_000_001.0]
        peer.hold()
        peer.close(timeout=30)  # releases it first: a stopped process cannot exit
        assert peer.process.returncode == 0
    finally:
        if peer.process.poll() is None:
            peer.kill()


@pytest.mark.e2e
def test_devhost_rounds_leave_turns_between_them(storage_connection: str, tmp_path: Path) -> None:
    """Flows run in the rounds asked for, ``between`` runs after each, and the figures cover every flow."""
    host = launch_host(storage_connection, tmp_path)
    turns: list[int] = []
    try:
        result = asyncio.run(workloads.w1_reserve_ticket(host.base_url, 5, 1, 0.002, 60.0, 0, 2, turns.append))
    finally:
        stop_host(host)
    assert turns == [0, 1]
    assert result["instances"] == 5 and result["chunks"] == 2 and result["errors"] == 0
    assert result["request_latency"]["start (app route)"]["n"] == 5
