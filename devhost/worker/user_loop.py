"""The worker's own event loop, in its own thread: where the app's ``async def`` functions run.

The Python worker runs user code in a process apart from the Functions host, so an ``async def``
function that blocks (``time.sleep`` in a coroutine) stalls only the worker, never the host's HTTP
server, the Durable HTTP API or the engine. devhost keeps that separation with a second event loop in a
thread: the host's loop hands each coroutine over and awaits its result without blocking. The loop
lives as long as the worker, because the Durable SDK caches one aiohttp session bound to it.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from devhost.event_loop import loop_factory, settle

T = TypeVar("T")


class UserCodeLoop:
    """An event loop running in a daemon thread; ``run`` awaits a coroutine on it from another loop."""

    def __init__(self, name: str = "worker-async") -> None:
        # The host's loop type (uvloop when installed): the host hands every coroutine over with
        # call_soon_threadsafe, which on asyncio's loop writes its self-pipe with the GIL released, so
        # the host's thread then waits for the GIL while this thread runs; uvloop's wake-up keeps it.
        self._loop = (loop_factory() or asyncio.new_event_loop)()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the user loop with the caller's context variables; cancelling the caller cancels it."""
        caller = asyncio.get_running_loop()
        done: asyncio.Future[T] = caller.create_future()
        context = contextvars.copy_context()
        tasks: list[asyncio.Task[T]] = []

        def begin() -> None:
            if done.cancelled():
                coro.close()
                return
            task = self._loop.create_task(coro, context=context)
            tasks.append(task)
            task.add_done_callback(lambda t: _report(t, caller, done))

        self._loop.call_soon_threadsafe(begin)
        try:
            return await done
        except asyncio.CancelledError:
            done.cancel()
            if tasks:
                self._loop.call_soon_threadsafe(tasks[0].cancel)
            raise

    async def close(self, final: Coroutine[Any, Any, Any] | None = None) -> None:
        """Run ``final`` (clean-up that must happen on this loop), then stop the loop and its thread."""
        if not self._thread.is_alive():
            if final is not None:
                final.close()
            return
        if final is not None:
            try:
                await asyncio.wait_for(self.run(final), timeout=5.0)
            except (TimeoutError, Exception):
                pass  # clean-up at exit is best effort
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 5.0)


def _report(task: asyncio.Task[T], caller: asyncio.AbstractEventLoop, done: asyncio.Future[T]) -> None:
    """On the user loop: hand the task's outcome straight to the caller's future on the caller's loop.

    One thread-safe call per invocation, without a concurrent.futures.Future (its lock and condition)
    and the extra callback chain ``asyncio.wrap_future`` adds between the two loops.
    """
    if task.cancelled():
        outcome: tuple[str, Any] = ("cancel", None)
    elif task.exception() is not None:
        outcome = ("error", task.exception())
    else:
        outcome = ("value", task.result())
    if not caller.is_closed():
        try:
            caller.call_soon_threadsafe(settle, done, *outcome)
        except RuntimeError:
            pass  # the caller's loop closed meanwhile: nobody waits for this any more
