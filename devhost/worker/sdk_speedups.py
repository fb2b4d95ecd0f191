"""Two costs of the Durable SDK's replay that devhost's worker removes without changing any result.

Every orchestrator episode replays the instance's whole history through the SDK, and two steps of it
cost far more than the replay itself:

- *Timestamps.* ``HistoryEvent.__init__`` parses each event's ``Timestamp`` with dateutil's general
  parser, about 110 us a string: with a dozen events per episode that is over a millisecond, every
  episode again. The timestamps devhost writes all have one shape (``2026-12-02T04:37:22.1234567Z``),
  which a regular expression reads in a few microseconds. The result is the one dateutil gives: the
  same fields, the fraction cut to microseconds as dateutil cuts it, and the very ``tzinfo`` dateutil
  picks for a ``Z`` suffix (it may pick the local zone where that zone is named UTC), found once by
  asking dateutil itself. That ``tzinfo`` could only vary with the date where dateutil takes the local
  zone for ``Z`` and that zone has daylight saving time, so there dateutil keeps parsing every string;
  so does any string of another shape or a year before 1000.
- *A class per episode.* ``TaskOrchestrationExecutor.__init__`` builds a ``namedtuple`` class on every
  call, about 145 us; the same class made once serves every episode (its instances are equal tuples).

Both are patched into the SDK's own modules (its ``dt_parse`` and ``namedtuple`` names) in devhost's
worker only, when those names are still the dateutil and collections functions; the app, its
requirements and the deployed worker are untouched. ``DEVHOST_SDK_SPEEDUPS=0`` leaves the SDK as it is.
"""

from __future__ import annotations

import collections
import functools
import importlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any

from devhost.config import switched_on

log = logging.getLogger("devhost.worker")

ENV_SWITCH = "DEVHOST_SDK_SPEEDUPS"
HISTORY_EVENT_MODULE = "azure.durable_functions.models.history.HistoryEvent"
EXECUTOR_MODULE = "azure.durable_functions.models.TaskOrchestrationExecutor"

_UTC_STAMP = re.compile(r"([1-9]\d{3})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,7}))?Z")


def utc_stamp_parser(general: Callable[[str], datetime]) -> Callable[[str], datetime] | None:
    """A parser that reads ``YYYY-MM-DDTHH:MM:SS[.fffffff]Z`` itself and hands anything else to dateutil's
    ``general``; None where dateutil's zone for ``Z`` could depend on the date."""
    from dateutil import tz

    zone: tzinfo | None = general("2000-01-01T00:00:00Z").tzinfo
    if time.daylight and zone is not tz.UTC:
        return None

    def parse(text: Any) -> datetime:
        match = _UTC_STAMP.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            return general(text)
        year, month, day, hour, minute, second, fraction = match.groups()
        try:
            return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                            int(fraction.ljust(6, "0")[:6]) if fraction else 0, zone)
        except ValueError:
            return general(text)  # an impossible date: dateutil's own error

    return parse


@functools.lru_cache(maxsize=64)
def _shared_namedtuple(typename: str, field_names: tuple[str, ...]) -> type:
    return collections.namedtuple(typename, field_names)


def namedtuple_once(typename: str, field_names: Any, **kwargs: Any) -> type:
    """``collections.namedtuple``, one class per name and fields instead of a new one per call."""
    if kwargs or not isinstance(field_names, tuple):
        return collections.namedtuple(typename, field_names, **kwargs)
    return _shared_namedtuple(typename, field_names)


def install(environ: Mapping[str, str] | None = None) -> list[str]:
    """Patch what applies into the SDK's modules; returns the names of the patches put in place now (none
    for one already in place, as when the app is loaded again)."""
    if not switched_on(ENV_SWITCH, environ):
        return []
    installed: list[str] = []
    try:
        from dateutil.parser import parse as dateutil_parse

        events = importlib.import_module(HISTORY_EVENT_MODULE)
        executor = importlib.import_module(EXECUTOR_MODULE)
    except ImportError:
        return installed  # an app without the Durable SDK
    if getattr(events, "dt_parse", None) is dateutil_parse:
        parser = utc_stamp_parser(dateutil_parse)
        if parser is not None:
            events.dt_parse = parser  # type: ignore[attr-defined]
            installed.append("timestamps")
    elif getattr(getattr(events, "dt_parse", None), "__module__", None) != __name__:
        log.debug("The Durable SDK's HistoryEvent no longer parses with dateutil; left as it is")
    if getattr(executor, "namedtuple", None) is collections.namedtuple:
        executor.namedtuple = namedtuple_once  # type: ignore[attr-defined]
        installed.append("namedtuple")
    return installed
