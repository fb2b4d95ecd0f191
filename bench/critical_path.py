"""Where the time of W1's two latencies goes, flow by flow: devhost's spans lined up with the client's clock.

``python -m bench.critical_path [--flows N] [--warmup W] [--poll-ms P] [--json FILE]``: one Azurite, one
devhost recording spans (``DEVHOST_SPANS_FILE``, see ``devhost.spans``), W untimed flows to warm Azurite,
then N ReserveTicket flows one at a time as W1 runs them (start through the app's route, status reads
every P ms until the discount shows, raise BookingConfirmed, reads until Completed). Each flow's client
timestamps and devhost's spans share one clock (``time.monotonic``), so every millisecond of the two
latencies lands in one step of the chain that produced it:

- start -> visible: the client's request reaching devhost, the app's starter reaching the durable API,
  the API handing ExecutionStarted to the first episode, the episodes (and the activity run ahead) up to
  the commit, the commit until its messages are stored (the TimerFired put), the history batch, the
  batch's end until the Instances merge is sent (status reads show the new state from then on), and
  the merge until a status read has shown it to the client;
- event -> Completed: the raise reaching devhost, the episode it starts, the episode until its commit,
  the commit until the batch is sent, the batch, the batch's end until the 202 is sent, and the 202
  until a status read has shown Completed to the client.

Each step is printed with its p50 and p90 over the flows and whose time it is (client, devhost or
Azurite: a storage call's span runs from devhost sending it to the whole reply, so it is mostly
Azurite's CPU on this machine). The p50s of the steps need not add up to the p50 of the whole. For the
tail, each step's mean is also printed over the middle flows (the 30th to the 70th percentile of that
latency) and over the slowest tenth: those means do add up, so the difference says which steps the
slow flows lose their time in.

Also printed, where Linux's schedstat can be read (``bench.core_waits``): each process's CPU per flow and the
time it was ready to run but waited for a core, over the timed flows, and the CPU steal over them (the share of
the cores the hypervisor gave to other machines). With ``--azurite-times``, Azurite runs with
a preload (``bench/azurite_request_times.js``) that notes when its handler got each request and when the answer
was written, and the four storage calls on start -> visible (ExecutionStarted put, Pending row, TimerFired put,
history batch) are each split into Azurite's handling and the rest: devhost sending the request and reading the
answer, and waiting for a core or for the calls ahead of it on Azurite's one thread.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import core_waits, launcher, workloads
from bench.workloads import FlowMarks
from devhost import spans

Span = tuple[float, float, str, str]  # began, ended, kind, name (devhost.spans)
AzuriteRequest = tuple[float, float, str, str]  # handler began, answer written, method, URL (azurite_request_times.js)

REQUEST_TIMES_PRELOAD = Path(__file__).with_name("azurite_request_times.js")
REQUEST_TIMES_ENV = "BENCH_AZURITE_TIMES_FILE"

CLIENT, DEVHOST, AZURITE = "client", "devhost", "Azurite"


@dataclass
class Step:
    name: str
    owner: str  # CLIENT, DEVHOST or AZURITE
    path: str  # "start -> visible" or "event -> Completed"


START, EVENT = "start -> visible", "event -> Completed"
STEPS = [
    Step("client request reaches devhost", CLIENT, START),
    Step("app route: starter and SDK client, to the durable API", DEVHOST, START),
    Step("durable API start, to the first episode", DEVHOST, START),
    Step("episodes and the activity run ahead, to the commit", DEVHOST, START),
    Step("commit until its messages are stored (TimerFired put)", AZURITE, START),
    Step("history batch (episodes 1-2, custom status)", AZURITE, START),
    Step("batch end to Instances merge sent", DEVHOST, START),
    Step("merge sent to a status read showing it", CLIENT, START),
    Step("client raise reaches devhost", CLIENT, EVENT),
    Step("raise handled, to the episode", DEVHOST, EVENT),
    Step("episode (orchestrator invocation), to the commit", DEVHOST, EVENT),
    Step("commit to batch sent", DEVHOST, EVENT),
    Step("history batch (the event, the completion)", AZURITE, EVENT),
    Step("batch end to the 202 sent", DEVHOST, EVENT),
    Step("202 to a status read showing Completed", CLIENT, EVENT),
]


def _first(items: Sequence[Span], after: float, test: Callable[[Span], bool]) -> Span | None:
    return next((s for s in items if s[0] >= after and test(s)), None)


def _is_request(fragment: str, method: str = "POST") -> Callable[[Span], bool]:
    return lambda s: s[2] == "request" and s[3].startswith(method + " ") and fragment in s[3]


def _is(kind: str, prefix: str = "") -> Callable[[Span], bool]:
    return lambda s: s[2] == kind and s[3].startswith(prefix)


def steps_of(flow: FlowMarks, all_spans: Sequence[Span]) -> dict[str, float] | None:
    """Milliseconds of each step of one flow, or None when its spans are incomplete (e.g. dropped)."""
    window = [s for s in all_spans if flow.start_sent - 0.001 <= s[0] <= flow.completed]
    slack = flow.start_sent - 0.001
    app = _first(window, slack, _is_request("/api/orchestrators/"))
    api = app and _first(window, app[0], _is_request("/durabletask/orchestrators/"))
    episode = api and _first(window, api[0], _is("episode"))
    commit = episode and _first(window, episode[0], _is("commit"))
    batch = commit and _first(window, commit[0], _is("storage", "table batch"))
    merge = batch and _first(window, batch[1], _is("storage", "table merge"))
    raised = _first(window, flow.visible - 0.001, _is_request("/raiseEvent/"))
    episode2 = raised and _first(window, raised[0], _is("episode"))
    commit2 = episode2 and _first(window, episode2[0], _is("commit"))
    batch2 = commit2 and _first(window, commit2[0], _is("storage", "table batch"))
    if not (app and api and episode and commit and batch and merge and raised and episode2 and commit2 and batch2):
        return None
    values = [
        app[0] - flow.start_sent, api[0] - app[0], episode[0] - api[0], commit[0] - episode[0],
        batch[0] - commit[0], batch[1] - batch[0], merge[0] - batch[1], flow.visible - merge[0],
        raised[0] - flow.visible, episode2[0] - raised[0], commit2[0] - episode2[0], batch2[0] - commit2[0],
        batch2[1] - batch2[0], raised[1] - batch2[1], flow.completed - raised[1],
    ]
    return {step.name: value * 1000 for step, value in zip(STEPS, values, strict=True)}


PATH_CALLS = ("ExecutionStarted put", "Pending row", "TimerFired put", "history batch")


def path_calls(flow: FlowMarks, all_spans: Sequence[Span]) -> dict[str, Span] | None:
    """The four storage calls on one flow's start -> visible, by name, or None when a span is missing."""
    window = [s for s in all_spans if flow.start_sent - 0.001 <= s[0] <= flow.visible]
    api = _first(window, flow.start_sent - 0.001, _is_request("/durabletask/orchestrators/"))
    started = api and _first(window, api[0], _is("storage", "queue put"))
    row = api and _first(window, api[0], _is("storage", "table insert"))
    commit = api and _first(window, api[0], _is("commit"))
    timer = commit and _first(window, commit[0], _is("storage", "queue put"))
    batch = commit and _first(window, commit[0], _is("storage", "table batch"))
    if not (started and row and timer and batch):
        return None
    return dict(zip(PATH_CALLS, (started, row, timer, batch), strict=True))


