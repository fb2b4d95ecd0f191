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
class Bootstrapped:
    """One sample's q-th percentile, the range it took in 95 % of resamples, and every resample's value."""

    value: float
    low: float
    high: float
    resampled: tuple[float, ...]


def bootstrap_percentile(values: Sequence[float], q: float, *, resamples: int = 2000,
                         seed: int = 0) -> Bootstrapped | None:
    """The q-th percentile of ``values`` and how much it could move by chance: ``values`` resampled with
    replacement ``resamples`` times (its own size), the 2.5th-97.5th percentile of those values as its range.
    Seeded, so that a report made twice from the same results reads the same; give each sample its own seed."""
    if not values:
        return None
    draw = random.Random(seed)
    resampled = tuple(percentile(draw.choices(values, k=len(values)), q) or 0.0 for _ in range(resamples))
    value, low, high = percentile(values, q), percentile(resampled, 2.5), percentile(resampled, 97.5)
    assert value is not None and low is not None and high is not None
    return Bootstrapped(value, low, high, resampled)


def lower_share(first: Bootstrapped, second: Bootstrapped) -> float:
    """The share of resamples (the i-th of each, drawn apart) in which ``first``'s was below ``second``'s; ties
    count half."""
    pairs = list(zip(first.resampled, second.resampled, strict=True))
    return sum(1.0 if a < b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)


@dataclass(frozen=True)
class PercentileComparison:
    """Two samples' q-th percentiles, each with its bootstrap range, and how often the first was the lower."""

    first: Bootstrapped
    second: Bootstrapped
    first_lower_share: float


def compare_percentiles(first: Sequence[float], second: Sequence[float], q: float, *, resamples: int = 2000,
                        seed: int = 0) -> PercentileComparison | None:
    """``bootstrap_percentile`` of both samples (seeds ``seed`` and ``seed + 1``) and ``lower_share``; None
    when either is empty."""
    one = bootstrap_percentile(first, q, resamples=resamples, seed=seed)
    two = bootstrap_percentile(second, q, resamples=resamples, seed=seed + 1)
    if one is None or two is None:
        return None
    return PercentileComparison(one, two, lower_share(one, two))


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
