"""The worker's speed-ups of the Durable SDK's replay give exactly what the SDK computes without them."""

from __future__ import annotations

import collections
import importlib
import time
from datetime import UTC, datetime, timedelta

import pytest
from dateutil.parser import parse as dateutil_parse
from hypothesis import given, settings
from hypothesis import strategies as st

from devhost.durable.history import format_timestamp
from devhost.worker import sdk_speedups

needs_fixed_zone_for_z = pytest.mark.skipif(
    sdk_speedups.utc_stamp_parser(dateutil_parse) is None,
    reason="dateutil's zone for Z may vary with the date here, so timestamps keep dateutil's parser")


def same(a: datetime, b: datetime) -> bool:
    return (a == b and a.replace(tzinfo=None) == b.replace(tzinfo=None) and type(a.tzinfo) is type(b.tzinfo)
            and a.utcoffset() == b.utcoffset() and a.fold == b.fold)


@needs_fixed_zone_for_z
@settings(max_examples=400, deadline=None)
@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30)),
       st.integers(min_value=0, max_value=9))
def test_timestamps_parse_as_dateutil_parses_them(moment: datetime, tick: int) -> None:
    """Every timestamp devhost writes, with 0-7 fraction digits, parses to dateutil's very result."""
    parse = sdk_speedups.utc_stamp_parser(dateutil_parse)
    assert parse is not None
    text = format_timestamp(moment.replace(tzinfo=UTC))
    seventh = text[:-1] + ("" if "." in text else ".") + "0" * max(0, 6 - len(text.partition(".")[2])) + f"{tick}Z"
    for sample in (text, seventh):
        assert same(parse(sample), dateutil_parse(sample)), sample


@needs_fixed_zone_for_z
@pytest.mark.parametrize("text", [
    "2026-12-02T04:37:22+01:00", "0001-01-01T00:00:00Z", "2026-12-02 04:37:22Z", "2026-12-02T04:37:22.12345678Z",
    "2026-12-02T04:37:22", "Dec 2 2026 04:37",
])
def test_other_shapes_go_to_dateutil(text: str) -> None:
    """Strings of another shape get dateutil's answer."""
    parse = sdk_speedups.utc_stamp_parser(dateutil_parse)
    assert parse is not None
    assert same(parse(text), dateutil_parse(text))


@needs_fixed_zone_for_z
def test_an_impossible_date_fails_as_in_dateutil() -> None:
    """A date that does not exist raises dateutil's error."""
    parse = sdk_speedups.utc_stamp_parser(dateutil_parse)
    assert parse is not None
    with pytest.raises(ValueError) as ours:
        parse("2026-02-30T00:00:00Z")
    with pytest.raises(ValueError) as theirs:
        dateutil_parse("2026-02-30T00:00:00Z")
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)


def test_a_named_tuple_class_is_made_once_per_name_and_fields() -> None:
    """The shared class builds tuples equal to a fresh class's; other calls get a fresh class."""
    first = sdk_speedups.namedtuple_once("Payload", ("is_success", "task_id_key"))
    assert sdk_speedups.namedtuple_once("Payload", ("is_success", "task_id_key")) is first
    fresh = collections.namedtuple("Payload", ("is_success", "task_id_key"))
    assert first(True, "Name") == fresh(True, "Name") and first._fields == fresh._fields
    assert sdk_speedups.namedtuple_once("Payload", ["a"]) is not sdk_speedups.namedtuple_once("Payload", ["a"])


def test_install_patches_the_sdk_and_its_events_keep_their_timestamps() -> None:
    """Once installed, the SDK's history events carry dateutil's timestamps; the switch leaves the SDK alone."""
    # The packages re-export classes of these names: the modules themselves are wanted.
    events = importlib.import_module(sdk_speedups.HISTORY_EVENT_MODULE)
    executor = importlib.import_module(sdk_speedups.EXECUTOR_MODULE)

    saved = events.dt_parse, executor.namedtuple
    try:
        events.dt_parse, executor.namedtuple = dateutil_parse, collections.namedtuple
        assert sdk_speedups.install({sdk_speedups.ENV_SWITCH: "0"}) == []
        assert events.dt_parse is dateutil_parse and executor.namedtuple is collections.namedtuple
        installed = sdk_speedups.install({})
        assert "namedtuple" in installed
        assert ("timestamps" in installed) == (sdk_speedups.utc_stamp_parser(dateutil_parse) is not None)
        stamp = format_timestamp(datetime(2026, 12, 2, 4, 37, 22, 123456, UTC) + timedelta(microseconds=1))
        event = events.HistoryEvent(EventType=0, EventId=-1, IsPlayed=False, Timestamp=stamp)
        assert same(event.timestamp, dateutil_parse(stamp))
        assert executor.TaskOrchestrationExecutor().event_to_SetTaskValuePayload
    finally:
        events.dt_parse, executor.namedtuple = saved


def test_the_zone_check_follows_daylight_saving() -> None:
    """Where the zone for Z is dateutil's UTC, or the local zone has no daylight saving, the fast path applies."""
    from dateutil import tz

    parse = sdk_speedups.utc_stamp_parser(dateutil_parse)
    zone = dateutil_parse("2000-01-01T00:00:00Z").tzinfo
    assert (parse is not None) == (not time.daylight or zone is tz.UTC)
