"""Turn a results dict into goals, ratios, a terminal table and docs/benchmarks.md."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench import stats

# (key, label, unit, goal, "min" = at least / "max" = at most, where the value lives)
# devhost's CPU per W1 flow at 32 clients before the critical-path work (the run that set the goal).
CPU_PER_FLOW_BEFORE_MS = 26.8
GOALS: list[dict[str, Any]] = [
    {"key": "w1_status_p50", "label": "W1 one at a time: start -> status visible, p50", "unit": "ms",
     "goal": 15.0, "kind": "max"},
    {"key": "w1_event_p50", "label": "W1 one at a time: event raised -> Completed, p50", "unit": "ms",
     "goal": 8.0, "kind": "max"},
    {"key": "w1_throughput_vs_dbos", "label": "W1 32 clients, 2 ms polls: throughput vs DBOS", "unit": "x",
     "goal": 1.3, "kind": "min"},
    {"key": "w1_relaxed_vs_dbos", "label": "W1 32 clients, 50 ms polls: throughput vs DBOS", "unit": "x",
     "goal": 1.5, "kind": "min"},
    {"key": "w1_cpu_per_flow", "label": "devhost CPU per W1 flow, 32 clients (half of "
     f"{CPU_PER_FLOW_BEFORE_MS:g} ms)", "unit": "ms", "goal": CPU_PER_FLOW_BEFORE_MS / 2, "kind": "max"},
    {"key": "w1_storage_calls", "label": "Azurite calls per W1 flow, one at a time (by kind below)",
     "unit": "calls", "goal": None, "kind": "max"},
    {"key": "w4_wait_after_last_start", "label": "W4: 1,000 instances waiting, s after the last start",
     "unit": "s", "goal": 15.0, "kind": "max"},
    {"key": "w2_chain10", "label": "W2 10-step chain activities/s", "unit": "/s", "goal": 100.0, "kind": "min"},
    {"key": "w2_sequential", "label": "W2 100-step chain activities/s (reference)", "unit": "/s", "goal": 50.0,
     "kind": "min", "provider": 5.0},
    {"key": "w2_fan_out", "label": "W2 fanned-out activities/s", "unit": "/s", "goal": 200.0, "kind": "min",
     "provider": 100.0},
    {"key": "w2_fan_in", "label": "W2 fan-in responses/s", "unit": "/s", "goal": None, "kind": "min",
     "provider": 150.0},
    {"key": "w2_events", "label": "W2 external events/s", "unit": "/s", "goal": 200.0, "kind": "min",
     "provider": 50.0},
    {"key": "w3_reads", "label": "W3 status reads/s (16 clients)", "unit": "/s", "goal": 500.0, "kind": "min"},
    {"key": "w4_rss", "label": "W4 RSS with 1,000 waiting", "unit": "MiB", "goal": 300.0, "kind": "max"},
    {"key": "ready", "label": "devhost ready (spawn -> Running), median start", "unit": "s", "goal": 3.0,
     "kind": "max"},
]


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b not in (None, 0) else None


def compute_ratios(results: dict[str, Any]) -> dict[str, Any]:
    dev = _get(results, "devhost", "w1") or {}
    out: dict[str, Any] = {}
    for peer in ("dbos", "durabletask"):
        other = _get(results, "peers", peer) or {}
        if not other or "error" in other:
            continue
        entry: dict[str, Any] = {}
        for phase in ("serial", "concurrent"):
            a, b = dev.get(phase) or {}, other.get(phase) or {}
            entry[phase] = {
                # > 1: devhost is faster
                "throughput": ratio(a.get("orchestrations_per_s"), b.get("orchestrations_per_s")),
                # > 1: devhost is slower
                "start_to_status_p50": ratio(_get(a, "start_to_status", "p50_ms"),
                                             _get(b, "start_to_status", "p50_ms")),
                "event_to_completed_p50": ratio(_get(a, "event_to_completed", "p50_ms"),
                                                _get(b, "event_to_completed", "p50_ms")),
            }
        out[f"devhost/{peer}"] = entry
    return out


def goal_values(results: dict[str, Any]) -> dict[str, float | None]:
    dev = results.get("devhost") or {}
    ready = dev.get("ready_s") or []
    rss = _get(dev, "w4", "rss_waiting_mib")
    w4_full = _get(dev, "w4", "instances") == 1000 and _get(dev, "w4", "all_waiting")
    w4_after_last = _get(dev, "w4", "waiting_after_last_start_s")
    return {
        "w1_throughput_vs_dbos": _get(results, "ratios", "devhost/dbos", "concurrent", "throughput"),
        "w1_relaxed_vs_dbos": ratio(_get(dev, "w1", "concurrent_relaxed", "orchestrations_per_s"),
                                    _get(results, "peers", "dbos", "concurrent", "orchestrations_per_s")),
        "w1_cpu_per_flow": cpu_ms_per_unit(results, "w1c", _get(dev, "w1", "concurrent", "instances")),
        "w1_storage_calls": calls_per_flow_total(results, "w1s"),
        "w4_wait_after_last_start": w4_after_last if w4_full else None,
        "w2_chain10": _get(dev, "w2", "chains", "activities_per_s"),
        "w1_event_p50": _get(dev, "w1", "serial", "event_to_completed", "p50_ms"),
        "w1_status_p50": _get(dev, "w1", "serial", "start_to_status", "p50_ms"),
        "w2_sequential": _get(dev, "w2", "sequence", "activities_per_s"),
        "w2_fan_out": _get(dev, "w2", "fan_out", "fan_out_activities_per_s"),
        "w2_fan_in": _get(dev, "w2", "fan_out", "fan_in_responses_per_s"),
        "w2_events": _get(dev, "w2", "events", "events_per_s"),
        "w3_reads": _get(dev, "w3", "reads_per_s"),
        "w4_rss": rss if w4_full else None,
        "ready": statistics.median(ready) if ready else None,
    }


def evaluate_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    values = goal_values(results)
    evaluated = []
    for goal in GOALS:
        value = values.get(goal["key"])
        row: dict[str, Any] = {**goal, "value": value}
        target = goal["goal"]
        w4_size = _get(results, "devhost", "w4", "instances")
        if goal["key"].startswith("w4_") and w4_size is not None and w4_size != 1000:
            row["met"] = None
            row["verdict"] = f"not measured (this run started {w4_size} instances, the goal is about 1,000)"
        elif goal["key"] == "w4_rss" and value is None and _get(results, "devhost", "w4", "waiting") is not None:
            w4 = results["devhost"]["w4"]
            row["met"] = False
            row["verdict"] = (f"NOT REACHED: only {w4['waiting']} of {w4['instances']} instances were waiting "
                              f"within the time cap (RSS then {w4['rss_waiting_mib']} MiB)")
        elif goal["key"] == "w4_wait_after_last_start" and value is None and _get(results, "devhost", "w4",
                                                                                      "all_waiting") is False:
            w4 = results["devhost"]["w4"]
            row["met"] = False
            row["verdict"] = f"NOT REACHED: only {w4['waiting']} of {w4['instances']} were waiting within the cap"
        elif value is None or target is None:
            row["met"] = None
            row["verdict"] = "not measured" if value is None else "reported only"
        elif goal["kind"] == "min":
            row["met"] = value >= target
            row["verdict"] = (f"met ({value / target:.2f}x the goal)" if row["met"]
                              else f"MISSED: {value / target:.2f}x the goal, needs {target / value:.1f}x more"
                              if value > 0 else "MISSED: nothing measured")
        else:
            row["met"] = value <= target
            row["verdict"] = (f"met ({value / target:.2f} of the limit)" if row["met"]
                              else f"MISSED: {value / target:.1f}x the limit, needs to drop by "
                                   f"{value - target:.1f} {goal['unit']}")
        if goal.get("aim") and value is not None:
            row["verdict"] += f"; aim {goal['aim']}x {'met' if value >= goal['aim'] else 'not met'}"
        if goal.get("provider") is not None and value is not None:
            row["vs_provider"] = round(value / goal["provider"], 2)
        evaluated.append(row)
    return evaluated


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def w1_rows(results: dict[str, Any]) -> list[list[str]]:
    systems = [("devhost", _get(results, "devhost", "w1")), ("DBOS", _get(results, "peers", "dbos")),
               ("durabletask", _get(results, "peers", "durabletask"))]
    rows = []
    for phase, title in (("serial", "one at a time"), ("concurrent", "32 clients")):
        metrics = [
            ("orchestrations/s", ("orchestrations_per_s",)),
            ("start -> status visible p50 ms", ("start_to_status", "p50_ms")),
            ("start -> status visible p95 ms", ("start_to_status", "p95_ms")),
            ("event raised -> Completed p50 ms", ("event_to_completed", "p50_ms")),
            ("event raised -> Completed p95 ms", ("event_to_completed", "p95_ms")),
        ]
        for label, path in metrics:
            row = [f"W1 {title}: {label}"]
            for _, data in systems:
                row.append(_fmt(_get(data or {}, phase, *path)))
            dev = _get(systems[0][1] or {}, phase, *path)
            for _, data in systems[1:]:
                other = _get(data or {}, phase, *path)
                row.append(_fmt(ratio(dev, other), 2))
            rows.append(row)
    relaxed = _get(systems[0][1] or {}, "concurrent_relaxed")
    if relaxed:
        poll = relaxed.get("poll_interval_ms")
        for label, path in (("orchestrations/s", ("orchestrations_per_s",)),
                            ("start -> status visible p50 ms", ("start_to_status", "p50_ms")),
                            ("event raised -> Completed p50 ms", ("event_to_completed", "p50_ms"))):
            dev = _get(relaxed, *path)
            row = [f"W1 32 clients, devhost polled every {poll:g} ms: {label}", _fmt(dev)]
            row += [_fmt(_get(data or {}, "concurrent", *path)) for _, data in systems[1:]]
            row += [_fmt(ratio(dev, _get(data or {}, "concurrent", *path)), 2) for _, data in systems[1:]]
            rows.append(row)
    return rows


CERTAINTY_HEADERS = ["one at a time", "devhost", "DBOS", "devhost lower than DBOS", "durabletask",
                     "devhost lower than durabletask"]
CERTAINTY_METRICS = (("start -> status visible", "start_to_status"),
                     ("event raised -> Completed", "event_to_completed"))


def certainty_rows(results: dict[str, Any]) -> list[list[str]]:
    """One-at-a-time W1 percentiles with their 95 % bootstrap ranges, and in how many resamples devhost's was
    the lower against each peer (``stats.bootstrap_percentile``, each system's flows resampled once, with a seed
    of its own); empty without devhost's samples."""
    systems = [_get(results, *path, "serial", "samples_ms") or {}
               for path in (("devhost", "w1"), ("peers", "dbos"), ("peers", "durabletask"))]

    def cell(found: stats.Bootstrapped) -> str:
        return f"{found.value:.1f} ({found.low:.1f}-{found.high:.1f})"

    rows = []
    for label, key in CERTAINTY_METRICS:
        for q in (50, 95):
            mine, *peers = (stats.bootstrap_percentile(samples.get(key) or [], q, seed=seed)
                            for seed, samples in enumerate(systems))
            if mine is None:
                continue
            row = [f"{label} p{q} ms", cell(mine)]
            for peer in peers:
                row += ["-", "-"] if peer is None else [cell(peer), f"{stats.lower_share(mine, peer) * 100:.0f} %"]
            rows.append(row)
    return rows