def match_requests(storage_spans: Sequence[Span], requests: Sequence[AzuriteRequest]) -> dict[Span, AzuriteRequest]:
    """Each storage call's request as Azurite saw it: the earliest one not yet taken whose handler began within the
    call and whose answer was written before the call ended (Azurite serves calls one at a time)."""
    ordered = sorted(requests)
    starts = [r[0] for r in ordered]
    taken: set[int] = set()
    found: dict[Span, AzuriteRequest] = {}
    for call in sorted(storage_spans):
        i = bisect.bisect_left(starts, call[0])
        while i < len(ordered) and ordered[i][0] <= call[1]:
            if i not in taken and ordered[i][1] <= call[1]:
                taken.add(i)
                found[call] = ordered[i]
                break
            i += 1
    return found


def split_path_calls(flows: Sequence[FlowMarks], all_spans: Sequence[Span],
                     requests: Sequence[AzuriteRequest]) -> list[dict[str, Any]]:
    """For each call on start -> visible: p50 and p90 of the whole call, of Azurite's handling and of the rest."""
    matched = match_requests([s for s in all_spans if s[2] == "storage"], requests)
    parts: dict[str, dict[str, list[float]]] = {name: {"whole": [], "azurite": [], "rest": []} for name in PATH_CALLS}
    for flow in flows:
        calls = path_calls(flow, all_spans)
        for name, call in (calls or {}).items():
            request = matched.get(call)
            if request is None:
                continue
            whole, handling = (call[1] - call[0]) * 1000, (request[1] - request[0]) * 1000
            parts[name]["whole"].append(whole)
            parts[name]["azurite"].append(handling)
            parts[name]["rest"].append(whole - handling)
    return [{"call": name, "flows": len(values["whole"]),
             **{f"{part}_{q}_ms": _pct(values[part], q) for part in ("whole", "azurite", "rest") for q in (50, 90)}}
            for name, values in parts.items()]


