"""What the peer runners share: the flow's timing record, the phase loop, and how they take turns with devhost.

A peer runner sets its system up, runs its untimed warm-up flows, prints one JSON line saying it is ready,
then runs each phase the bench asks for on stdin (one JSON line each way) until stdin closes. The bench
keeps it alive for all of W1, so that the systems can take turns in the same minutes of the machine.
"""

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


def merge_phases(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One phase's figures from the chunks it ran in (``phase_result`` dicts): flows pooled, walls added."""
    samples = [zip(part["samples_ms"]["start_to_status"], part["samples_ms"]["event_to_completed"], strict=True)
               for part in parts]
    timings = [FlowTiming(status / 1000.0, completed / 1000.0) for chunk in samples for status, completed in chunk]
    merged = phase_result(timings, sum(part["wall_s"] for part in parts), parts[0]["concurrency"],
                          [e for part in parts for e in part["first_errors"]], any(part["capped"] for part in parts))
    counted = [(part["polls_per_flow"], part["instances"]) for part in parts if part.get("polls_per_flow") is not None]
    polled = sum(n for _, n in counted)
    merged["polls_per_flow"] = round(sum(p * n for p, n in counted) / polled, 1) if polled else None
    merged["errors"] = sum(part["errors"] for part in parts)
    merged["chunks"] = len(parts)
    return merged


def serve(info: dict[str, Any], run_phase: Callable[[str, int, int, int], dict[str, Any]]) -> None:
    """Say ready (with ``info``: name, version, setup), then run each phase asked for on stdin until it closes.

    A request is ``{"label", "instances", "concurrency", "offset"}``; the answer is the phase's
    ``phase_result``. ``run_phase(label, instances, concurrency, offset)`` runs one.
    """
    emit({"ready": True, **info})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        emit(run_phase(str(request["label"]), int(request["instances"]), int(request["concurrency"]),
                       int(request["offset"])))


def emit(result: dict[str, Any]) -> None:
    """The one line of JSON the harness reads from stdout."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
