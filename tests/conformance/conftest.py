"""Fixtures of the conformance suite: the two API bases and Azurite, beside the session's `host`.

Tests find their own instances by fresh ids and prefixes, so they share the session's devhost. The
paging tests need 250 instances; when they
are selected, a second Azurite and devhost build those in a background thread from the first test on,
so the work overlaps the rest of the suite instead of adding to it.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from devhost.azurite import AzuriteProcess, start_temporary_azurite
from tests.conformance.support import DurableApi
from tests.hosts import PROJECT_ROOT, RunningHost, launch_host, stop_host

VOLUME_MODULE = "test_volume_paging.py"
VOLUME_COUNT = 250


@dataclass
class Volume:
    """250 waiting CityRecommender instances sharing `prefix`, on a devhost and Azurite of their own."""

    host: RunningHost
    azurite: AzuriteProcess
    prefix: str
    ids: list[str]


def build_volume(tmp: Path) -> Volume:
    """Start Azurite, devhost and the instances (one episode each, then they wait for a selection)."""
    azurite = start_temporary_azurite(search_from=PROJECT_ROOT)
    try:
        running = launch_host(azurite.connection_string, tmp, hub_name=f"cfvolume{uuid.uuid4().hex[:10]}")
        try:
            api = DurableApi(running, "rpc")
            prefix = f"page{uuid.uuid4().hex[:8]}-"
            wanted = [f"{prefix}{n:04d}" for n in range(VOLUME_COUNT)]
            with ThreadPoolExecutor(max_workers=16) as pool:
                started = list(pool.map(lambda iid: api.start("CityRecommender", 1, iid), wanted))
            assert started == wanted
            return Volume(running, azurite, prefix, wanted)
        except BaseException:
            stop_host(running, hard=True)
            raise
    except BaseException:
        stop_volume_storage(azurite)
        raise


def stop_volume_storage(azurite: AzuriteProcess) -> None:
    azurite.stop()
    shutil.rmtree(azurite.location, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def volume_in_background(request: pytest.FixtureRequest,
                         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[Volume] | None]:
    """The paging tests' instances, built in the background when those tests are selected (else None)."""
    if not any(VOLUME_MODULE in item.nodeid for item in request.session.items):
        yield None
        return
    builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="volume")
    future = builder.submit(build_volume, tmp_path_factory.mktemp("volume"))
    try:
        yield future
    finally:
        builder.shutdown(wait=True)
        if future.exception() is None:
            volume = future.result()
            stop_host(volume.host, hard=True)  # nothing of that hub is kept, so no graceful drain
            stop_volume_storage(volume.azurite)


@pytest.fixture(params=["webhook", "rpc"])
def api(request: pytest.FixtureRequest, host: RunningHost) -> DurableApi:
    """The Durable HTTP API on the public webhook path and on the RPC path (same handler)."""
    return DurableApi(host, request.param)


@pytest.fixture
def webhook(host: RunningHost) -> DurableApi:
    """The Durable HTTP API on `/runtime/webhooks/durabletask/` only."""
    return DurableApi(host, "webhook")


@pytest.fixture
def rpc(host: RunningHost) -> DurableApi:
    """The Durable HTTP API on the RPC path `/durabletask/` only."""
    return DurableApi(host, "rpc")


@pytest.fixture(scope="session")
def table_service(host: RunningHost) -> Iterator[TableServiceClient]:
    """Azurite's table service, for reading the task hub's rows directly."""
    with TableServiceClient.from_connection_string(host.storage_connection) as service:
        yield service


@pytest.fixture(scope="session")
def blob_service(host: RunningHost) -> Iterator[BlobServiceClient]:
    """Azurite's blob service, for reading the task hub's large-message blobs directly."""
    with BlobServiceClient.from_connection_string(host.storage_connection) as service:
        yield service
