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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import launcher, workloads
from bench.workloads import FlowMarks
from devhost import spans

Span = tuple[float, float, str, str]  # began, ended, kind, name (devhost.spans)

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
    return "\n".join(lines)


async def _flows(base: str, count: int, warmup: int, poll: float) -> list[FlowMarks]:
    async with workloads.new_session(4) as session:
        client = workloads.Client(session, base)
        for i in range(warmup):
            await workloads.reserve_ticket_flow(client, f"warmup-{i}", poll)
        return [await workloads.reserve_ticket_marks(client, f"user-{i}", poll) for i in range(count)]


def run(count: int, warmup: int, poll: float) -> tuple[list[FlowMarks], list[Span]]:
    azurite = launcher.start_azurite()
    try:
        work = Path(tempfile.mkdtemp(prefix="critical-path-"))
        spans_file = work / "spans.jsonl"
        with launcher.environment({spans.ENV_VAR: str(spans_file)}):
            host = launcher.start_devhost(azurite.connection_string, work, tag="cp")
        try:
            flows = asyncio.run(_flows(host.base_url, count, warmup, poll))
        finally:
            host.stop()  # a clean stop: devhost writes its spans as it exits
        return flows, spans.read(spans_file)
    finally:
        launcher.stop_azurite(azurite)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.critical_path", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=200, help="untimed flows first (W1 measures a warm Azurite)")
    parser.add_argument("--poll-ms", type=float, default=2.0, help="status read interval, as in W1 (2 ms)")
    parser.add_argument("--json", type=Path, help="also write the summary and each flow's times here")
    args = parser.parse_args()
    flows, recorded = run(args.flows, args.warmup, args.poll_ms / 1000)
    summary = summarize(flows, recorded)
    print(render(summary))
    if args.json:
        args.json.write_text(json.dumps({**summary, "flow_times": [asdict(f) for f in flows]}, indent=1))


if __name__ == "__main__":
    main()