def other_rows(results: dict[str, Any]) -> list[list[str]]:
    dev = results.get("devhost") or {}
    rows = [
        ["W2 10-step chains activities/s (chains one after another)", _fmt(_get(dev, "w2", "chains",
                                                                              "activities_per_s"))],
        ["W2 10-step chain start -> Completed p50 / p95 ms",
         " / ".join(_fmt(_get(dev, "w2", "chains", "chain", k)) for k in ("p50_ms", "p95_ms"))],
        ["W2 100-step chain activities/s (reference)", _fmt(_get(dev, "w2", "sequence", "activities_per_s"))],
        ["W2 fan-out activities/s (start -> Completed)", _fmt(_get(dev, "w2", "fan_out", "fan_out_activities_per_s"))],
        ["W2 fan-in responses/s (first result -> Completed)",
         _fmt(_get(dev, "w2", "fan_out", "fan_in_responses_per_s"))],
        ["W2 external events/s (first raise -> Completed)", _fmt(_get(dev, "w2", "events", "events_per_s"))],
        ["W3 status reads/s", _fmt(_get(dev, "w3", "reads_per_s"))],
        ["W3 read latency p50 / p95 ms", f"{_fmt(_get(dev, 'w3', 'latency', 'p50_ms'))} / "
                                        f"{_fmt(_get(dev, 'w3', 'latency', 'p95_ms'))}"],
        ["W4 RSS idle / waiting / peak MiB", " / ".join(_fmt(_get(dev, "w4", k)) for k in
                                                       ("rss_idle_mib", "rss_waiting_mib", "rss_peak_mib"))],
        ["W4 starts/s", _fmt(_get(dev, "w4", "starts_per_s"))],
        ["W4 instances waiting, after s (from first start)",
         f"{_fmt(_get(dev, 'w4', 'waiting'))}/{_fmt(_get(dev, 'w4', 'instances'))}, "
         f"{_fmt(_get(dev, 'w4', 'waiting_after_s'))}"],
        ["W4 all waiting, s after the last start", _fmt(_get(dev, "w4", "waiting_after_last_start_s"))],
        ["W4 confirmed (raises/s), completed", f"{_fmt(_get(dev, 'w4', 'confirmed'))} "
                                               f"({_fmt(_get(dev, 'w4', 'raises_per_s'))}/s), "
                                               f"{_fmt(_get(dev, 'w4', 'completed'))}"],
        ["W4 drain s (first confirmation -> all confirmed Completed)", _fmt(_get(dev, "w4", "drain_s"))],
        ["user code apart from the host: async hand-off / whole HTTP invocation us",
         f"{_fmt(_get(dev, 'user_code', 'handoff_cost_us'))} / {_fmt(_get(dev, 'user_code', 'http_invocation_us'))}"],
        ["devhost ready s (each start)", ", ".join(_fmt(v, 2) for v in dev.get("ready_s") or [])],
    ]
    return rows


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths,
                                                                                            strict=True))), line]
    for row in rows:
        out.append("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return "\n".join(out)


def steal_lines(results: dict[str, Any]) -> list[str]:
    """The run's CPU steal, overall and by workload, where the machine reports it (Linux's /proc/stat)."""
    overall = results["meta"].get("steal_pct")
    if overall is None:
        return []
    parts = ", ".join(f"{name} {pct} %" for name, pct in (results.get("steal_pct") or {}).items())
    return [f"- CPU steal (time the hypervisor gave these cores to other machines while they had work): {overall} %"
            + (f" of the run ({parts})" if parts else " of the run")
            + "; on these virtual machines it rises in the slow phases, which every system's figures then share"]


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if i == 0 else "---:"
                                                        for i in range(len(headers))) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


