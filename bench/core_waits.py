"""CPU time, and time spent runnable but waiting for a core, per process, from Linux's schedstat.

On the 2-core machines the benchmarks run on, devhost, Azurite and the client share two cores, and a latency
stretches whenever one of them is ready to run and finds both cores busy. ``/proc/<pid>/task/<tid>/schedstat``
holds, per thread, the nanoseconds it ran and the nanoseconds it waited on a run queue; summed over a process's
threads before and after some work, they say how much of its time that work spent waiting for a core. Threads
that end in between are not counted, and other systems have no such file: ``snapshot`` then returns nothing.
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
