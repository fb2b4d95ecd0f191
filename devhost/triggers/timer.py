"""The timer trigger, as the WebJobs timer extension runs it.

Schedules are NCRONTAB (six fields, or five) or TimeSpans (``hh:mm:ss``). With ``useMonitor`` (on by
default, off for schedules firing more than once a minute) the schedule status lives in the blob
``azure-webjobs-hosts/timers/{hostId}/Host.Functions.{name}/status`` as ``{"Last", "Next",
"LastUpdated"}``; at start a recorded ``Next`` that has passed means a run was missed, and the
function runs at once with ``IsPastDue``. ``runOnStartup`` runs it at start otherwise.
Times are the machine's local time, as the host uses. Daylight-saving fold adjustments are not made.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from devhost.config import ConfigError
from devhost.triggers.ncrontab import CronFormatError, CronSchedule

log = logging.getLogger("devhost.triggers.timer")

HOSTS_CONTAINER = "azure-webjobs-hosts"
_DEFAULT_TIME = datetime(1, 1, 1)  # .NET's default(DateTime)
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$")


class Schedule(Protocol):
    def next_after(self, moment: datetime) -> datetime: ...


@dataclass(frozen=True)
class ConstantSchedule:
    """A TimeSpan schedule: every ``interval`` from the last occurrence."""

    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


def parse_schedule(expression: str) -> tuple[Schedule, bool]:
    """(schedule, fires more than once a minute) for a cron expression or a TimeSpan."""
    try:
        cron = CronSchedule.parse(expression)
    except CronFormatError as cron_error:
        interval = _parse_timespan(expression)
        if interval is None:
            raise ConfigError(f"The schedule expression '{expression}' was not recognized as a valid cron "
                              f"expression or timespan string ({cron_error}).") from None
        return ConstantSchedule(interval), interval < timedelta(minutes=1)
    return cron, cron.fires_more_than_once_a_minute(datetime.now())


def _parse_timespan(text: str) -> timedelta | None:
    text = text.strip()
    if text.isdigit():
        return timedelta(days=int(text))  # .NET reads a bare number as days
    m = _TIMESPAN.match(text)
    if not m:
        return None
    days, hours, minutes, seconds, fraction = m.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
        return None
    value = timedelta(days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(seconds or 0),
                      microseconds=int(float(f"0.{fraction}") * 1e6) if fraction else 0)
    return value if value > timedelta(0) else None


def local_now() -> datetime:
    return datetime.now().astimezone()


def format_time(moment: datetime) -> str:
    if moment.replace(tzinfo=None) == _DEFAULT_TIME:
        return "0001-01-01T00:00:00"
    return moment.isoformat()


def parse_time(text: Any) -> datetime:
    if not text:
        return _DEFAULT_TIME.replace(tzinfo=local_now().tzinfo)
    value = re.sub(r"(\.\d{6})\d+", r"\1", str(text)).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=local_now().tzinfo)
    return parsed.astimezone()


@dataclass
class ScheduleStatus:
    last: datetime
    next: datetime
    last_updated: datetime

    def to_json(self) -> dict[str, str]:
        return {"Last": format_time(self.last), "Next": format_time(self.next),
                "LastUpdated": format_time(self.last_updated)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScheduleStatus:
        return cls(parse_time(data.get("Last")), parse_time(data.get("Next")), parse_time(data.get("LastUpdated")))


def is_default(moment: datetime) -> bool:
    return moment.replace(tzinfo=None) == _DEFAULT_TIME


class StatusStore:
    """The schedule status blobs in ``azure-webjobs-hosts``."""

    def __init__(self, blobs: Any, host_id: str) -> None:
        self.blobs = blobs
        self.host_id = host_id

    def _blob(self, timer_name: str) -> Any:
        return self.blobs.get_blob_client(HOSTS_CONTAINER, f"timers/{self.host_id}/{timer_name}/status")

    async def get(self, timer_name: str) -> ScheduleStatus | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            downloader = await self._blob(timer_name).download_blob()
            return ScheduleStatus.from_json(json.loads(await downloader.readall()))
        except ResourceNotFoundError:
            return None

    async def put(self, timer_name: str, status: ScheduleStatus) -> None:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        body = json.dumps(status.to_json()).encode()
        try:
            await self._blob(timer_name).upload_blob(body, overwrite=True)
        except ResourceNotFoundError:
            try:
                await self.blobs.create_container(HOSTS_CONTAINER)
            except ResourceExistsError:
                pass
            await self._blob(timer_name).upload_blob(body, overwrite=True)


async def check_past_due(store: StatusStore, timer_name: str, now: datetime, schedule: Schedule,
                         status: ScheduleStatus | None) -> tuple[timedelta, ScheduleStatus]:
    """The host's ``CheckPastDueAsync``: how late the recorded next run is (zero if not), and the status."""
    if status is None:
        status = ScheduleStatus(_DEFAULT_TIME.replace(tzinfo=now.tzinfo), schedule.next_after(now), now)
        await store.put(timer_name, status)
    else:
        if not is_default(status.last):
            expected, updated = schedule.next_after(status.last), status.last
        elif not is_default(status.last_updated):
            expected, updated = schedule.next_after(status.last_updated), status.last_updated
        else:
            expected, updated = schedule.next_after(now), now
        if status.next != expected:
            # The schedule changed since the status was written: a passed occurrence is not "missed".
            if now > expected:
                expected, updated = schedule.next_after(now), now
            status = ScheduleStatus(_DEFAULT_TIME.replace(tzinfo=now.tzinfo), expected, updated)
            await store.put(timer_name, status)
    return (now - status.next if now > status.next else timedelta(0)), status


