"""Fixtures shared by every test layer."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import AzuriteProcess, start_temporary_azurite
from tests.hosts import RunningHost, launch_host, stop_host

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteProcess]:
    """One Azurite for the whole run: free ports and a temporary on-disk location.

    On disk (not --inMemoryPersistence) because in-memory Azurite freezes for seconds while it
    cleans up deleted queue messages. Tests isolate themselves with their own task hub names.
    """
    yield from temporary_azurite()


@pytest.fixture
def own_azurite() -> Iterator[AzuriteProcess]:
    """An Azurite of one test's own, which it may kill and start again (fault injection)."""
    yield from temporary_azurite()


def temporary_azurite() -> Iterator[AzuriteProcess]:
    process = start_temporary_azurite(search_from=PROJECT_ROOT)
    try:
        yield process
    finally:
        process.stop()
        shutil.rmtree(process.location, ignore_errors=True)


@pytest.fixture(scope="session")
def storage_connection(azurite: AzuriteProcess) -> str:
    """Connection string of the session's Azurite."""
    return azurite.connection_string


@pytest.fixture(scope="session")
def host(storage_connection: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    """The app running on devhost (or `func start`) against the session's Azurite, on a free port.

    One host serves the e2e, browser and conformance suites; they isolate themselves with fresh ids.
    """
    running = launch_host(storage_connection, tmp_path_factory.mktemp("host"))
    try:
        yield running
    finally:
        stop_host(running)


@pytest.fixture(scope="session")
def sdk_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for Microsoft's Python client: it caches one aiohttp session per process."""
    loop = asyncio.new_event_loop()
    yield loop
    from azure.durable_functions.models.utils import http_utils

    session = getattr(http_utils, "_client_session", None)
    if session is not None and not session.closed:
        loop.run_until_complete(session.close())
    loop.close()


@pytest.fixture(scope="session")
def indexed_functions() -> dict[str, Any]:
    """Every function of the app by name; get_functions() may run only once per app object."""
    import function_app

    return {function.get_function_name(): function for function in function_app.app.get_functions()}
