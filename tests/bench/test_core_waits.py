"""CPU and waits for a core per process, from Linux's per-thread schedstat."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import core_waits


def fake_proc(root: Path, pid: int, threads: dict[int, tuple[int, int]]) -> None:
    for tid, (run, wait) in threads.items():
        task = root / str(pid) / "task" / str(tid)
        task.mkdir(parents=True)
        (task / "schedstat").write_text(f"{run} {wait} 7\n")


def test_a_process_is_the_sum_of_its_threads(tmp_path: Path) -> None:
    """Run and wait times add up over the threads; a process that is gone is left out."""
    fake_proc(tmp_path, 10, {10: (3_000_000, 1_000_000), 11: (2_000_000, 500_000)})
    found = core_waits.snapshot({"devhost": 10, "gone": 99}, proc=tmp_path)
    assert found == {"devhost": core_waits.Times(5_000_000, 1_500_000)}


def test_per_flow_is_the_difference_over_the_flows() -> None:
    """Milliseconds per flow between two snapshots, for the processes both have."""
    before = {"Azurite": core_waits.Times(1_000_000, 0), "client": core_waits.Times(0, 0)}
    after = {"Azurite": core_waits.Times(41_000_000, 8_000_000), "devhost": core_waits.Times(9, 9)}
    assert core_waits.per_unit_ms(before, after, 4) == {"Azurite": {"run_ms": 10.0, "wait_ms": 2.0}}
    assert core_waits.per_unit_ms(before, after, 0) == {}


@pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/task").is_dir(), reason="needs Linux's /proc")
def test_this_process_has_run() -> None:
    """The real schedstat of this test's own process shows CPU time that grows with work."""
    first = core_waits.snapshot({"me": os.getpid()})["me"]
    sum(i * i for i in range(200_000))
    second = core_waits.snapshot({"me": os.getpid()})["me"]
    assert second.run_ns > first.run_ns > 0


def test_steal_is_a_share_of_all_the_cpu_time_between_two_readings(tmp_path: Path) -> None:
    """Steal over user, nice, system, idle, iowait, irq, softirq and steal; guest columns are not added twice."""
    (tmp_path / "stat").write_text("cpu  100 0 50 800 0 0 0 50 999 0\ncpu0 1 2 3\n")
    before = core_waits.machine_times(tmp_path)
    assert before == [100, 0, 50, 800, 0, 0, 0, 50, 999, 0]
    after = [300, 0, 100, 1400, 0, 0, 10, 190, 5000, 0]
    assert core_waits.steal_percent(before, after) == 14.0  # 140 of 1000 ticks
    assert core_waits.steal_percent(before, before) is None
    assert core_waits.steal_percent(None, after) is None
    assert core_waits.machine_times(tmp_path / "missing") is None
    assert core_waits.steal_since(None) is None
