"""Small helpers: percentiles and how sure they are, a stderr progress bar, a stopwatch."""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class PercentileComparison:
    """Two samples' q-th percentiles, each with a 95 % bootstrap interval, and how often the first was lower."""

    first: float
    first_low: float
    first_high: float
    second: float
    second_low: float
    second_high: float
    first_lower_share: float  # of the resamples, the share in which the first's percentile was below the second's


def compare_percentiles(first: Sequence[float], second: Sequence[float], q: float, *, resamples: int = 2000,
                        seed: int = 0) -> PercentileComparison | None:
    """The q-th percentiles of ``first`` and ``second`` and how much they could move by chance: each sample is
    resampled with replacement ``resamples`` times (its own size, the two independently), which gives each
    percentile's 2.5th-97.5th percentile interval and the share of resamples in which ``first``'s was the lower
    (ties count half). Seeded, so that a report made twice from the same results reads the same."""
    if not first or not second:
        return None
    draw = random.Random(seed)
    ones: list[float] = []
    twos: list[float] = []
    lower = 0.0
    for _ in range(resamples):
        one = percentile(draw.choices(first, k=len(first)), q)
        two = percentile(draw.choices(second, k=len(second)), q)
        assert one is not None and two is not None
        ones.append(one)
        twos.append(two)
        lower += 1.0 if one < two else 0.5 if one == two else 0.0

    def interval(values: list[float]) -> tuple[float, float]:
        low, high = percentile(values, 2.5), percentile(values, 97.5)
        assert low is not None and high is not None
        return low, high

    first_q, second_q = percentile(first, q), percentile(second, q)
    assert first_q is not None and second_q is not None
    return PercentileComparison(first_q, *interval(ones), second_q, *interval(twos), lower / resamples)


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """p50/p95/p99/max/mean of durations given in seconds, in milliseconds (rounded to 0.1 ms)."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000.0, 1)

    return {
        "n": len(seconds),
        "p50_ms": ms(percentile(seconds, 50)),
        "p95_ms": ms(percentile(seconds, 95)),
        "p99_ms": ms(percentile(seconds, 99)),
        "max_ms": ms(max(seconds) if seconds else None),
        "mean_ms": ms(sum(seconds) / len(seconds) if seconds else None),
    }


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, label: str, total: int, width: int = 28) -> None:
        self.label = label
        self.total = max(total, 1)
        self.width = width
        self.done = 0
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self._last_draw = 0.0
        self._last_decile = -1
        self.draw(force=True)

    def advance(self, step: int = 1) -> None:
        self.done += step
        self.draw()

    def set(self, done: int) -> None:
        self.done = done
        self.draw()

    def draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        fraction = min(self.done / self.total, 1.0)
        if self.tty:
            if not force and now - self._last_draw < 0.1 and self.done < self.total:
                return
            self._last_draw = now
            filled = int(fraction * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            sys.stderr.write(f"\r  {self.label:<34} [{bar}] {self.done}/{self.total} {now - self.started:6.1f}s")
            sys.stderr.flush()
        else:
            decile = int(fraction * 10)
            if force or decile > self._last_decile:
                self._last_decile = decile
                sys.stderr.write(f"  {self.label}: {self.done}/{self.total} ({now - self.started:.1f}s)\n")
                sys.stderr.flush()

    def close(self, note: str = "") -> None:
        elapsed = time.monotonic() - self.started
        if self.tty:
            self.draw(force=True)
            sys.stderr.write(f"  {note}\n" if note else "\n")
        else:
            sys.stderr.write(f"  {self.label}: done in {elapsed:.1f}s {note}\n")
        sys.stderr.flush()


def log(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()
