"""Whether the task hub's storage answers, as devhost's own calls see it, and one log line per outage.

An outage starts with the first call that cannot reach storage (refused, reset, timed out) and ends
with the next call that gets an answer. While it lasts, the Durable HTTP API answers 503 with
``Retry-After`` and ``/admin/host/status`` says storage is down; the log says so once when it starts
and once when it ends (with how many calls failed), instead of a traceback per failed poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import ClientConnectionError

log = logging.getLogger("devhost.storage")

RETRY_AFTER_SECONDS = 5
# Error codes that show storage lost what devhost wrote (Azurite killed before it saved, a hub deleted).
LOST_WRITE_CODES = frozenset({"QueueNotFound", "TableNotFound", "ContainerNotFound"})


def unreachable_reason(exc: BaseException) -> str | None:
    """Why storage could not be reached, if that is what ``exc`` (or what caused it) says; else None."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ClientConnectionError | ConnectionError | TimeoutError | asyncio.TimeoutError
                      | ServiceRequestError | ServiceResponseError):
            text = str(current).splitlines()[0] if str(current) else type(current).__name__
            return text[:300]
        current = current.__cause__ or current.__context__
    return None


def lost_write_code(exc: BaseException) -> str | None:
    """The storage error code in ``exc``'s chain that shows writes were lost, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "code", None) or getattr(current, "error_code", None)
        if isinstance(code, str) and code in LOST_WRITE_CODES:
            return code
        if any(c in str(current) for c in LOST_WRITE_CODES):
            return next(c for c in LOST_WRITE_CODES if c in str(current))
        current = current.__cause__ or current.__context__
    return None


class StorageHealth:
    """The storage account's reachability: an outage is the time between a failed call and the next answer.

    ``on_recovery`` callbacks run after an outage and whenever storage shows it lost writes: what devhost
    cached may no longer be what storage holds, so they drop caches and re-create a missing task hub.
    """

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.reason = ""
        self.failed_calls = 0
        self.outages = 0
        self.recoveries = 0
        self._callbacks: list[Callable[[], Awaitable[None]]] = []
        self._recovering: asyncio.Task[None] | None = None
        self._again = False

    def on_recovery(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._callbacks.append(callback)

    def lost_writes(self, exc: BaseException, what: str = "a storage call") -> bool:
        """If ``exc`` shows storage lost devhost's writes, start a recovery (then True: no need to log it)."""
        code = lost_write_code(exc)
        if code is None:
            return False
        if self._recovering is None:
            log.warning("Storage no longer has what devhost wrote (%s: %s); dropping caches and re-creating "
                        "the task hub", what, code)
        self.recover()
        return True

    def recover(self) -> None:
        """Run the recovery callbacks once (again after the current run, if one is under way)."""
        if self._recovering is not None:
            self._again = True
            return
        self._recovering = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        try:
            while True:
                self._again = False
                for callback in self._callbacks:
                    try:
                        await callback()
                    except Exception as exc:
                        if not self.failed(exc, "recovering the task hub"):
                            log.warning("Recovering the task hub failed: %s", exc)
                self.recoveries += 1
                if not self._again:
                    return
                await asyncio.sleep(1.0)  # lost writes keep showing until the recovery is done; batch them
        finally:
            self._recovering = None

    @property
    def available(self) -> bool:
        return self.down_since is None

    def failed(self, exc: BaseException, what: str = "a storage call") -> bool:
        """Record ``exc`` if it means storage is unreachable (then True: the caller need not log it)."""
        reason = unreachable_reason(exc)
        if reason is None:
            return False
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.failed_calls = 0
            self.outages += 1
            self.reason = reason
            log.error("Storage is unreachable (%s failed: %s); the Durable API answers 503 until it is back",
                      what, reason)
        self.failed_calls += 1
        return True

    def answered(self) -> None:
        """A storage call got an answer: an outage, if there was one, is over."""
        if self.down_since is None:
            return
        lasted = time.monotonic() - self.down_since
        self.down_since = None
        log.warning("Storage is reachable again after %.1f s (%d calls failed meanwhile)", lasted, self.failed_calls)
        # Storage may have restarted and lost its last writes: what devhost cached is no longer trusted.
        self.recover()

    def describe(self) -> dict[str, object]:
        """For /admin/host/status."""
        if self.down_since is None:
            return {"state": "Available", "outages": self.outages}
        return {"state": "Unreachable", "reason": self.reason, "downForSeconds": round(time.monotonic() -
                self.down_since, 1), "failedCalls": self.failed_calls, "outages": self.outages}


def queue_endpoint(connection_string: str) -> tuple[str, int] | None:
    """Host and port of the account's queue service, from a storage connection string."""
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    settings = {k.strip().lower(): v.strip() for k, v in parts.items()}
    if settings.get("usedevelopmentstorage", "").lower() == "true":
        return "127.0.0.1", 10001
    if "queueendpoint" in settings:
        url = urlsplit(settings["queueendpoint"])
        if url.hostname is None:
            return None
        return url.hostname, url.port or (443 if url.scheme == "https" else 80)
    account = settings.get("accountname")
    if not account:
        return None
    https = settings.get("defaultendpointsprotocol", "https").lower() == "https"
    return f"{account}.queue.{settings.get('endpointsuffix', 'core.windows.net')}", 443 if https else 80


async def probe_until_back(health: StorageHealth, endpoint: tuple[str, int], interval: float = 1.0) -> None:
    """While storage is down, try to connect to it every ``interval`` s; the first connection ends the outage."""
    host, port = endpoint
    while True:
        await asyncio.sleep(interval)
        if health.available:
            continue
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=2.0)
        except (OSError, TimeoutError):
            continue
        writer.close()
        health.answered()
