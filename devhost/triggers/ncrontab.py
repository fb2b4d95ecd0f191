"""NCRONTAB schedules, with the semantics of the NCrontab library the timer trigger uses.

Six fields ``second minute hour day month day-of-week`` (five fields mean no seconds, as the host
accepts). Each field takes ``*``, numbers, ranges ``a-b``, lists ``a,b``, steps ``*/n`` / ``a-b/n`` and
``a/n`` (``a`` to the field's maximum); month and day names match by case-insensitive prefix
(``Jan``, ``mon``). Unlike Vixie cron, a day must match both the day-of-month and the day-of-week
fields. croniter differs on all three counts (seconds last, ``a/n``, day OR-ing), hence this module.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

from devhost.errors import ConfigError

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
# (name, minimum, maximum, value names)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...] | None], ...] = (
    ("Second", 0, 59, None),
    ("Minute", 0, 59, None),
    ("Hour", 0, 23, None),
    ("Day", 1, 31, None),
    ("Month", 1, 12, _MONTHS),
    ("DayOfWeek", 0, 6, _DAYS),
)
_SEARCH_YEARS = 8  # NCrontab gives up at an end date; 8 years covers every Feb 29 schedule


class CronFormatError(ConfigError):
    """The expression is not a valid NCRONTAB expression."""


def _value(text: str, kind: str, names: tuple[str, ...] | None, minimum: int) -> int:
    if not text:
        raise CronFormatError(f"a {kind} crontab field value cannot be empty")
    if text[0].isdigit():
        if not text.isdigit():
            raise CronFormatError(f"{text!r} is not a valid [{kind}] crontab field value")
        return int(text)
    if names is None:
        raise CronFormatError(f"{text!r} is not a valid [{kind}] crontab field value: it must be a number")
    for index, name in enumerate(names):
        if name.lower().startswith(text.lower()):
            return index + minimum
    raise CronFormatError(f"{text!r} is not a known value name. Use one of the following: {', '.join(names)}.")


def _parse_field(text: str, kind: str, minimum: int, maximum: int, names: tuple[str, ...] | None) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        every = 1
        if "/" in part:
            part, _, step = part.partition("/")
            if not step.isdigit() or int(step) == 0:
                raise CronFormatError(f"{text!r} is not a valid [{kind}] crontab field expression (bad step)")
            every = int(step)
        if part == "*":
            first, last = minimum, maximum
        elif "-" in part[1:]:
            low, _, high = part.partition("-")
            first, last = _value(low, kind, names, minimum), _value(high, kind, names, minimum)
        else:
            first = _value(part, kind, names, minimum)
            last = maximum if every > 1 else first
        if not (minimum <= first <= maximum and minimum <= last <= maximum) or first > last:
            raise CronFormatError(
                f"{text!r} is not a valid [{kind}] crontab field expression: values must be between "
                f"{minimum} and {maximum} (all inclusive), in ascending order"
            )
        values.update(range(first, last + 1, every))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed NCRONTAB expression; ``next_after`` is NCrontab's ``GetNextOccurrence``."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        parts = expression.split()
        if len(parts) == 5:
            parts = ["0", *parts]  # the host parses five fields without seconds
        if len(parts) != 6:
            raise CronFormatError(
                f"'{expression}' is not a valid crontab expression: it must have six fields "
                "(second minute hour day month day-of-week) or five"
            )
        fields = [_parse_field(p, kind, lo, hi, names) for p, (kind, lo, hi, names) in zip(parts, _FIELDS, strict=True)]
        return cls(expression, *fields)

    @property
    def fields(self) -> list[str]:
        return self.expression.split()

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment`` (same tzinfo; whole seconds)."""
        start = moment.replace(microsecond=0) + timedelta(seconds=1)
        limit = start.year + _SEARCH_YEARS
        year, month, day = start.year, start.month, start.day
        first_day = True
        while year <= limit:
            if month not in self.months:
                month, day, first_day = _next_month(year, month)
                if month == 1:
                    year += 1
                continue
            last_day = calendar.monthrange(year, month)[1]
            while day <= last_day:
                weekday = (calendar.weekday(year, month, day) + 1) % 7  # Sunday = 0, as .NET's DayOfWeek
                if day in self.days and weekday in self.days_of_week:
                    found = self._time_in_day(start if first_day else None)
                    if found is not None:
                        hour, minute, second = found
                        return start.replace(year=year, month=month, day=day, hour=hour, minute=minute,
                                             second=second)
                day += 1
                first_day = False
            month, day, first_day = _next_month(year, month)
            if month == 1:
                year += 1
        raise CronFormatError(f"the schedule '{self.expression}' has no occurrence within {_SEARCH_YEARS} years")

    def _time_in_day(self, not_before: datetime | None) -> tuple[int, int, int] | None:
        floor = (not_before.hour, not_before.minute, not_before.second) if not_before else (0, 0, 0)
        for hour in sorted(self.hours):
            if hour < floor[0]:
                continue
            for minute in sorted(self.minutes):
                if (hour, minute) < floor[:2]:
                    continue
                for second in sorted(self.seconds):
                    if (hour, minute, second) >= floor:
                        return hour, minute, second
        return None

    def fires_more_than_once_a_minute(self, moment: datetime) -> bool:
        """The host's rule for turning ``useMonitor`` off: every field above seconds is ``*`` and the
        seconds field fires more than once in the next minute."""
        if any(part != "*" for part in self.fields[-5:]):
            return False
        first = self.next_after(moment)
        return self.next_after(first) <= moment + timedelta(minutes=1)


def _next_month(year: int, month: int) -> tuple[int, int, bool]:
    return (1 if month == 12 else month + 1), 1, False
