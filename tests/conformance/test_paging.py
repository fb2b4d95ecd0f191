"""Paging 250 instances through `x-ms-continuation-token`, on a host and task hub of its own (spec §2.3)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conformance.support import DurableApi
from tests.e2e.conftest import RunningHost, launch_host, stop_host

TOKEN = "x-ms-continuation-token"
COUNT = 250


@pytest.fixture(scope="module")
def heavy_host(storage_connection: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    """A second devhost on its own hub, so 250 instances never slow the shared host down."""
    running = launch_host(storage_connection, tmp_path_factory.mktemp("paging"),
                          hub_name=f"cfpaging{uuid.uuid4().hex[:10]}")
    try:
        yield running
    finally:
        stop_host(running)


@pytest.fixture(scope="module")
def many(heavy_host: RunningHost) -> tuple[str, list[str]]:
    """250 CityRecommender instances with one prefix, left waiting for a selection (one episode each)."""
    api = DurableApi(heavy_host, "rpc")
    prefix = f"page{uuid.uuid4().hex[:8]}-"
    wanted = [f"{prefix}{n:04d}" for n in range(COUNT)]

    def start(iid: str) -> str:
        return api.start("CityRecommender", 1, iid)

    with ThreadPoolExecutor(max_workers=16) as pool:
        started = list(pool.map(start, wanted))
    assert started == wanted
    return prefix, wanted


@pytest.mark.parametrize("kind", ["webhook", "rpc"])
def test_250_instances_page_by_100(heavy_host: RunningHost, many: tuple[str, list[str]], kind: str) -> None:
    """`top=100` gives pages of 100, 100 and 50, and every instance appears exactly once."""
    api = DurableApi(heavy_host, kind)
    prefix, wanted = many
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        reply = api.get("instances", {"instanceIdPrefix": prefix, "top": 100, "showInput": "false"},
                        headers={TOKEN: token} if token else None)
        assert reply.status == 200, reply
        pages.append([item["instanceId"] for item in reply.json])
        token = reply.header(TOKEN)
        if not token:
            break
        assert len(pages) < 10, "the continuation token never ran out"
    assert [len(page) for page in pages] == [100, 100, 50]
    seen = [iid for page in pages for iid in page]
    assert len(seen) == len(set(seen)) == COUNT
    assert sorted(seen) == wanted


def test_default_page_size_is_100(heavy_host: RunningHost, many: tuple[str, list[str]]) -> None:
    """Without `top` a page holds at most 100 items and a continuation token is returned."""
    api = DurableApi(heavy_host, "webhook")
    prefix, _ = many
    reply = api.get("instances", {"instanceIdPrefix": prefix})
    assert reply.status == 200 and len(reply.json) == 100
    assert reply.header(TOKEN)
