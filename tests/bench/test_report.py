"""The bench's report: goals with verdicts, storage calls per flow, CPU per flow, and the charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import report


def _phase(flows: int, per_s: float, status_p50: float, event_p50: float) -> dict[str, Any]:
    return {"instances": flows, "orchestrations_per_s": per_s,
            "start_to_status": {"p50_ms": status_p50, "p95_ms": status_p50 * 1.5},
            "event_to_completed": {"p50_ms": event_p50, "p95_ms": event_p50 * 1.5},
            "samples_ms": {"start_to_status": [status_p50, status_p50 + 1, status_p50 + 5],
                           "event_to_completed": [event_p50, event_p50 + 2, event_p50 + 4]}}


def results() -> dict[str, Any]:
    """A small full-mode result set: devhost with three W1 phases, DBOS, call counts and CPU."""
    return {
        "meta": {"date": "2026-12-01 00:00:00", "git_commit": "abc", "command": "python -m bench", "mode": "full",
                 "duration_s": 10.0, "cpu_count": 2, "memory_gib": 8, "platform": "Linux", "python": "3.11",
                 "versions": {}, "loadavg_before": 0.1, "loadavg_after": 0.2},
        "config": {"w1_instances": 100, "concurrency": 32, "poll_ms": 2.0, "w2_sequence": 100, "w2_fan_out": 500,
                   "w2_events": 200, "w3_clients": 16, "w3_seconds": 5.0, "w4_instances": 1000,
                   "time_cap_s": 60.0, "w1_time_cap_s": 90.0},
        "devhost": {"ready_s": [1.0], "w1": {"serial": _phase(100, 40.0, 12.0, 7.0),
                                             "concurrent": _phase(100, 50.0, 300.0, 100.0),
                                             "concurrent_relaxed": {**_phase(100, 60.0, 200.0, 80.0),
                                                                    "poll_interval_ms": 50.0}},
                    "w2": {"chains": {"activities_per_s": 120.0, "chain": {"p50_ms": 80.0, "p95_ms": 90.0}}},
                    "w4": {"instances": 1000, "waiting": 1000, "all_waiting": True, "rss_waiting_mib": 90.0,
                           "waiting_after_s": 20.0, "waiting_after_last_start_s": 9.0}},
        "peers": {"dbos": {"name": "DBOS", "version": "3", "setup": "SQLite",
                           "serial": _phase(100, 30.0, 15.0, 19.0), "concurrent": _phase(100, 36.0, 500.0, 300.0)}},
        "cpu": {"w1c": {"wall_s": 2.0, "devhost_cores": 0.6, "azurite_cores": 0.5, "bench_client_cores": 0.1,
                        "devhost_cpu_s": 1.2, "azurite_cpu_s": 1.0, "bench_client_cpu_s": 0.2}},
        "storage_calls": {"w1s": {"startup": {"table batch": 1},
                                  "workload": {"queue put (control)": 300, "table batch": 300, "table merge": 300,
                                               "queue get (control, empty)": 50}}},
    }


def test_every_goal_gets_a_verdict_from_the_figures() -> None:
    """Goals are judged against their targets: met, missed, or reported only."""
    data = results()
    data["ratios"] = report.compute_ratios(data)
    goals = {g["key"]: g for g in report.evaluate_goals(data)}
    assert goals["w1_status_p50"]["met"] is True and goals["w1_event_p50"]["met"] is True
    assert goals["w1_throughput_vs_dbos"]["value"] == pytest.approx(50 / 36, abs=0.01)
    assert goals["w1_throughput_vs_dbos"]["met"] is True
    assert goals["w1_relaxed_vs_dbos"]["met"] is True  # 60 / 36 = 1.67 >= 1.5
    assert goals["w1_cpu_per_flow"]["value"] == pytest.approx(12.0)  # 1.2 s over 100 flows
    assert goals["w1_cpu_per_flow"]["met"] is True
    assert goals["w1_storage_calls"]["value"] == pytest.approx(9.5)
    assert goals["w1_storage_calls"]["verdict"] == "reported only"
    assert goals["w4_wait_after_last_start"]["met"] is True
    assert goals["w2_chain10"]["met"] is True
    assert goals["w2_fan_out"]["verdict"] == "not measured"


def test_markdown_lists_calls_per_flow_the_critical_path_and_the_charts() -> None:
    """docs/benchmarks.md gets the per-kind call table, the critical path and the chart links."""
    data = results()
    data["ratios"] = report.compute_ratios(data)
    data["goals"] = report.evaluate_goals(data)
    data["charts"] = {"w1-throughput": "../bench/results/w1-throughput.png"}
    text = report.markdown(data)
    assert "| queue put (control) | 3.00 |" in text
    assert "| **all calls** | **9.50** |" in text
    assert "critical path" in text and "episode 2" in text
    assert "![W1 throughput per system](../bench/results/w1-throughput.png)" in text
    assert "W1 one at a time: start -> status visible, p50" in text


def test_charts_are_drawn_as_png_files(tmp_path: Path) -> None:
    """Each chart the figures allow is written; the CPU chart needs the CPU figures of a phase."""
    pytest.importorskip("matplotlib")
    from bench import charts

    drawn = charts.draw_all(results(), tmp_path)
    assert set(drawn) == {"w1-throughput", "w1-latency", "w1-cpu-per-flow"}
    for path in drawn.values():
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_w4_goals_say_why_they_were_not_measured() -> None:
    """A W4 that did not get all 1,000 waiting says so; a quick run's 100 instances are not judged."""
    data = results()
    data["devhost"]["w4"].update(all_waiting=False, waiting=700)
    goals = {g["key"]: g for g in report.evaluate_goals(data)}
    assert goals["w4_wait_after_last_start"]["verdict"].startswith("NOT REACHED: only 700 of 1000")
    data["devhost"]["w4"].update(instances=100, all_waiting=True, waiting=100)
    goals = {g["key"]: g for g in report.evaluate_goals(data)}
    assert goals["w4_wait_after_last_start"]["verdict"].startswith("not measured (this run started 100")