W1_HEADERS = ["metric", "devhost", "DBOS", "durabletask", "devhost/DBOS", "devhost/durabletask"]


def goal_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for goal in results.get("goals") or []:
        provider = f"{goal['provider']:g}/s ({_fmt(goal.get('vs_provider'), 2)}x)" if goal.get("provider") else ""
        target = "-" if goal["goal"] is None else f"{'>=' if goal['kind'] == 'min' else '<='} {goal['goal']:g} " \
                                                   f"{goal['unit']}"
        rows.append([goal["label"], _fmt(goal["value"], 2 if goal["unit"] in ("x", "s") else 1), target,
                     goal["verdict"], provider])
    return rows


GOAL_HEADERS = ["goal", "measured", "target", "verdict", "provider's published target"]


def cpu_rows(results: dict[str, Any]) -> list[list[str]]:
    """CPU milliseconds per unit of work for devhost and Azurite (from the per-workload CPU figures)."""
    cpu = results.get("cpu") or {}
    dev = results.get("devhost") or {}
    units = [("w1s", "W1 one at a time, per flow", _get(dev, "w1", "serial", "instances")),
             ("w1c", "W1 32 clients, per flow", _get(dev, "w1", "concurrent", "instances")),
             ("w1r", "W1 32 clients, relaxed polling, per flow", _get(dev, "w1", "concurrent_relaxed", "instances")),
             ("w3", "W3, per status read", _get(dev, "w3", "reads"))]
    rows = []
    for tag, label, count in units:
        c = cpu.get(tag)
        if not c or not count:
            continue
        rows.append([label] + [_fmt(cpu_ms(c, who, count)) for who in ("devhost", "azurite", "bench_client")])
    return rows


