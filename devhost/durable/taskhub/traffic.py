"""Storage calls in flight on one task hub, so that housekeeping can wait for a lull.

Azurite serves one request at a time. A message deleted after a checkpoint (the clean-up of what the
checkpoint consumed) would otherwise be served just ahead of the next checkpoint or client write and add
its whole cost to that call's latency. Deletes wait for a moment when nothing else of the hub is in flight,
or at most a short patience, so under steady load they still go out promptly and nothing piles up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from devhost.durable.taskhub.storage_http import Reply, Transport


class Traffic:
    """How many calls are in flight, and a wait for the moment there are none."""

    def __init__(self) -> None:
        self.in_flight = 0
        self._lull: asyncio.Event | None = None

    def begin(self) -> None:
        self.in_flight += 1
        if self._lull is not None:
            self._lull.clear()

    def end(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._lull is not None:
            self._lull.set()

    async def lull(self, patience: float) -> None:
        """Return once no call is in flight, or after ``patience`` seconds."""
        if self.in_flight == 0:
            return
        if self._lull is None:
            self._lull = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._lull.wait(), patience)


class TrafficTransport:
    """A ``Transport`` that counts the calls it has in flight in a shared ``Traffic``."""

    def __init__(self, inner: Transport, traffic: Traffic) -> None:
        self.inner = inner
        self.traffic = traffic

    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes = b"", *,
                   table: bool) -> Reply:
        self.traffic.begin()
        try:
            return await self.inner.send(method, url, headers, body, table=table)
        finally:
            self.traffic.end()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # close() and the like
