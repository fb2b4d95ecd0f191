"""Keeps the Azurite that devhost started running: notice when it exits, start it again, give up loudly.

Azurite keeps its data in its ``--location`` folder, so a restart on the same folder and ports brings the
task hub back (minus what it had not yet saved, which the durable extension deals with). Restarts are
bounded: after ``max_attempts`` failures in a row devhost says so once and reports the host as errored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from devhost.azurite import AzuriteProcess
from devhost.errors import AzuriteError

log = logging.getLogger("devhost.azurite")


@dataclass(frozen=True)
class RestartPolicy:
    """How often to look, how to back off between failed restarts, and when an Azurite counts as stable."""

    poll_seconds: float = 0.25
    backoff_seconds: Sequence[float] = (0.0, 1.0, 2.0, 4.0, 8.0)  # one entry per attempt
    stable_after_seconds: float = 60.0  # a restart that lived this long resets the attempt count
    start_timeout_seconds: float = 30.0


class AzuriteSupervisor:
    """Watches one ``AzuriteProcess``; ``on_give_up`` gets the error once restarts are exhausted."""

    def __init__(self, azurite: AzuriteProcess, *, policy: RestartPolicy | None = None,
                 on_give_up: Callable[[str], None] | None = None) -> None:
        self.azurite = azurite
        self.policy = policy or RestartPolicy()
        self.on_give_up = on_give_up
        self.restarts = 0
        self.failed: str | None = None  # the final error, once given up
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="azurite-supervisor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _watch(self) -> None:
        attempts = 0
        up_since = time.monotonic()
        while True:
            await asyncio.sleep(self.policy.poll_seconds)
            code = self.azurite.process.poll()
            if code is None:
                if time.monotonic() - up_since >= self.policy.stable_after_seconds:
                    attempts = 0
                continue
            log.warning("Azurite (pid %s) exited with code %s; starting it again on %s, ports %s",
                        self.azurite.process.pid, code, self.azurite.location, "/".join(map(str, self.azurite.ports)))
            error, used = await self._restart(attempts)
            attempts += used  # an Azurite that dies again soon keeps using up the same budget
            if error is not None:
                self.failed = error
                log.error("%s", error)
                if self.on_give_up is not None:
                    self.on_give_up(error)
                return
            up_since = time.monotonic()

    async def _restart(self, earlier_attempts: int) -> tuple[str | None, int]:
        """Try the remaining attempts: (None, attempts used) once Azurite answers again, else the final error."""
        last = "it kept exiting"
        used = 0
        for delay in self.policy.backoff_seconds[earlier_attempts:]:
            used += 1
            await asyncio.sleep(delay)
            try:
                await asyncio.to_thread(self.azurite.restart, self.policy.start_timeout_seconds)
            except (AzuriteError, OSError) as exc:
                last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.warning("Starting Azurite again failed: %s", last)
                continue
            self.restarts += 1
            return None, used
        return (f"Azurite could not be started again after {len(self.policy.backoff_seconds)} attempts "
                f"({last}); durable functions cannot reach storage until devhost is restarted."), used