def cpu_ms(c: dict[str, Any], who: str, count: int) -> float:
    """CPU ms of one process per unit of work: exact CPU seconds when recorded, else cores x wall."""
    seconds = c.get(f"{who}_cpu_s")
    if seconds is None:
        seconds = c[f"{who}_cores"] * c["wall_s"]
    return float(seconds) * 1000 / count


def cpu_ms_per_unit(results: dict[str, Any], tag: str, count: int | None, who: str = "devhost") -> float | None:
    c = (results.get("cpu") or {}).get(tag)
    if not c or not count:
        return None
    return round(cpu_ms(c, who, count), 2)


W1_CALL_PHASES = (("w1s", "serial", "one at a time"), ("w1c", "concurrent", "32 clients"),
                  ("w1r", "concurrent_relaxed", "32 clients, 50 ms polls"))


def calls_per_flow(results: dict[str, Any], tag: str) -> dict[str, float] | None:
    """Storage calls per W1 flow by kind (the workload's calls after start-up, over the flows done)."""
    phase = next((p for t, p, _ in W1_CALL_PHASES if t == tag), None)
    count = _get(results, "devhost", "w1", phase, "instances") if phase else None
    calls = _get(results, "storage_calls", tag, "workload")
    if not calls or not count:
        return None
    return {kind: round(n / count, 2) for kind, n in calls.items()}