def test_the_run_says_how_much_cpu_the_hypervisor_took() -> None:
    """With steal measured, the run's section gives it overall and by workload; without, it says nothing."""
    figures = results()
    line = "- CPU steal (time the hypervisor gave these cores to other machines while they had work)"
    assert line not in report.markdown(figures)
    figures["meta"]["steal_pct"] = 6.2
    figures["steal_pct"] = {"W1": 9.5, "W3": 1.0}
    text = report.markdown(figures)
    assert f"{line}: 6.2 % of the run (W1 9.5 %, W3 1.0 %)" in text


def test_the_one_at_a_time_percentiles_say_how_sure_they_are() -> None:
    """Each one-at-a-time percentile gets its bootstrap range and the share of resamples devhost's was lower in."""
    data = results()
    data["devhost"]["w1"]["serial"]["samples_ms"]["start_to_status"] = [10.0 + i / 100 for i in range(200)]
    data["peers"]["dbos"]["serial"]["samples_ms"]["start_to_status"] = [20.0 + i / 100 for i in range(200)]
    rows = {row[0]: row for row in report.certainty_rows(data)}
    assert rows["start -> status visible p50 ms"][1].startswith("11.0 (")
    assert rows["start -> status visible p50 ms"][3] == "100 %"
    assert rows["start -> status visible p95 ms"][4:] == ["-", "-"]  # no durabletask in these results
    assert "| start -> status visible p95 ms | 11.9 (" in report.markdown(data)


def test_without_the_flows_samples_there_is_no_certainty_table() -> None:
    """Results that kept no samples (an older run) leave the table out rather than guess."""
    data = results()
    for phase in (data["devhost"]["w1"]["serial"], data["peers"]["dbos"]["serial"]):
        del phase["samples_ms"]
    assert report.certainty_rows(data) == []
    assert "| one at a time | devhost | DBOS | devhost lower than DBOS |" not in report.markdown(data)
