"""The critical-path breakdown: each step of W1's two latencies from devhost's spans and the client's clock."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import subprocess
import time
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


def path_of_one_flow(at: float = 100.0) -> tuple[FlowMarks, list[Span], list[critical_path.AzuriteRequest]]:
    """A flow with its four storage calls on start -> visible, and Azurite's view of each (handled in 0.5 ms)."""
    flow, recorded = synthetic_flow(at)
    recorded.append((at + 5.5 * MS, at + 7 * MS, "storage", "table insert hubInstances"))
    recorded.sort()
    requests = [(s[0] + 0.2 * MS, s[0] + 0.7 * MS, "POST", s[3]) for s in recorded if s[2] == "storage"]
    return flow, recorded, requests


def test_the_calls_on_the_path_are_found_in_the_providers_order() -> None:
    """ExecutionStarted put and Pending row after the API's start; TimerFired put and history batch in the commit."""
    flow, recorded, _ = path_of_one_flow()
    calls = critical_path.path_calls(flow, recorded)
    assert calls is not None
    began = [round((calls[name][0] - flow.start_sent) / MS, 6) for name in critical_path.PATH_CALLS]
    assert began == [4, 5.5, 10.5, 15]


def test_each_call_on_the_path_splits_into_azurites_handling_and_the_rest() -> None:
    """A 1 ms put Azurite handled in 0.5 ms has 0.5 ms of rest; a call Azurite has no record of is left out."""
    flow, recorded, requests = path_of_one_flow()
    rows = {row["call"]: row for row in critical_path.split_path_calls([flow], recorded, requests)}
    started = rows["ExecutionStarted put"]
    assert (started["whole_50_ms"], started["azurite_50_ms"], started["rest_50_ms"]) == pytest.approx((1, 0.5, 0.5))
    batch = rows["history batch"]
    assert (batch["whole_50_ms"], batch["azurite_50_ms"], batch["rest_50_ms"]) == pytest.approx((5, 0.5, 4.5))
    unseen = [r for r in requests if "insert" not in r[3]]
    rows = {row["call"]: row for row in critical_path.split_path_calls([flow], recorded, unseen)}
    assert rows["Pending row"]["flows"] == 0 and rows["TimerFired put"]["flows"] == 1
    assert "Azurite's handling" in critical_path.render({**critical_path.summarize([flow], recorded),
                                                         "path_calls": list(rows.values())})


def test_a_request_goes_to_the_call_it_was_answered_within() -> None:
    """Calls in flight together get their requests in the order sent; one with no answer inside it gets none."""
    put: Span = (1.0, 1.004, "storage", "queue put (control) q/messages")
    row: Span = (1.001, 1.010, "storage", "table insert t")
    cut: Span = (1.0002, 1.0010, "storage", "queue delete (control) q/messages/m")  # gave up before an answer
    served = [(1.0012, 1.0030, "POST", "q"), (1.0031, 1.0090, "PUT", "t")]
    assert critical_path.match_requests([row, cut, put], served) == {put: served[0], row: served[1]}


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_request_times_preload_notes_each_answer_on_the_monotonic_clock(tmp_path: Path) -> None:
    """A server with the preload answers one request; the file it writes on exit brackets it on Python's clock."""
    target = tmp_path / "requests.jsonl"
    script = ("const http = require('http');"
              "const server = http.createServer((req, res) => res.end('ok'));"
              "server.listen(0, '127.0.0.1', () => http.get(`http://127.0.0.1:${server.address().port}/x?y=1`,"
              " (res) => { res.resume(); res.on('end', () => server.close()); }));")
    before = time.monotonic()
    subprocess.run(["node", "--require", str(critical_path.REQUEST_TIMES_PRELOAD), "-e", script], check=True,
                   env={**os.environ, critical_path.REQUEST_TIMES_ENV: str(target)}, timeout=30)
    after = time.monotonic()
    [(began, answered, method, url)] = critical_path._read_requests(target)
    assert before <= began <= answered <= after
    assert (method, url) == ("GET", "/x?y=1")
