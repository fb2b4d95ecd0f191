"""ClosingLru: a bounded map of things a request names, closing what it pushes out."""

from __future__ import annotations

import asyncio

from devhost.bounded_cache import ClosingLru


def test_least_recently_used_is_closed_and_the_size_stays_bounded() -> None:
    """3,000 distinct keys through a map of 4: four stay open, every other one is closed exactly once."""
    closed: list[str] = []

    async def close(value: str) -> None:
        closed.append(value)

    async def scenario() -> ClosingLru[str, str]:
        lru: ClosingLru[str, str] = ClosingLru(4, close)
        lru.get_or_create("keep", lambda: "keep")
        for i in range(3000):
            lru.get_or_create("keep", lambda: "never")  # used again and again: never evicted
            lru.get_or_create(f"hub{i}", lambda i=i: f"hub{i}")
            assert len(lru) <= 4
        await asyncio.sleep(0)
        await lru.close_all()
        return lru

    lru = asyncio.run(scenario())
    assert len(lru) == 0
    assert sorted(closed) == sorted(["keep", *(f"hub{i}" for i in range(3000))])
    assert len(set(closed)) == len(closed)


def test_a_failing_close_does_not_escape() -> None:
    async def close(value: int) -> None:
        raise RuntimeError("socket already gone")

    async def scenario() -> None:
        lru: ClosingLru[int, int] = ClosingLru(1, close)
        lru.get_or_create(1, lambda: 1)
        lru.get_or_create(2, lambda: 2)
        await lru.close_all()

    asyncio.run(scenario())
