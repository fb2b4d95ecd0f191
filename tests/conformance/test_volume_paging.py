"""Paging 250 instances through `x-ms-continuation-token` (spec §2.3), on a devhost and task hub of their own.

The instances are started through the Durable API (`POST orchestrators/CityRecommender/{id}`, ids sharing
one prefix) by the conftest's background builder; see `volume_in_background`.
"""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from tests.conformance.conftest import VOLUME_COUNT, Volume
from tests.conformance.support import DurableApi

TOKEN = "x-ms-continuation-token"


@pytest.fixture(scope="module")
def volume(volume_in_background: Future[Volume] | None) -> Volume:
    assert volume_in_background is not None
    return volume_in_background.result(timeout=300)


@pytest.mark.parametrize("kind", ["webhook", "rpc"])
def test_250_instances_page_by_100(volume: Volume, kind: str) -> None:
    """`top=100` gives pages of 100, 100 and 50, and every instance appears exactly once."""
    api = DurableApi(volume.host, kind)
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        reply = api.get("instances", {"instanceIdPrefix": volume.prefix, "top": 100, "showInput": "false"},
                        headers={TOKEN: token} if token else None)
        assert reply.status == 200, reply
        pages.append([item["instanceId"] for item in reply.json])
        token = reply.header(TOKEN)
        if not token:
            break
        assert len(pages) < 10, "the continuation token never ran out"
    assert [len(page) for page in pages] == [100, 100, 50]
    seen = [iid for page in pages for iid in page]
    assert len(seen) == len(set(seen)) == VOLUME_COUNT
    assert sorted(seen) == volume.ids


def test_default_page_size_is_100(volume: Volume) -> None:
    """Without `top` a page holds at most 100 items and a continuation token is returned."""
    reply = DurableApi(volume.host, "webhook").get("instances", {"instanceIdPrefix": volume.prefix})
    assert reply.status == 200 and len(reply.json) == 100
    assert reply.header(TOKEN)


def test_paging_combines_with_a_status_filter(volume: Volume) -> None:
    """A runtimeStatus filter pages too: every listed instance matches and none appears twice."""
    api = DurableApi(volume.host, "rpc")
    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        reply = api.get("instances", [("instanceIdPrefix", volume.prefix), ("top", 100),
                                      ("runtimeStatus", "Pending"), ("runtimeStatus", "Running")],
                        headers={TOKEN: token} if token else None)
        assert reply.status == 200
        assert all(item["runtimeStatus"] in ("Pending", "Running") for item in reply.json)
        seen += [item["instanceId"] for item in reply.json]
        token = reply.header(TOKEN)
        if not token:
            break
    assert len(seen) == len(set(seen)) == VOLUME_COUNT  # all are still waiting for a selection