Invoke = Callable[[dict[str, Any]], Awaitable[None]]


class TimerListener:
    """Runs one timer function on its schedule; invocations never overlap."""

    def __init__(self, function_name: str, schedule: Schedule, *, run_on_startup: bool,
                 store: StatusStore | None, invoke: Invoke) -> None:
        self.function_name = function_name
        self.timer_name = f"Host.Functions.{function_name}"
        self.schedule = schedule
        self.run_on_startup = run_on_startup
        self.store = store  # None when useMonitor is off
        self.invoke = invoke
        self.status: ScheduleStatus | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        now = local_now()
        past_due = timedelta(0)
        if self.store is not None:
            recorded = await self.store.get(self.timer_name)
            past_due, self.status = await check_past_due(self.store, self.timer_name, now, self.schedule, recorded)
        if self.status is None:
            default = _DEFAULT_TIME.replace(tzinfo=now.tzinfo)
            self.status = ScheduleStatus(default, self.schedule.next_after(now), default)
        upcoming, moment = [], now
        for _ in range(5):
            moment = self.schedule.next_after(moment)
            upcoming.append(moment.isoformat())
        log.info("The next 5 occurrences of the '%s' schedule will be:\n%s", self.function_name, "\n".join(upcoming))
        startup = "IsPastDue" if past_due > timedelta(0) else ("RunOnStartup" if self.run_on_startup else None)
        self._task = asyncio.create_task(self._run(startup), name=f"timer {self.function_name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def timer_info(self, *, past_due: bool) -> dict[str, Any]:
        """The TimerInfo JSON the worker decodes into ``func.TimerRequest``."""
        return {
            "Schedule": {"AdjustForDST": True},
            "ScheduleStatus": self.status.to_json() if self.store is not None and self.status else None,
            "IsPastDue": past_due,
        }

    async def _run(self, startup: str | None) -> None:
        if startup is not None:
            if startup == "IsPastDue":
                log.info("Function '%s' is past due on startup. Executing now.", self.function_name)
            await self._fire(local_now(), past_due=startup == "IsPastDue", unscheduled=True)
        while True:
            now = local_now()
            assert self.status is not None
            due = self.status.next if self.status.next > now else self.schedule.next_after(now)
            await asyncio.sleep(max(0.0, (due - local_now()).total_seconds()))
            await self._fire(due, past_due=False, unscheduled=False)

    async def _fire(self, when: datetime, *, past_due: bool, unscheduled: bool) -> None:
        try:
            await self.invoke(self.timer_info(past_due=past_due))
        except Exception:
            pass  # the failure is logged by the worker; a failing run never stops the schedule
        invoked_at = when
        if not unscheduled and self.status is not None and self.status.next > invoked_at:
            invoked_at = self.status.next
        self.status = ScheduleStatus(invoked_at, self.schedule.next_after(invoked_at), invoked_at)
        if self.store is not None:
            try:
                await self.store.put(self.timer_name, self.status)
            except Exception:
                log.exception("Function '%s' failed to update the timer trigger status.", self.function_name)
