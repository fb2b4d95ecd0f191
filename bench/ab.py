"""Compare devhost variants by CPU per W1 flow and storage calls per flow, rounds interleaved.

``python -m bench.ab [--flows N] [--rounds R] [--concurrency C] [--poll-ms P]``: one Azurite; for each
round and each variant (environment settings of the devhost process), a fresh devhost runs N
ReserveTicket flows with C clients polling every P ms; printed: devhost's and Azurite's CPU ms per flow
(process CPU time, not wall time) and devhost's storage calls per flow, each as the median over the
rounds, and each variant's devhost CPU against the first variant's in the same round. Interleaving the
variants round by round spreads machine load over all of them alike, so the comparison holds on a busy
machine where wall-clock figures do not.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import tempfile
from pathlib import Path

from bench import launcher, workloads
from bench.cli import _raise_keyboard_interrupt

# name -> environment of the devhost process. "before": what devhost ran on before uvloop, the
# in-process loopback and running activities ahead of the checkpoint; "default": what it runs on now.
VARIANTS: dict[str, dict[str, str]] = {
    "before": {"DEVHOST_EVENT_LOOP": "asyncio", "DEVHOST_LOOPBACK": "tcp", "DEVHOST_RUN_AHEAD_MS": "0"},
    "uvloop": {"DEVHOST_LOOPBACK": "tcp", "DEVHOST_RUN_AHEAD_MS": "0"},
    "in-process": {"DEVHOST_EVENT_LOOP": "asyncio", "DEVHOST_RUN_AHEAD_MS": "0"},
    "no-run-ahead": {"DEVHOST_RUN_AHEAD_MS": "0"},
    "sdk-as-is": {"DEVHOST_SDK_SPEEDUPS": "0"},
    "default": {},
}


def one(azurite: launcher.AzuriteProcess, workdir: Path, env: dict[str, str], flows: int,
        concurrency: int, poll_s: float) -> tuple[float, float, float]:
    with launcher.environment(env):
        host = launcher.start_devhost(azurite.connection_string, workdir, tag="ab")
    try:
        cpu0 = (launcher.cpu_seconds(host.pid), launcher.cpu_seconds(azurite.process.pid))
        result = asyncio.run(workloads.w1_reserve_ticket(host.base_url, flows, concurrency, poll_s, 600.0))
        cpu1 = (launcher.cpu_seconds(host.pid), launcher.cpu_seconds(azurite.process.pid))
    finally:
        host.stop()
    done = result["instances"] or 1
    calls = host.storage_calls() or {"workload": {}}
    return ((cpu1[0] - cpu0[0]) * 1000 / done, (cpu1[1] - cpu0[1]) * 1000 / done,
            sum(calls["workload"].values()) / done)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--flows", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--poll-ms", type=float, default=50.0,
                        help="status poll interval: slow polls keep the number of reads per flow (which grows with "
                             "latency, and so with load) from blurring the comparison")
    parser.add_argument("--only", default="", help=f"comma-separated variants of {', '.join(VARIANTS)} (default: all)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # stop devhost and Azurite from ``finally``
    chosen = {k: v for k, v in VARIANTS.items() if not args.only or k in args.only.split(",")}
    if not chosen:
        parser.error(f"--only names none of {', '.join(VARIANTS)}")
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in chosen}
    azurite = launcher.start_azurite()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
            for round_number in range(args.rounds):
                for name, env in chosen.items():
                    figures[name].append(one(azurite, Path(tmp), env, args.flows, args.concurrency,
                                             args.poll_ms / 1000))
                    d, a, c = figures[name][-1]
                    print(f"round {round_number + 1} {name}: devhost {d:.1f} ms, Azurite {a:.1f} ms, "
                          f"{c:.2f} calls per flow", flush=True)
    finally:
        launcher.stop_azurite(azurite)
    print(f"\nmedians over {args.rounds} rounds, {args.flows} flows, {args.concurrency} client(s), "
          f"{args.poll_ms:g} ms polls; 'vs first' = median over rounds of this variant / the first one:")
    first = next(iter(figures.values()))
    for name, values in figures.items():
        d, a, c = (statistics.median(v[i] for v in values) for i in range(3))
        paired = statistics.median(v[0] / f[0] for v, f in zip(values, first, strict=True))
        print(f"  {name:<10} devhost {d:6.1f} ms/flow ({paired:.2f} vs first)  Azurite {a:6.1f} ms/flow  "
              f"{c:5.2f} storage calls/flow")


if __name__ == "__main__":
    main()