def calls_per_flow_total(results: dict[str, Any], tag: str) -> float | None:
    per_kind = calls_per_flow(results, tag)
    return round(sum(per_kind.values()), 2) if per_kind else None


def storage_call_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Calls per flow by kind, one column per W1 phase that was counted."""
    columns = [(tag, label, calls_per_flow(results, tag)) for tag, _, label in W1_CALL_PHASES]
    columns = [c for c in columns if c[2]]
    kinds = sorted({kind for _, _, per_kind in columns for kind in per_kind or {}})
    rows = [[kind] + [_fmt((per_kind or {}).get(kind, 0.0), 2) for _, _, per_kind in columns] for kind in kinds]
    if rows:
        rows.append(["**all calls**"] + [f"**{sum((per_kind or {}).values()):.2f}**" for _, _, per_kind in columns])
    return ["storage calls per W1 flow", *(label for _, label, _ in columns)], rows


CPU_HEADERS = ["CPU ms per unit of work", "devhost", "Azurite", "bench client"]


def terminal_report(results: dict[str, Any]) -> str:
    certain = certainty_rows(results)
    parts = ["", text_table(W1_HEADERS, w1_rows(results)), "",
             text_table(CERTAINTY_HEADERS, certain) if certain else "", "",
             text_table(["metric", "devhost"], other_rows(results)), "",
             text_table(CPU_HEADERS, cpu_rows(results)) if cpu_rows(results) else "", "",
             text_table(GOAL_HEADERS, goal_rows(results))]
    for name, message in (results.get("errors") or {}).items():
        parts.append(f"ERROR in {name}: {message}")
    return "\n".join(parts) + "\n"


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    cfg = results["config"]
    dev = results.get("devhost") or {}
    w1s = _get(dev, "w1", "serial") or {}
    w1c = _get(dev, "w1", "concurrent") or {}
    peers = results.get("peers") or {}
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench` (`make bench`) from `bench/results/latest.json`; do not edit by hand.",
        "How to profile devhost: `bench/profile.md`.",
        "",
        "## The run",
        "",
        f"- Date (UTC): {meta['date']}; git commit `{meta['git_commit']}`"
        + (" (the work tree had uncommitted changes)" if meta.get("git_dirty") else ""),
        f"- Command: `{meta['command']}` ({meta['mode']} mode, {meta['duration_s']:.0f} s)",
        f"- Machine: {meta['cpu_count']} CPUs ({meta.get('cpu_model') or 'unknown model'}), "
        f"{meta.get('memory_gib', '?')} GiB RAM, {meta['platform']}",
        f"- Load average (1 min) before / after: {meta.get('loadavg_before')} / {meta.get('loadavg_after')}"
        " (anything well above 0 means other processes shared the 2 cores: figures are then pessimistic)",
        *steal_lines(results),
        f"- Python {meta['python']}; {', '.join(f'{k} {v}' for k, v in meta.get('versions', {}).items())}",
        "",
        "Everything runs on this one machine: Azurite (one Node process in its disk mode, `--location` in a temporary"
        " folder, on tmpfs (`/dev/shm`) where there is one, free ports), devhost (`python -m devhost start`, a fresh"
        " task hub for each workload), the bench client (aiohttp, its own process) and the peers (each in its own"
        " process). devhost is driven over HTTP only: the app's `POST /api/orchestrators/ReserveTicket` to start,"
        " the built-in `/runtime/webhooks/durabletask/instances/{id}` to read status and raise events.",
        "",
        "## W1: the ReserveTicket flow, devhost vs DBOS vs durabletask",
        "",
        f"{cfg['w1_instances']} flows one at a time, then {cfg['w1_instances']} with {cfg['concurrency']} concurrent"
        " clients."
        + (f" The systems take turns in the same minutes of the machine, whose speed drifts by up to half within"
           f" minutes: one at a time in {cfg['w1_rounds']} rounds (devhost's {cfg['w1_instances'] // cfg['w1_rounds']}"
           " flows, then each peer's), with 32 clients each system's whole phase right after the other's; a system"
           " whose turn it is not is stopped (SIGSTOP), idle polls and all."
           if cfg.get("w1_rounds", 1) > 1 and peers else "")
        + " \"start -> status visible\": from sending the start until a status read shows the discount;"
        " \"event raised -> Completed\": from sending `BookingConfirmed` until a read shows Completed."
        " Ratios: devhost divided by the peer (throughput above 1 = devhost faster; latency above 1 ="
        " devhost slower).",
        *([f"Before the timed flows, {cfg['w1_warmup']} untimed flows ({cfg.get('warmup_concurrency', 8)} clients)"
           " run on a devhost of their own, so that Azurite is measured warm (a fresh Azurite spends up to twice"
           " the CPU per call on its first few thousand calls, until V8 has compiled its hot paths); each peer"
           " runs as many untimed flows before its first phase."] if cfg.get("w1_warmup") else []),
        "",
        md_table(W1_HEADERS, w1_rows(results)),
        "",
        f"Polling: the devhost client reads the status every {cfg['poll_ms']:g} ms, and so does the durabletask"
        " client, for the custom status and then for completion (its backend's server-side wait,"
        " `wait_for_orchestration_completion`, holds one of the backend's 10 gRPC threads per waiting flow and"
        " stalls it with 32 clients on a slow machine); DBOS's client blocks in `get_event` and"
        " `get_result`, which poll its SQLite database every 10 ms. Polling loads the host: devhost answered"
        f" {_fmt(w1s.get('http_requests_per_s'))} HTTP requests/s one at a time"
        f" ({_fmt(w1s.get('polls_per_flow'))} status reads per flow) and"
        f" {_fmt(w1c.get('http_requests_per_s'))}/s with {cfg['concurrency']} clients"
        f" ({_fmt(w1c.get('polls_per_flow'))} reads per flow). The last rows repeat the 32-client phase on a"
        f" fresh devhost with the client polling every {cfg.get('relaxed_poll_ms', 50):g} ms, so that less of"
        " devhost's work is answering status reads (the peers' columns there are their 32-client figures).",
        "",
    ]
    certain = certainty_rows(results)
    if certain:
        lines += ["How sure the one-at-a-time latencies are: each percentile with the range its value took in 95 % of"
                  " 2,000 resamples of the system's flows (drawn with replacement, each system's on their own), and"
                  " the share of resamples in which devhost's was the lower. Near 100 % devhost is ahead beyond"
                  " this run's chance, near 50 % the two are level, near 0 % the peer is ahead. The ranges are"
                  " those of one run: from run to run the machine's phase moves every figure further.", "",
                  md_table(CERTAINTY_HEADERS, certain), ""]
    latency_rows = []
    w1r = _get(dev, "w1", "concurrent_relaxed") or {}
    for phase, data in (("one at a time", w1s), (f"{cfg['concurrency']} clients", w1c),
                        (f"{cfg['concurrency']} clients, {cfg.get('relaxed_poll_ms', 50):g} ms polls", w1r)):
        for kind, summary in (data.get("request_latency") or {}).items():
            latency_rows.append([f"{phase}: {kind}", _fmt(summary.get("n")), _fmt(summary.get("p50_ms")),
                                 _fmt(summary.get("p95_ms")), _fmt(summary.get("p99_ms"))])
    if latency_rows:
        lines += ["Each HTTP request devhost answered during W1, as the client timed it:", "",
                  md_table(["phase: request", "n", "p50 ms", "p95 ms", "p99 ms"], latency_rows), ""]
    if w1s.get("capped") or w1c.get("capped"):
        lines += [f"A phase marked capped stopped starting flows after {cfg['w1_time_cap_s']:g} s; its figures cover"
                  f" the flows it finished (one at a time: {w1s.get('instances')}, {cfg['concurrency']} clients:"
                  f" {w1c.get('instances')}).", ""]
    lines += chart_lines(results, ("w1-throughput", "W1 throughput per system"),
                         ("w1-latency", "W1 latency distributions per system"))
    for key, peer in peers.items():
        if "error" in peer:
            lines.append(f"- {key}: failed: {peer['error']}")
        else:
            lines.append(f"- {peer['name']} {peer['version']}: {peer['setup']}.")
    lines += [
        "",
        "## W2-W4 and start-up (devhost)",
        "",
        md_table(["metric", "devhost"], other_rows(results)),
        "",
        f"W2 runs on the bench-only app `bench/app/` on its own devhost: `Sequence100` ({cfg['w2_sequence']}"
        f" activities in a row), `FanOutFanIn` ({cfg['w2_fan_out']} activities at once; each returns when it ran,"
        f" so fan-in is measured from the first result until Completed), `EventSink` ({cfg['w2_events']}"
        " `Ping` events raised by 8 concurrent senders, measured from the first raise until Completed)."
        f" W3: {cfg['w3_clients']} clients each reading the status of its own waiting instance for"
        f" {cfg['w3_seconds']:g} s. W4: {cfg['w4_instances']} ReserveTicket instances started by"
        f" {cfg['concurrency']} clients and left waiting for their event (RSS read from /proc/<pid>/status of the"
        " devhost process), then all confirmed; drain = first confirmation until a listing shows all Completed."
        f" W4 watches the instances by listing them every {_get(dev, 'w4', 'list_interval_s') or 3:g} s (a listing"
        " of 1,000 rows is a table scan in Azurite, so it looks rarely); each W4 stage stops after"
        f" {cfg.get('w4_time_cap_s', cfg['time_cap_s']):g} s and reports how far it got.",
        "",
        "CPU used during each workload, in cores (CPU seconds per wall second; the machine has "
        f"{meta['cpu_count']}): "
        + "; ".join(f"{tag}: devhost {c['devhost_cores']}, Azurite {c['azurite_cores']}, bench client "
                    f"{c['bench_client_cores']}" for tag, c in (results.get("cpu") or {}).items()) + ".",
        "",
        (md_table(CPU_HEADERS, cpu_rows(results)) + "\n\n" if cpu_rows(results) else "")
        + "(W1 includes the client's status polling: each read also costs devhost and Azurite CPU, see W3.)",
        "",
        "Load average (1 min) when each workload began: "
        + ", ".join(f"{k} {v}" for k, v in (results.get("loadavg_at_start") or {}).items()) + ".",
        "",
        *storage_section(results),
        *comparison_section(results),
        *analysis_section(),
        "## Goals",
        "",
        md_table(GOAL_HEADERS, goal_rows(results)),
        "",
    ]
    details = [
        ("W2 sequence", _get(dev, "w2", "sequence")), ("W2 fan-out/fan-in", _get(dev, "w2", "fan_out")),
        ("W2 events", _get(dev, "w2", "events")), ("W3", dev.get("w3")), ("W4", dev.get("w4")),
    ]
    lines += ["## Raw figures", "", "```"]
    for name, data in details:
        lines.append(f"{name}: {data}")
    lines += ["```", ""]
    if results.get("errors"):
        lines += ["## Errors in this run", ""]
        lines += [f"- {name}: {message}" for name, message in results["errors"].items()]
        lines.append("")
    return "\n".join(lines)


# -- charts, storage calls, before/after, analysis -------------------------------------------------------
ANALYSIS = Path(__file__).resolve().parent / "analysis.md"

# The storage calls between "start" and "custom status visible" in W1, in order (from the engine's commit
# order; see docs/architecture.md). Parallel work is on the same line.
CRITICAL_PATH = [
    "start request: `queue put (control)` of ExecutionStarted (written leased; the first episode starts in"
    " memory at once), then `table insert` of the Pending Instances row (the provider's insert: a row a checkpoint"
    " wrote first stands); the 202 follows",
    "meanwhile, in memory: episode 1 asks for CalculateDiscount, the activity runs ahead of any checkpoint"
    " and episode 2 takes its result at once (no work item, no queue); no storage call",
    "the shared checkpoint of episodes 1 and 2: `queue put (control)` of the TimerFired message (invisible"
    " until the offer expires), then `table batch` (both episodes' history rows and the sentinel), then"
    " `table merge` of the Instances row with the custom status, once the Pending row is stored: a status"
    " read shows the discount from here (the row cache takes the merge as it is issued)",
    "off the critical path: `queue delete` of ExecutionStarted once the checkpoint is stored; after"
    " BookingConfirmed (handed to the instance in memory, no queue): episode 3's `table batch` and `table merge`"
    " (Completed), then the 202, then `queue delete` of the timer message it no longer needs",
]


def chart_lines(results: dict[str, Any], *names: tuple[str, str]) -> list[str]:
    charts = results.get("charts") or {}
    lines = [f"![{alt}]({charts[name]})" for name, alt in names if name in charts]
    return [*lines, ""] if lines else []


def storage_section(results: dict[str, Any]) -> list[str]:
    headers, rows = storage_call_rows(results)
    lines = ["## Storage calls and CPU per flow", ""]
    if rows:
        lines += [
            "devhost counts every call on its task hub's storage transport by kind when the bench asks it to"
            " (`DEVHOST_STORAGE_CALLS_FILE`); the calls of start-up (creating the hub) are left out, idle"
            " polls of the five queues (`queue get ... empty`, at most 2/s each) are included. Per W1 flow:",
            "",
            md_table(headers, rows),
            "",
            "The provider makes at least 15 calls for this flow: a put and a delete for each of ExecutionStarted,"
            " TaskScheduled, TimerFired and EventRaised (8), a history batch and an Instances merge for each of"
            " three checkpoints (6), and the client's Pending row (1); it would also queue the activity's"
            " result (TaskCompleted: a put, a receive, a delete) and receive each message it wrote itself."
            " devhost makes 9: the activity runs ahead of its episode's checkpoint (no TaskScheduled message,"
            " and episodes 1 and 2 share one checkpoint), and BookingConfirmed goes to the instance in memory,"
            " its 202 waiting for the checkpoint that records it (no EventRaised message). What storage holds"
            " after each checkpoint is what the provider's would hold.",
            "",
        ]
    lines += ["The storage calls on the critical path from start to the custom status being visible:", ""]
    lines += [f"{i}. {step}" for i, step in enumerate(CRITICAL_PATH, 1)]
    lines.append("")
    lines += chart_lines(results, ("w1-cpu-per-flow", "CPU per W1 flow by process"))
    return lines


# (label, getter) of the figures compared with the run before the critical-path work
def _w1(phase: str, *path: str) -> Any:
    return lambda r: _get(r, "devhost", "w1", phase, *path)


def _cpu(tag: str, phase: str, who: str) -> Any:
    return lambda r: cpu_ms_per_unit(r, tag, _get(r, "devhost", "w1", phase, "instances"), who)


COMPARED: list[tuple[str, Any, str]] = [
    ("W1 one at a time: flows/s", _w1("serial", "orchestrations_per_s"), "higher"),
    ("W1 one at a time: start -> status visible p50 ms", _w1("serial", "start_to_status", "p50_ms"), "lower"),
    ("W1 one at a time: event raised -> Completed p50 ms", _w1("serial", "event_to_completed", "p50_ms"), "lower"),
    ("W1 one at a time: start request (app route) p50 ms",
     _w1("serial", "request_latency", "start (app route)", "p50_ms"), "lower"),
    ("W1 32 clients: flows/s", _w1("concurrent", "orchestrations_per_s"), "higher"),
    ("W1 32 clients, 50 ms polls: flows/s", _w1("concurrent_relaxed", "orchestrations_per_s"), "higher"),
    ("devhost CPU ms per flow, one at a time", _cpu("w1s", "serial", "devhost"), "lower"),
    ("devhost CPU ms per flow, 32 clients", _cpu("w1c", "concurrent", "devhost"), "lower"),
    ("devhost CPU ms per flow, 32 clients, 50 ms polls", _cpu("w1r", "concurrent_relaxed", "devhost"), "lower"),
    ("Azurite CPU ms per flow, 32 clients", _cpu("w1c", "concurrent", "azurite"), "lower"),
    ("storage calls per flow, one at a time", lambda r: calls_per_flow_total(r, "w1s"), "lower"),
    ("W2 100-step chain activities/s", lambda r: _get(r, "devhost", "w2", "sequence", "activities_per_s"), "higher"),
    ("W2 fan-out activities/s", lambda r: _get(r, "devhost", "w2", "fan_out", "fan_out_activities_per_s"),
     "higher"),
    ("W2 external events/s", lambda r: _get(r, "devhost", "w2", "events", "events_per_s"), "higher"),
    ("W3 status reads/s", lambda r: _get(r, "devhost", "w3", "reads_per_s"), "higher"),
    ("W4 instances waiting, s from the first start", lambda r: _get(r, "devhost", "w4", "waiting_after_s"), "lower"),
    ("W4 RSS with 1,000 waiting MiB", lambda r: _get(r, "devhost", "w4", "rss_waiting_mib"), "lower"),
    ("W4 drain s", lambda r: _get(r, "devhost", "w4", "drain_s"), "lower"),
]


def comparison_section(results: dict[str, Any]) -> list[str]:
    baseline = results.get("baseline")
    if not baseline:
        return []
    rows = []
    for label, get, better in COMPARED:
        before, after = get(baseline), get(results)
        change = "-"
        if before not in (None, 0) and after is not None:
            factor = after / before
            improved = factor > 1 if better == "higher" else factor < 1
            change = f"{factor:.2f}x ({'better' if improved else 'worse' if factor != 1 else 'same'})"
        rows.append([label, _fmt(before), _fmt(after), change])
    meta = baseline.get("meta") or {}
    return [
        "## Before and after",
        "",
        f"This run against `bench/results/baseline.json`: the same bench before the critical-path work"
        f" ({meta.get('date', '?')} UTC, commit `{meta.get('git_commit', '?')}`, load average"
        f" {meta.get('loadavg_before', '?')}). Ratios are after / before.",
        "",
        md_table(["figure", "before", "after", "after / before"], rows),
        "",
    ]


def analysis_section() -> list[str]:
    """The hand-written account of what moved each figure (``bench/analysis.md``), included as it is."""
    if not ANALYSIS.exists():
        return []
    return [ANALYSIS.read_text().rstrip(), ""]
