"""A latency A/B the machine's drift hits alike: two devhosts side by side, W1's flows taking turns between them.

``python -m bench.paired --variant KEY=VALUE;... [--base KEY=VALUE;...] [--flows N] [--warmup W] [--poll-ms P]
[--window K] [--json FILE]``

Starts two pairs of Azurite and devhost, each pair with its own environment settings (``--base`` for the first,
none by default; ``--variant`` for the second). The settings reach both processes of a pair, so one flag serves
devhost's (``DEVHOST_*``) and Azurite's (``NODE_OPTIONS``) knobs alike. Each pair is warmed with W untimed flows;
then N ReserveTicket flows run on each, one at a time as W1 runs them, the pairs taking turns flow by flow and
the first of each turn alternating. A slow second of the machine then falls on both sides, which it does not
when two runs follow each other: on these 2-core machines whole runs move by a fifth within minutes, more
than most changes move a latency.

Printed: each side's start -> visible p50, p90 and p95 and event -> Completed p50 and p95, then the two sides'
start -> visible p50 and p95 for each window of K flows, in how many windows the variant was lower, and in how
many bootstrap resamples of all the flows its p50 and p95 were the lower (``bench.stats.compare_percentiles``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import launcher, workloads
from bench.stats import compare_percentiles, percentile
from bench.workloads import FlowMarks

SIDES = ("base", "variant")


@dataclass
class Side:
    """One side's figures over its flows, in milliseconds."""

    start_visible_p50: float
    start_visible_p90: float
    start_visible_p95: float
    event_completed_p50: float
    event_completed_p95: float


@dataclass
class Window:
    """Both sides' start -> visible over one window of flows that ran in the same minutes."""

    first_flow: int
    base_p50: float
    variant_p50: float
    base_p95: float
    variant_p95: float


def _pct(values: Sequence[float], q: float) -> float:
    found = percentile(values, q)
    return 0.0 if found is None else round(found, 2)


def start_visible_ms(flows: Sequence[FlowMarks]) -> list[float]:
    return [(f.visible - f.start_sent) * 1000 for f in flows]


def side_of(flows: Sequence[FlowMarks]) -> Side:
    visible = start_visible_ms(flows)
    completed = [(f.completed - f.visible) * 1000 for f in flows]
    return Side(_pct(visible, 50), _pct(visible, 90), _pct(visible, 95), _pct(completed, 50), _pct(completed, 95))


def windows_of(base: Sequence[FlowMarks], variant: Sequence[FlowMarks], size: int) -> list[Window]:
    """Both sides' p50 and p95 over each ``size`` flows (the two sides' flows of one window ran together)."""
    out = []
    for first in range(0, min(len(base), len(variant)), size):
        b = start_visible_ms(base[first:first + size])
        v = start_visible_ms(variant[first:first + size])
        out.append(Window(first, _pct(b, 50), _pct(v, 50), _pct(b, 95), _pct(v, 95)))
    return out


def certainty_line(base: Sequence[FlowMarks], variant: Sequence[FlowMarks]) -> str:
    """In how many of 2,000 bootstrap resamples the variant's start -> visible p50 and p95 were the lower."""
    variant_ms, base_ms = start_visible_ms(variant), start_visible_ms(base)
    shares = []
    for q in (50, 95):
        found = compare_percentiles(variant_ms, base_ms, q)
        shares.append("-" if found is None else f"{found.first_lower_share * 100:.0f} %")
    return (f"variant's start -> visible lower than base's in {shares[0]} of 2,000 resamples of the flows at p50,"
            f" {shares[1]} at p95 (near 50 %: level)")


