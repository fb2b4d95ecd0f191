"""A least-recently-used map whose evicted values are closed: for things a request names (a task hub).

Every distinct ``?taskHub=`` value used to leave a storage client (sessions, sockets) behind for the
life of the process; with this map at most ``capacity`` stay open and the rest are closed when pushed out.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

log = logging.getLogger("devhost")


class ClosingLru(Generic[K, V]):
    """At most ``capacity`` values; the least recently used is closed (in the background) when one more comes."""

    def __init__(self, capacity: int, close: Callable[[V], Awaitable[None]]) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._close = close
        self._items: OrderedDict[K, V] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get_or_create(self, key: K, create: Callable[[], V]) -> V:
        """The value for ``key``, made with ``create`` when missing; marks it most recently used."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = create()
        self._items[key] = value
        while len(self._items) > self.capacity:
            _, evicted = self._items.popitem(last=False)
            task = asyncio.get_running_loop().create_task(self._close_quietly(evicted))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return value

    def values(self) -> list[V]:
        return list(self._items.values())

    async def _close_quietly(self, value: V) -> None:
        try:
            await self._close(value)
        except Exception as exc:  # closing is clean-up; a failure must not reach the request that evicted it
            log.debug("Closing an evicted value failed: %s", exc)

    async def close_all(self) -> None:
        """Close every value, and wait for evictions still closing."""
        values, self._items = list(self._items.values()), OrderedDict()
        await asyncio.gather(*(self._close_quietly(v) for v in values), *self._closing)
