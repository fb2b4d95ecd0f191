"""The worker's own event loop, in its own thread: where the app's ``async def`` functions run.

The Python worker runs user code in a process apart from the Functions host, so an ``async def``
function that blocks (``time.sleep`` in a coroutine) stalls only the worker, never the host's HTTP
server, the Durable HTTP API or the engine. devhost keeps that separation with a second event loop in a
thread: the host's loop hands each coroutine over and awaits its result without blocking. The loop
lives as long as the worker, because the Durable SDK caches one aiohttp session bound to it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class UserCodeLoop:
    """An event loop running in a daemon thread; ``run`` awaits a coroutine on it from another loop."""

    def __init__(self, name: str = "worker-async") -> None:
        self._loop = asyncio.new_event_loop()
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
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        context = contextvars.copy_context()
        tasks: list[asyncio.Task[T]] = []

        def begin() -> None:
            if done.cancelled():
                coro.close()
                return
            task = self._loop.create_task(coro, context=context)
            tasks.append(task)
            task.add_done_callback(lambda t: _settle(t, done))

        self._loop.call_soon_threadsafe(begin)
        try:
            return await asyncio.wrap_future(done)
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


def _settle(task: asyncio.Task[T], done: concurrent.futures.Future[T]) -> None:
    try:
        if task.cancelled():
            done.cancel()
        elif task.exception() is not None:
            done.set_exception(task.exception())
        else:
            done.set_result(task.result())
    except concurrent.futures.InvalidStateError:
        pass  # the caller gave up (cancelled) first