def render(sides: dict[str, Side], windows: Sequence[Window]) -> str:
    lines = [f"{'side':<8} {'start -> visible p50':>21} {'p90':>6} {'p95':>6}   {'event -> Completed p50':>22} "
             f"{'p95':>6}"]
    for name, side in sides.items():
        lines.append(f"{name:<8} {side.start_visible_p50:21.2f} {side.start_visible_p90:6.2f} "
                     f"{side.start_visible_p95:6.2f}   {side.event_completed_p50:22.2f} "
                     f"{side.event_completed_p95:6.2f}")
    lines.append("start -> visible by window (base / variant):")
    for w in windows:
        lines.append(f"  flows {w.first_flow:>4}-: p50 {w.base_p50:6.2f} / {w.variant_p50:6.2f}   "
                     f"p95 {w.base_p95:6.2f} / {w.variant_p95:6.2f}")
    lower50 = sum(w.variant_p50 < w.base_p50 for w in windows)
    lower95 = sum(w.variant_p95 < w.base_p95 for w in windows)
    lines.append(f"variant lower in {lower50} of {len(windows)} windows at p50, {lower95} at p95")
    return "\n".join(lines)


def parse_settings(text: str) -> dict[str, str]:
    """``KEY=VALUE;KEY=VALUE`` (a value may hold spaces and ``=``, not ``;``)."""
    settings = {}
    for item in (part.strip() for part in text.split(";")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        settings[key.strip()] = value
    return settings


@contextlib.contextmanager
def _pair(settings: dict[str, str], tag: str) -> Iterator[launcher.Devhost]:
    with launcher.environment(settings):
        azurite = launcher.start_azurite()
    try:
        with launcher.environment(settings):
            host = launcher.start_devhost(azurite.connection_string, Path(tempfile.mkdtemp(prefix=f"paired-{tag}-")),
                                          tag=tag)
        try:
            yield host
        finally:
            host.stop()
    finally:
        launcher.stop_azurite(azurite)


async def _flows(bases: Sequence[str], count: int, warmup: int, poll: float) -> list[list[FlowMarks]]:
    async with workloads.new_session(4) as first, workloads.new_session(4) as second:
        clients = [workloads.Client(first, bases[0]), workloads.Client(second, bases[1])]
        for i in range(warmup):
            for client in clients:
                await workloads.reserve_ticket_flow(client, f"warmup-{i}", poll)
        marks: list[list[FlowMarks]] = [[], []]
        for i in range(count):
            for k in ((0, 1) if i % 2 == 0 else (1, 0)):
                marks[k].append(await workloads.reserve_ticket_marks(clients[k], f"user-{i}", poll))
        return marks


def run(base: dict[str, str], variant: dict[str, str], count: int, warmup: int,
        poll: float) -> dict[str, list[FlowMarks]]:
    with _pair(base, "base") as first, _pair(variant, "variant") as second:
        marks = asyncio.run(_flows([first.base_url, second.base_url], count, warmup, poll))
    return dict(zip(SIDES, marks, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.paired", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", required=True, metavar="KEY=VALUE;...",
                        help="environment settings of the second pair, e.g. DEVHOST_RUN_AHEAD_MS=0")
    parser.add_argument("--base", default="", metavar="KEY=VALUE;...", help="environment settings of the first pair")
    parser.add_argument("--flows", type=int, default=600, help="timed flows on each side")
    parser.add_argument("--warmup", type=int, default=200, help="untimed flows first on each side (a warm Azurite)")
    parser.add_argument("--poll-ms", type=float, default=2.0, help="status read interval, as in W1 (2 ms)")
    parser.add_argument("--window", type=int, default=100, help="flows per window in the window-by-window lines")
    parser.add_argument("--json", type=Path, help="also write both sides' figures and each flow's times here")
    args = parser.parse_args()
    try:
        base, variant = parse_settings(args.base), parse_settings(args.variant)
    except ValueError as exc:
        parser.error(str(exc))
    flows = run(base, variant, args.flows, args.warmup, args.poll_ms / 1000)
    sides = {name: side_of(flows[name]) for name in SIDES}
    windows = windows_of(flows["base"], flows["variant"], args.window)
    print(render(sides, windows))
    print(certainty_line(flows["base"], flows["variant"]))
    if args.json:
        out: dict[str, Any] = {"settings": {"base": base, "variant": variant},
                               "sides": {n: asdict(s) for n, s in sides.items()},
                               "windows": [asdict(w) for w in windows],
                               "flow_times": {n: [asdict(f) for f in flows[n]] for n in SIDES}}
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
