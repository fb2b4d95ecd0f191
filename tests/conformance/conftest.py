"""Fixtures of the conformance suite: the app on devhost (its own task hub), the two API bases, Azurite.

`host` and `sdk_loop` are the end-to-end suite's fixtures; defined again here they give this suite its
own devhost and hub when both suites run in one session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from tests.conformance.support import DurableApi
from tests.e2e.conftest import RunningHost, host, sdk_loop

__all__ = ["host", "sdk_loop"]


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
