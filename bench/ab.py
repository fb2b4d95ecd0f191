"""Compare devhost variants by CPU per W1 flow and storage calls per flow, rounds interleaved.

``python -m bench.ab [--flows N] [--rounds R] [--concurrency C] [--poll-ms P] [--against REV]``: one
Azurite; for each round and each variant (environment settings of the devhost process, or with
``--against``, the devhost and app of another commit, checked out beside this one), a fresh devhost runs N
ReserveTicket flows with C clients polling every P ms; printed: devhost's and Azurite's CPU ms per flow
(process CPU time, not wall time) and devhost's storage calls per flow, each as the median over the
rounds, and each variant's devhost CPU against the first variant's in the same round. Interleaving the
variants round by round spreads machine load over all of them alike, so the comparison holds on a busy
machine where wall-clock figures do not. CPU time per flow moves with the machine's speed too (by half
between quiet and busy phases of a 2-core virtual machine), so a change is judged against its "before"
in the same rounds: ``--against 03b6527 --only default`` compares this checkout with that commit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench import launcher, workloads

# name -> environment of the devhost process. "before": what devhost ran on before uvloop, the
# in-process loopback and running activities ahead of the checkpoint; "default": what it runs on now.
VARIANTS: dict[str, dict[str, str]] = {
    "before": {"DEVHOST_EVENT_LOOP": "asyncio", "DEVHOST_LOOPBACK": "tcp", "DEVHOST_RUN_AHEAD_MS": "0"},
    "uvloop": {"DEVHOST_LOOPBACK": "tcp", "DEVHOST_RUN_AHEAD_MS": "0"},
    "in-process": {"DEVHOST_EVENT_LOOP": "asyncio", "DEVHOST_RUN_AHEAD_MS": "0"},
    "no-run-ahead": {"DEVHOST_RUN_AHEAD_MS": "0"},
    "sdk-as-is": {"DEVHOST_SDK_SPEEDUPS": "0"},
    "gc-as-is": {"DEVHOST_GC_FREEZE": "0"},
    "unchained": {"DEVHOST_RUN_AHEAD_CHAIN": "0"},
    "default": {},
}


@contextlib.contextmanager
def checkout(revision: str, parent: Path) -> Iterator[Path]:
    """``revision`` of this repository checked out (a detached worktree) under ``parent``, removed after."""
    path = parent / f"at-{revision.replace('/', '_')}"
    subprocess.run(["git", "-C", str(launcher.PROJECT_ROOT), "worktree", "add", "--detach", "--quiet", str(path),
                    revision], check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(launcher.PROJECT_ROOT), "worktree", "remove", "--force", str(path)],
                       check=False)


def one(azurite: launcher.AzuriteProcess, workdir: Path, env: dict[str, str], flows: int,
        concurrency: int, poll_s: float, root: Path = launcher.PROJECT_ROOT) -> tuple[float, float, float]:
    with launcher.environment(env):
        host = launcher.start_devhost(azurite.connection_string, workdir, tag="ab", root=root)
    try:
        cpu0 = (launcher.cpu_seconds(host.pid), launcher.cpu_seconds(azurite.process.pid))
        result = asyncio.run(workloads.w1_reserve_ticket(host.base_url, flows, concurrency, poll_s, 600.0))
        cpu1 = (launcher.cpu_seconds(host.pid), launcher.cpu_seconds(azurite.process.pid))
    finally:
        host.stop()
    done = result["instances"] or 1
    calls = host.storage_calls()  # None from a devhost that does not count them (an older commit's)
    return ((cpu1[0] - cpu0[0]) * 1000 / done, (cpu1[1] - cpu0[1]) * 1000 / done,
            sum(calls["workload"].values()) / done if calls else math.nan)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--flows", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--poll-ms", type=float, default=50.0,
                        help="status poll interval: slow polls keep the number of reads per flow (which grows with "
                             "latency, and so with load) from blurring the comparison")
    parser.add_argument("--only", default="", help=f"comma-separated variants of {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--against", metavar="REV", help="also run another commit's devhost (and app), as the first "
                        "variant, with the default settings")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, launcher.raise_keyboard_interrupt)  # stop devhost and Azurite from ``finally``
    chosen = {k: v for k, v in VARIANTS.items() if not args.only or k in args.only.split(",")}
    if not chosen:
        parser.error(f"--only names none of {', '.join(VARIANTS)}")
    azurite = launcher.start_azurite()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp, contextlib.ExitStack() as stack:
            # name -> (environment, checkout whose devhost runs)
            runs = {name: (env, launcher.PROJECT_ROOT) for name, env in chosen.items()}
            if args.against:
                runs = {f"at {args.against}": ({}, stack.enter_context(checkout(args.against, Path(tmp)))), **runs}
            figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
            for round_number in range(args.rounds):
                for name, (env, root) in runs.items():
                    figures[name].append(one(azurite, Path(tmp), env, args.flows, args.concurrency,
                                             args.poll_ms / 1000, root))
                    d, a, c = figures[name][-1]
                    print(f"round {round_number + 1} {name}: devhost {d:.1f} ms, Azurite {a:.1f} ms, "
                          f"{_calls(c)} calls per flow", flush=True)
    finally:
        launcher.stop_azurite(azurite)
    print(f"\nmedians over {args.rounds} rounds, {args.flows} flows, {args.concurrency} client(s), "
          f"{args.poll_ms:g} ms polls; 'vs first' = median over rounds of this variant / the first one:")
    first = next(iter(figures.values()))
    for name, values in figures.items():
        d, a, c = (statistics.median(v[i] for v in values) for i in range(3))
        paired = statistics.median(v[0] / f[0] for v, f in zip(values, first, strict=True))
        print(f"  {name:<12} devhost {d:6.1f} ms/flow ({paired:.2f} vs first)  Azurite {a:6.1f} ms/flow  "
              f"{_calls(c):>5} storage calls/flow")


def _calls(per_flow: float) -> str:
    return "-" if math.isnan(per_flow) else f"{per_flow:.2f}"


if __name__ == "__main__":
    main()