def summarize(flows: Sequence[FlowMarks], all_spans: Sequence[Span]) -> dict[str, Any]:
    """p50/p90 of each step and of both latencies over the flows whose spans are complete."""
    rows = [r for r in (steps_of(f, all_spans) for f in flows) if r is not None]
    totals = {START: [(f.visible - f.start_sent) * 1000 for f in flows],
              EVENT: [(f.completed - f.visible) * 1000 for f in flows]}
    out: dict[str, Any] = {"flows": len(flows), "flows_with_spans": len(rows), "steps": [], "totals": {}}
    middle, slowest = {}, {}
    for path in (START, EVENT):
        path_steps = [step.name for step in STEPS if step.path == path]
        ordered = sorted(rows, key=lambda r: sum(r[name] for name in path_steps))
        middle[path] = ordered[int(len(ordered) * 0.3):int(len(ordered) * 0.7)]
        slowest[path] = ordered[int(len(ordered) * 0.9):]
    for step in STEPS:
        values = [r[step.name] for r in rows]
        out["steps"].append({"step": step.name, "path": step.path, "owner": step.owner,
                             "p50_ms": _pct(values, 50), "p90_ms": _pct(values, 90),
                             "middle_mean_ms": _mean([r[step.name] for r in middle[step.path]]),
                             "slowest_tenth_mean_ms": _mean([r[step.name] for r in slowest[step.path]])})
    for path, values in totals.items():
        owners = {owner: sum(s["p50_ms"] for s in out["steps"] if s["path"] == path and s["owner"] == owner)
                  for owner in (CLIENT, DEVHOST, AZURITE)}
        out["totals"][path] = {"p50_ms": _pct(values, 50), "p90_ms": _pct(values, 90), "p50_by_owner": owners}
    return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _pct(values: Sequence[float], pct: int) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def render(summary: dict[str, Any]) -> str:
    lines = [f"{summary['flows']} flows one at a time ({summary['flows_with_spans']} with complete spans)"]
    for path in (START, EVENT):
        total = summary["totals"][path]
        lines.append("")
        lines.append(f"{path}: p50 {total['p50_ms']:.1f} ms, p90 {total['p90_ms']:.1f} ms")
        lines.append(f"  {'step':<58} {'whose':<8} {'p50 ms':>7} {'p90 ms':>7} {'middle':>7} {'slowest':>7}")
        for step in summary["steps"]:
            if step["path"] == path:
                lines.append(f"  {step['step']:<58} {step['owner']:<8} {step['p50_ms']:7.2f} {step['p90_ms']:7.2f}"
                             f" {step['middle_mean_ms']:7.2f} {step['slowest_tenth_mean_ms']:7.2f}")
        owners = ", ".join(f"{owner} {ms:.1f}" for owner, ms in total["p50_by_owner"].items())
        lines.append(f"  sum of the step p50s by whose time it is (ms): {owners}")
        lines.append("  middle, slowest: each step's mean over the flows from the 30th to the 70th percentile of"
                     " this latency, and over its slowest tenth")
    if summary.get("core_waits"):
        lines.append("")
        lines.append("per flow, by process, over the timed flows (Linux schedstat): CPU, and time ready to run but"
                     " waiting for a core")
        for name, times in summary["core_waits"].items():
            lines.append(f"  {name:<8} CPU {times['run_ms']:6.2f} ms   waiting for a core {times['wait_ms']:6.2f} ms")
    if summary.get("steal_pct") is not None:
        lines.append(f"CPU steal over the timed flows (the hypervisor's share of these cores): "
                     f"{summary['steal_pct']} %")
    if summary.get("path_calls"):
        lines.append("")
        lines.append("storage calls on start -> visible: the whole call, Azurite's handling (its handler's start to"
                     " its answer written), and the rest")
        lines.append("(devhost sending and reading, waits for a core, and for calls ahead on Azurite's thread)")
        lines.append(f"  {'call':<22} {'whole p50':>9} {'p90':>6} {'Azurite p50':>11} {'p90':>6} {'rest p50':>8}"
                     f" {'p90':>6}")
        for row in summary["path_calls"]:
            lines.append(f"  {row['call']:<22} {row['whole_50_ms']:9.2f} {row['whole_90_ms']:6.2f}"
                         f" {row['azurite_50_ms']:11.2f} {row['azurite_90_ms']:6.2f} {row['rest_50_ms']:8.2f}"
                         f" {row['rest_90_ms']:6.2f}")
    return "\n".join(lines)


