"""The critical-path breakdown: each step of W1's two latencies from devhost's spans and the client's clock."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from bench import critical_path
from bench.critical_path import AZURITE, CLIENT, DEVHOST, EVENT, START, Span
from bench.workloads import FlowMarks
from devhost import spans
from tests.hosts import launch_host, stop_host

MS = 0.001


def synthetic_flow(at: float = 100.0, late_ms: float = 0.0) -> tuple[FlowMarks, list[Span]]:
    """One flow whose every step takes a known number of milliseconds, ``late_ms`` more before its history batch."""

    def t(ms: float) -> float:
        return at + (ms + (late_ms if ms >= 15 else 0.0)) * MS

    flow = FlowMarks(start_sent=at, start_answered=t(10), visible=t(30), raise_answered=t(40), completed=t(45),
                     polls=3)
    recorded: list[Span] = [
        (t(1), t(10), "request", "POST /api/orchestrators/ReserveTicket"),
        (t(3), t(9), "request", "POST /durabletask/orchestrators/ReserveTicket"),
        (t(4), t(5), "storage", "queue put (control) hub-control-00/messages"),
        (t(6), t(25), "episode", "i1"),
        (t(10), t(25), "commit", "i1"),
        (t(10.5), t(14), "storage", "queue put (control) hub-control-00/messages"),
        (t(15), t(20), "storage", "table batch $batch"),
        (t(21), t(24), "storage", "table merge hubInstances(PartitionKey='i1')"),
        (t(27), t(27.5), "request", "GET /runtime/webhooks/durabletask/instances/i1"),
        (t(31), t(39), "request", "POST /runtime/webhooks/durabletask/instances/i1/raiseEvent/BookingConfirmed"),
        (t(32), t(40), "episode", "i1"),
        (t(34), t(40), "commit", "i1"),
        (t(34.5), t(38), "storage", "table batch $batch"),
    ]
    return flow, recorded


def test_each_step_is_the_time_between_its_two_marks() -> None:
    """Steps follow the chain: request, API, episode, commit, batch, merge, client; then raise to Completed."""
    flow, recorded = synthetic_flow()
    steps = critical_path.steps_of(flow, recorded)
    assert steps is not None
    expected = [1, 2, 3, 4, 5, 5, 1, 9, 1, 1, 2, 0.5, 3.5, 1, 6]
    assert [round(v, 6) for v in steps.values()] == pytest.approx(expected)
    start_steps = [s for s in critical_path.STEPS if s.path == START]
    assert sum(steps[s.name] for s in start_steps) == pytest.approx((flow.visible - flow.start_sent) * 1000)
    event_steps = [s for s in critical_path.STEPS if s.path == EVENT]
    assert sum(steps[s.name] for s in event_steps) == pytest.approx((flow.completed - flow.visible) * 1000)


def test_a_flow_with_missing_spans_is_left_out() -> None:
    """Without its history batch (spans dropped), a flow has no breakdown and is not counted."""
    flow, recorded = synthetic_flow()
    partial = [s for s in recorded if "$batch" not in s[3]]
    assert critical_path.steps_of(flow, partial) is None
    summary = critical_path.summarize([flow], partial)
    assert summary["flows"] == 1 and summary["flows_with_spans"] == 0
    assert all(math.isnan(step["p50_ms"]) for step in summary["steps"])


def test_the_summary_adds_the_steps_by_whose_time_they_are() -> None:
    """Client, devhost and Azurite shares of each latency are sums of their steps' p50s."""
    flow, recorded = synthetic_flow()
    summary = critical_path.summarize([flow], recorded)
    assert summary["totals"][START]["p50_ms"] == pytest.approx(30.0)
    assert summary["totals"][START]["p50_by_owner"] == pytest.approx({CLIENT: 10.0, DEVHOST: 10.0, AZURITE: 10.0})
    assert summary["totals"][EVENT]["p50_by_owner"] == pytest.approx({CLIENT: 7.0, DEVHOST: 4.5, AZURITE: 3.5})
    assert "start -> visible: p50 30.0 ms" in critical_path.render(summary)


def test_the_slowest_tenth_shows_the_step_its_flows_lose_time_in() -> None:
    """One flow in ten is 10 ms late in its TimerFired put: that step's slowest-tenth mean is 10 ms above the middle."""
    flows: list[FlowMarks] = []
    recorded: list[Span] = []
    for i in range(10):
        flow, spans_of_flow = synthetic_flow(at=100.0 + i, late_ms=10.0 if i == 3 else 0.0)
        flows.append(flow)
        recorded.extend(spans_of_flow)
    summary = critical_path.summarize(flows, sorted(recorded))
    by_name = {step["step"]: step for step in summary["steps"]}
    put = by_name["commit until its messages are stored (TimerFired put)"]
    assert (put["middle_mean_ms"], put["slowest_tenth_mean_ms"]) == pytest.approx((5.0, 15.0))
    batch = by_name["history batch (episodes 1-2, custom status)"]
    assert (batch["middle_mean_ms"], batch["slowest_tenth_mean_ms"]) == pytest.approx((5.0, 5.0))
    assert "slowest" in critical_path.render(summary)


@pytest.mark.e2e
@pytest.mark.local_only("reads the spans file of a devhost this run starts")
def test_a_devhost_recording_spans_gives_every_step_of_a_flow(storage_connection: str, tmp_path: Path) -> None:
    """A real flow through a devhost with DEVHOST_SPANS_FILE set yields the whole breakdown."""
    target = tmp_path / "spans.jsonl"
    host = launch_host(storage_connection, tmp_path, extra_env={spans.ENV_VAR: str(target)})
    try:
        flows = asyncio.run(critical_path._flows(host.base_url, 2, 0, 0.002))
    finally:
        stop_host(host)
    recorded = spans.read(target)
    for flow in flows:
        steps = critical_path.steps_of(flow, recorded)
        assert steps is not None, recorded
        assert all(value >= 0 for value in steps.values()), steps
