"""How sure a percentile is: bootstrap intervals and the share of resamples in which one sample's is lower."""

from __future__ import annotations

import random

from bench import stats


def _sample(centre: float, spread: float, count: int = 400, seed: int = 1) -> list[float]:
    draw = random.Random(seed)
    return [centre + draw.uniform(-spread, spread) for _ in range(count)]


def test_a_clearly_lower_sample_is_lower_in_every_resample() -> None:
    """A sample whose every value is below the other's is the lower one in all resamples, at p50 and p95."""
    for q in (50, 95):
        found = stats.compare_percentiles(_sample(10, 1), _sample(20, 1, seed=2), q, resamples=300)
        assert found is not None
        assert found.first_lower_share == 1.0
        assert found.first.high < found.second.low


def test_the_same_sample_twice_is_level() -> None:
    """Two draws from one distribution come out near half and half, and each interval holds its percentile."""
    first, second = _sample(15, 5, seed=3), _sample(15, 5, seed=4)
    found = stats.compare_percentiles(first, second, 95, resamples=1000)
    assert found is not None
    assert 0.1 < found.first_lower_share < 0.9
    assert found.first.low <= found.first.value <= found.first.high
    assert found.second.low <= found.second.value <= found.second.high
    assert found.first.value == stats.percentile(first, 95)


def test_the_comparison_is_seeded() -> None:
    """The same samples give the same intervals and shares, so a report regenerated from one run reads the same."""
    first, second = _sample(15, 5, seed=5), _sample(16, 5, seed=6)
    assert stats.compare_percentiles(first, second, 95) == stats.compare_percentiles(first, second, 95)


def test_no_samples_no_comparison() -> None:
    """Without flows on either side there is nothing to compare."""
    assert stats.compare_percentiles([], [1.0], 50) is None
    assert stats.compare_percentiles([1.0], [], 50) is None


def test_one_bootstrap_serves_every_comparison() -> None:
    """A sample bootstrapped once compares with several others, and against itself it is level."""
    mine = stats.bootstrap_percentile(_sample(10, 1), 95, resamples=500)
    slower = stats.bootstrap_percentile(_sample(20, 1, seed=2), 95, resamples=500, seed=1)
    assert mine is not None and slower is not None
    assert stats.lower_share(mine, slower) == 1.0
    assert stats.lower_share(slower, mine) == 0.0
    assert stats.lower_share(mine, mine) == 0.5
    assert stats.bootstrap_percentile([], 95) is None
