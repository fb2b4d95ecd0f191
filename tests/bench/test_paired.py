"""bench.paired: two devhosts taking turns flow by flow, compared side by side and window by window."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bench import paired
from bench.workloads import FlowMarks
from tests.hosts import launch_host, stop_host


def flow(start_visible_ms: float, event_completed_ms: float = 5.0, at: float = 100.0) -> FlowMarks:
    visible = at + start_visible_ms / 1000
    return FlowMarks(start_sent=at, start_answered=at + 0.001, visible=visible, raise_answered=visible + 0.001,
                     completed=visible + event_completed_ms / 1000, polls=2)


def test_settings_keep_spaces_and_equals_signs_in_values() -> None:
    """A NODE_OPTIONS value with spaces and a flag with '=' survive the KEY=VALUE;... syntax."""
    settings = paired.parse_settings("NODE_OPTIONS=--require /x/y.js --max-semi-space-size=8; DEVHOST_RUN_AHEAD_MS=0;")
    assert settings == {"NODE_OPTIONS": "--require /x/y.js --max-semi-space-size=8", "DEVHOST_RUN_AHEAD_MS": "0"}
    assert paired.parse_settings("") == {}


@pytest.mark.parametrize("text", ["NOEQUALS", "=value"])
def test_a_setting_without_a_key_is_refused(text: str) -> None:
    """Each item must be KEY=VALUE with a key."""
    with pytest.raises(ValueError, match="KEY=VALUE"):
        paired.parse_settings(text)


def test_a_side_reports_both_latencies_in_milliseconds() -> None:
    """start -> visible and event -> Completed percentiles come from each flow's marks."""
    side = paired.side_of([flow(ms, event_completed_ms=ms / 2) for ms in range(1, 101)])
    assert side.start_visible_p50 == pytest.approx(50.5)
    assert side.start_visible_p95 == pytest.approx(95.05)
    assert side.event_completed_p50 == pytest.approx(25.25)


def test_windows_compare_the_flows_that_ran_together() -> None:
    """The variant is lower only in the window where its flows were faster, and the counts say so."""
    base = [flow(10.0) for _ in range(20)]
    variant = [flow(12.0) for _ in range(10)] + [flow(8.0) for _ in range(10)]
    windows = paired.windows_of(base, variant, 10)
    assert [(w.first_flow, w.base_p50, w.variant_p50) for w in windows] == [(0, 10.0, 12.0), (10, 10.0, 8.0)]
    text = paired.render({"base": paired.side_of(base), "variant": paired.side_of(variant)}, windows)
    assert "variant lower in 1 of 2 windows at p50, 1 at p95" in text


@pytest.mark.e2e
@pytest.mark.local_only("starts two devhosts of its own")
def test_two_devhosts_take_turns_and_each_side_gets_its_flows(storage_connection: str, tmp_path: Path) -> None:
    """Real flows alternate between two hosts; each side's marks are its own, in order."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = launch_host(storage_connection, tmp_path / "a")
    second = launch_host(storage_connection, tmp_path / "b", extra_env={"DEVHOST_RUN_AHEAD_MS": "0"})
    try:
        marks = asyncio.run(paired._flows([first.base_url, second.base_url], 3, 1, 0.002))
    finally:
        stop_host(first)
        stop_host(second)
    assert [len(side) for side in marks] == [3, 3]
    for side in marks:
        assert all(f.start_sent < f.visible < f.completed for f in side)
    # turns alternate who goes first: flow 0 base then variant, flow 1 variant then base
    assert marks[0][0].start_sent < marks[1][0].start_sent
    assert marks[1][1].start_sent < marks[0][1].start_sent


def test_the_certainty_line_says_how_often_the_variant_was_lower() -> None:
    """A variant faster in every flow is the lower in all resamples; the same flows on both sides are level."""
    base = [flow(20.0 + i / 10) for i in range(200)]
    faster = [flow(10.0 + i / 10) for i in range(200)]
    assert "in 100 % of 2,000 resamples of the flows at p50, 100 % at p95" in paired.certainty_line(base, faster)
    level = [int(share) for share in re.findall(r"(\d+) %", paired.certainty_line(base, base))[:2]]
    assert all(35 <= share <= 65 for share in level)
