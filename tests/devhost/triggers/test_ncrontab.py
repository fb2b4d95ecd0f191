"""NCRONTAB parsing and next occurrences, checked against NCrontab's documented semantics and a brute-force
oracle (minute by minute) for generated schedules."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devhost.errors import ConfigError
from devhost.triggers.ncrontab import CronFormatError, CronSchedule
from devhost.triggers.timer import ConstantSchedule, parse_schedule

BASE = datetime(2026, 3, 14, 10, 20, 30)


@pytest.mark.parametrize(("expression", "after", "expected"), [
    ("*/5 * * * * *", BASE, datetime(2026, 3, 14, 10, 20, 35)),
    ("0 */5 * * * *", BASE, datetime(2026, 3, 14, 10, 25, 0)),
    ("0 0 * * * *", BASE, datetime(2026, 3, 14, 11, 0, 0)),
    ("0 30 9 * * 1-5", BASE, datetime(2026, 3, 16, 9, 30, 0)),  # Saturday → Monday
    ("0 30 9 * * Mon-Fri", BASE, datetime(2026, 3, 16, 9, 30, 0)),
    ("0 0 0 * * sun", BASE, datetime(2026, 3, 15, 0, 0, 0)),
    ("0 0 0 1 Jan *", BASE, datetime(2027, 1, 1, 0, 0, 0)),
    ("0 0 0 29 2 *", BASE, datetime(2028, 2, 29, 0, 0, 0)),
    ("0 0 0 13 * 5", BASE, datetime(2026, 11, 13, 0, 0, 0)),  # day AND weekday: the next Friday the 13th
    ("0 0 0 31 * *", BASE, datetime(2026, 3, 31, 0, 0, 0)),
    ("5,10 * * * * *", datetime(2026, 1, 1, 0, 0, 10), datetime(2026, 1, 1, 0, 1, 5)),
    ("10/20 * * * * *", datetime(2026, 1, 1, 0, 0, 0), datetime(2026, 1, 1, 0, 0, 10)),  # a/n: a to max
    ("10/20 * * * * *", datetime(2026, 1, 1, 0, 0, 50), datetime(2026, 1, 1, 0, 1, 10)),
    ("0 0-30/15 8 * * *", BASE, datetime(2026, 3, 15, 8, 0, 0)),
    ("*/15 * * * *", BASE, datetime(2026, 3, 14, 10, 30, 0)),  # five fields: no seconds
    ("59 59 23 31 12 *", datetime(2026, 12, 31, 23, 59, 59), datetime(2027, 12, 31, 23, 59, 59)),
])
def test_next_occurrence(expression: str, after: datetime, expected: datetime) -> None:
    """The first occurrence strictly after a moment, as NCrontab's GetNextOccurrence gives it."""
    assert CronSchedule.parse(expression).next_after(after) == expected


@pytest.mark.parametrize("expression", [
    "* * * * *  * *", "* * * *", "60 * * * * *", "* * 24 * * *", "* * * 0 * *", "* * * * 13 *",
    "* * * * * 7", "5-1 * * * * *", "*/0 * * * * *", "x * * * * *", "* * * * Foo *", "1-2-3 * * * * *",
])
def test_invalid_expressions_are_rejected(expression: str) -> None:
    """Out-of-range values, reversed ranges, zero steps, unknown names and wrong field counts fail."""
    with pytest.raises(CronFormatError):
        CronSchedule.parse(expression)


def test_timespan_schedules_and_monitor_defaults() -> None:
    """TimeSpans are constant schedules; the monitor is off only for more-than-once-a-minute schedules."""
    schedule, frequent = parse_schedule("00:00:10")
    assert schedule == ConstantSchedule(timedelta(seconds=10)) and frequent
    assert parse_schedule("1.00:00:00")[0] == ConstantSchedule(timedelta(days=1))
    assert parse_schedule("00:05:00")[1] is False
    assert parse_schedule("*/10 * * * * *")[1] is True
    assert parse_schedule("0 * * * * *")[1] is False
    assert parse_schedule("0 */5 * * * *")[1] is False
    with pytest.raises(ConfigError, match="not recognized as a valid cron expression or timespan"):
        parse_schedule("every five minutes")


def _matches(schedule: CronSchedule, moment: datetime) -> bool:
    weekday = (moment.weekday() + 1) % 7
    return (moment.second in schedule.seconds and moment.minute in schedule.minutes
            and moment.hour in schedule.hours and moment.day in schedule.days
            and moment.month in schedule.months and weekday in schedule.days_of_week)


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    single = value.map(str)
    ranged = st.tuples(value, value).map(lambda p: f"{min(p)}-{max(p)}")
    stepped = st.tuples(st.sampled_from(["*", str(low)]), st.integers(1, 7)).map(lambda p: f"{p[0]}/{p[1]}")
    part = st.one_of(st.just("*"), single, ranged, stepped)
    return st.lists(part, min_size=1, max_size=3).map(",".join)


@settings(max_examples=60, deadline=None)
@given(minutes=_field(0, 59), hours=_field(0, 23), days=_field(1, 28), weekdays=_field(0, 6),
       start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2030, 1, 1)))
def test_next_occurrence_matches_a_brute_force_search(minutes: str, hours: str, days: str, weekdays: str,
                                                      start: datetime) -> None:
    """For generated minute-level schedules, next_after equals the first matching minute found by scanning."""
    schedule = CronSchedule.parse(f"0 {minutes} {hours} {days} * {weekdays}")
    found = schedule.next_after(start)
    assert found > start and _matches(schedule, found)
    moment = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while moment < found:
        if not _matches(schedule, moment.replace(hour=min(schedule.hours), minute=min(schedule.minutes))):
            # No minute of this day can match (its date is excluded): go to the next midnight.
            moment = moment.replace(hour=0, minute=0) + timedelta(days=1)
            continue
        assert not _matches(schedule, moment), f"{moment} matches but {found} was returned"
        moment += timedelta(minutes=1)
