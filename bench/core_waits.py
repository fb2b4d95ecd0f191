"""CPU time, and time spent runnable but waiting for a core, per process, from Linux's schedstat; and the
share of the machine's CPU time its hypervisor gave to other machines (steal), from ``/proc/stat``.

On the 2-core machines the benchmarks run on, devhost, Azurite and the client share two cores, and a latency
stretches whenever one of them is ready to run and finds both cores busy. ``/proc/<pid>/task/<tid>/schedstat``
holds, per thread, the nanoseconds it ran and the nanoseconds it waited on a run queue; summed over a process's
threads before and after some work, they say how much of its time that work spent waiting for a core. Threads
that end in between are not counted, and other systems have no such file: ``snapshot`` then returns nothing.

On a virtual machine, the cores themselves come and go: ``steal`` in ``/proc/stat`` counts the time the
hypervisor ran something else while these cores had work. The benchmarks' machines slow down by up to half
within minutes, and steal rises with it (0.4 % of the time while idle, 12.5 % in a critical-path run that took
twice as long as one an hour earlier): a run reports it, so that a slow phase shows as one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Times:
    """Nanoseconds summed over a process's threads."""

    run_ns: int
    wait_ns: int


def process_times(pid: int, proc: Path = PROC) -> Times | None:
    """The run and run-queue times of ``pid``'s live threads, or None where schedstat cannot be read."""
    run = wait = 0
    try:
        tasks = list((proc / str(pid) / "task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            fields = (task / "schedstat").read_text().split()
        except OSError:
            continue  # the thread ended meanwhile
        run += int(fields[0])
        wait += int(fields[1])
    return Times(run, wait)


def snapshot(pids: Mapping[str, int], proc: Path = PROC) -> dict[str, Times]:
    """Each named process's times now (processes whose schedstat cannot be read are left out)."""
    out = {}
    for name, pid in pids.items():
        times = process_times(pid, proc)
        if times is not None:
            out[name] = times
    return out


def per_unit_ms(before: Mapping[str, Times], after: Mapping[str, Times], units: int) -> dict[str, dict[str, float]]:
    """Milliseconds of running and of waiting for a core per unit of work (a flow), for each process in both."""
    out = {}
    for name, end in after.items():
        start = before.get(name)
        if start is None or units <= 0:
            continue
        out[name] = {"run_ms": (end.run_ns - start.run_ns) / 1e6 / units,
                     "wait_ms": (end.wait_ns - start.wait_ns) / 1e6 / units}
    return out


def machine_times(proc: Path = PROC) -> list[int] | None:
    """The ``cpu`` line of ``/proc/stat``: user, nice, system, idle, iowait, irq, softirq, steal... (clock ticks)."""
    try:
        first = (proc / "stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not first or first[0] != "cpu":
        return None
    return [int(v) for v in first[1:]]


def steal_percent(before: list[int] | None, after: list[int] | None) -> float | None:
    """Steal as a share of all the CPU time between two ``machine_times`` (guest time, already counted in user
    time, left out), or None when either is missing or nothing passed."""
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return None
    delta = [b - a for a, b in zip(before[:8], after[:8], strict=True)]
    total = sum(delta)
    return round(100 * delta[7] / total, 1) if total > 0 else None


def steal_since(before: list[int] | None) -> float | None:
    """Steal since the ``machine_times`` reading ``before`` (None where either reading is missing)."""
    return steal_percent(before, machine_times())
