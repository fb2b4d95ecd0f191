"""Hand-offs between the host's loop and user code: the worker's own loop thread and the sync thread pool."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from devhost.worker.invoker import run_in_thread
from devhost.worker.user_loop import UserCodeLoop


def test_a_coroutine_runs_on_the_user_loop_thread_and_its_outcome_comes_back() -> None:
    async def main() -> None:
        user = UserCodeLoop()
        try:
            async def where() -> str:
                return threading.current_thread().name

            async def fails() -> None:
                raise ValueError("from user code")

            assert await user.run(where()) == "worker-async"
            with pytest.raises(ValueError, match="from user code"):
                await user.run(fails())
        finally:
            await user.close()

    asyncio.run(main())


def test_cancelling_the_caller_cancels_the_user_task_and_a_cancelled_task_cancels_the_caller() -> None:
    async def main() -> None:
        user = UserCodeLoop()
        cancelled = threading.Event()
        try:
            async def waits() -> None:
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    cancelled.set()
                    raise

            caller = asyncio.ensure_future(user.run(waits()))
            await asyncio.sleep(0.1)
            caller.cancel()
            with pytest.raises(asyncio.CancelledError):
                await caller
            assert await asyncio.to_thread(cancelled.wait, 5)

            async def gives_up() -> None:
                raise asyncio.CancelledError

            with pytest.raises(asyncio.CancelledError):
                await user.run(gives_up())
        finally:
            await user.close()

    asyncio.run(main())


def test_run_in_thread_returns_raises_and_never_starts_a_call_cancelled_while_queued() -> None:
    async def main() -> None:
        with ThreadPoolExecutor(max_workers=1) as pool:
            total, thread = await run_in_thread(pool, lambda a, b: (a + b, threading.current_thread()), 1, 2)
            assert total == 3 and thread is not threading.current_thread()

            def fails() -> None:
                raise KeyError("sync")

            with pytest.raises(KeyError, match="sync"):
                await run_in_thread(pool, fails)
            ran: list[int] = []
            busy = run_in_thread(pool, time.sleep, 0.2)  # the only thread is taken
            queued = run_in_thread(pool, ran.append, 1)
            queued.cancel()
            await busy
            await asyncio.sleep(0.1)
            assert ran == []

    asyncio.run(main())


@pytest.mark.parametrize("setting", ["", "asyncio"])
def test_the_user_loop_is_of_the_hosts_loop_type(setting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's loop is uvloop when the host's is (asyncio's wake-up lets go of the GIL), asyncio's when asked."""
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.setenv("DEVHOST_EVENT_LOOP", setting)

    async def main() -> None:
        user = UserCodeLoop()
        try:
            async def loop_of_caller() -> asyncio.AbstractEventLoop:
                return asyncio.get_running_loop()

            loop = await user.run(loop_of_caller())
            assert isinstance(loop, uvloop.Loop) is (setting == "")
        finally:
            await user.close()

    asyncio.run(main())