async def _flows(base: str, count: int, warmup: int, poll: float,
                 warmed: Callable[[], None] | None = None) -> list[FlowMarks]:
    async with workloads.new_session(4) as session:
        client = workloads.Client(session, base)
        for i in range(warmup):
            await workloads.reserve_ticket_flow(client, f"warmup-{i}", poll)
        if warmed is not None:
            warmed()
        return [await workloads.reserve_ticket_marks(client, f"user-{i}", poll) for i in range(count)]


@dataclass
class Recording:
    """What one run recorded: the client's marks, devhost's spans and what the optional measurements saw."""

    flows: list[FlowMarks]
    spans: list[Span]
    azurite_requests: list[AzuriteRequest] = field(default_factory=list)
    core_waits: dict[str, dict[str, float]] = field(default_factory=dict)
    steal_pct: float | None = None  # the hypervisor's share of the machine's CPU time over the timed flows


def _read_requests(path: Path) -> list[AzuriteRequest]:
    if not path.is_file():
        return []
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return [(float(r[0]), float(r[1]), str(r[2]), str(r[3])) for r in rows]


def run(count: int, warmup: int, poll: float, *, azurite_times: bool = False) -> Recording:
    work = Path(tempfile.mkdtemp(prefix="critical-path-"))
    requests_file = work / "azurite-requests.jsonl"
    azurite_env = {}
    if azurite_times:
        preload = f"--require {json.dumps(str(REQUEST_TIMES_PRELOAD))}"
        azurite_env = {"NODE_OPTIONS": f"{os.environ.get('NODE_OPTIONS', '')} {preload}".strip(),
                       REQUEST_TIMES_ENV: str(requests_file)}
    with launcher.environment(azurite_env):
        azurite = launcher.start_azurite()
    try:
        spans_file = work / "spans.jsonl"
        with launcher.environment({spans.ENV_VAR: str(spans_file)}):
            host = launcher.start_devhost(azurite.connection_string, work, tag="cp")
        pids = {"devhost": host.process.pid, "Azurite": azurite.process.pid, "client": os.getpid()}
        before: dict[str, core_waits.Times] = {}
        ticks: list[list[int] | None] = []

        def warmed() -> None:
            before.update(core_waits.snapshot(pids))
            ticks.append(core_waits.machine_times())

        try:
            flows = asyncio.run(_flows(host.base_url, count, warmup, poll, warmed=warmed))
            waits = core_waits.per_unit_ms(before, core_waits.snapshot(pids), len(flows))
            steal = core_waits.steal_since(ticks[0] if ticks else None)
        finally:
            host.stop()  # a clean stop: devhost writes its spans as it exits
    finally:
        launcher.stop_azurite(azurite)  # Azurite writes the request times as it exits
    return Recording(flows, spans.read(spans_file), _read_requests(requests_file), waits, steal)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.critical_path", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=200, help="untimed flows first (W1 measures a warm Azurite)")
    parser.add_argument("--poll-ms", type=float, default=2.0, help="status read interval, as in W1 (2 ms)")
    parser.add_argument("--azurite-times", action="store_true",
                        help="split the storage calls on start -> visible into Azurite's handling and the rest")
    parser.add_argument("--json", type=Path, help="also write the summary and each flow's times here")
    args = parser.parse_args()
    recording = run(args.flows, args.warmup, args.poll_ms / 1000, azurite_times=args.azurite_times)
    summary = summarize(recording.flows, recording.spans)
    summary["core_waits"] = recording.core_waits
    summary["steal_pct"] = recording.steal_pct
    if args.azurite_times:
        summary["path_calls"] = split_path_calls(recording.flows, recording.spans, recording.azurite_requests)
    print(render(summary))
    if args.json:
        args.json.write_text(json.dumps({**summary, "flow_times": [asdict(f) for f in recording.flows]}, indent=1))


if __name__ == "__main__":
    main()
