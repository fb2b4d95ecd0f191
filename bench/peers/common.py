"""What the peer runners share: the flow's timing record, the phase loop and the JSON they print."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.stats import Progress, summary_ms

BOOKING_URL = "https://www.myawesomebookingweb.com"


def discount_for(user_id: str) -> int:
    """The app's CalculateDiscount (activities/calculate_discount.py), so every system does the same work."""
    digest = hashlib.sha256(user_id.encode("utf-8")).digest()
    return 5 + int.from_bytes(digest[:8], "big") % 26


@dataclass
class FlowTiming:
    start_to_status: float  # seconds from "start" until the custom status with the discount was seen
    event_to_completed: float  # seconds from "raise BookingConfirmed" until the instance was seen completed
    polls: int | None = None  # status reads the client made; None where the API waits instead of polling


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--poll-ms", type=float, default=2.0)
    parser.add_argument("--time-cap", type=float, default=120.0, help="stop starting flows after this many s")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--warmup", type=int, default=0, help="untimed flows before the first phase")
    parser.add_argument("--warmup-concurrency", type=int, default=8)
    return parser.parse_args()


def _mean_polls(timings: list[FlowTiming]) -> float | None:
    counted = [t.polls for t in timings if t.polls is not None]
    return round(sum(counted) / len(counted), 1) if counted else None


def phase_result(timings: list[FlowTiming], wall: float, concurrency: int, errors: list[str],
                 capped: bool) -> dict[str, Any]:
    return {
        "concurrency": concurrency,
        "instances": len(timings),
        "wall_s": round(wall, 3),
        "orchestrations_per_s": round(len(timings) / wall, 2) if wall > 0 else None,
        "start_to_status": summary_ms([t.start_to_status for t in timings]),
        "event_to_completed": summary_ms([t.event_to_completed for t in timings]),
        "polls_per_flow": _mean_polls(timings),
        # every flow's latencies (ms), for the distribution charts
        "samples_ms": {"start_to_status": [round(t.start_to_status * 1000, 2) for t in timings],
                       "event_to_completed": [round(t.event_to_completed * 1000, 2) for t in timings]},
        "errors": len(errors),
        "first_errors": errors[:3],
        "capped": capped,
    }


def run_threaded_phase(label: str, flow: Callable[[int], FlowTiming], instances: int, concurrency: int,
                       time_cap: float, offset: int) -> dict[str, Any]:
    """Run ``instances`` flows with ``concurrency`` client threads; stop starting new ones after ``time_cap``."""
    progress = Progress(label, instances)
    timings: list[FlowTiming] = []
    errors: list[str] = []
    began = time.perf_counter()
    next_index = iter(range(instances))
    capped = False

    def worker() -> None:
        nonlocal capped
        for i in next_index:  # the iterator is shared; next() on a range iterator is atomic under the GIL
            if time.perf_counter() - began > time_cap:
                capped = True
                return
            try:
                timings.append(flow(offset + i))
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                if len(errors) > 20:
                    return
            progress.advance()

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    wall = time.perf_counter() - began
    progress.close()
    return phase_result(timings, wall, concurrency, errors, capped)


def emit(result: dict[str, Any]) -> None:
    """The one line of JSON the harness reads from stdout."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
