"""The event loop devhost runs on: uvloop when it is installed, else asyncio's own.

uvloop (libuv) runs the same asyncio programs with a fraction of the event loop's and the sockets'
CPU, which profiles of the W1 benchmark put at about 40 % of devhost's CPU on asyncio's loop. It is a
speed-up of the local host only: the deployed app never imports it (the app's requirements.txt does
not list it), and ``DEVHOST_EVENT_LOOP=asyncio`` selects the standard loop, e.g. to compare.

``settle`` completes a loop's future with what another thread produced (through ``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

ENV_VAR = "DEVHOST_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None for asyncio's default loop."""
    if os.environ.get(ENV_VAR, "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def settle(done: asyncio.Future[Any], kind: str, value: Any) -> None:
    """On the caller's loop: complete ``done`` with a ``"value"`` or an ``"error"`` (anything else cancels
    it), unless the caller gave up (cancelled) first."""
    if done.done():
        return
    if kind == "value":
        done.set_result(value)
    elif kind == "error":
        done.set_exception(value)
    else:
        done.cancel()
