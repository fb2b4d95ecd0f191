"""Fixtures shared by every test layer."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import AzuriteProcess, start_temporary_azurite
from tests.host_keys import ALLOWED_ORIGIN, HostKeys, read_host_keys
from tests.hosts import RunningHost, launch_host, remote_host, stop_host

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


# Fixtures that start hosts or Azurite here: an e2e test using them cannot run against a remote host.
LOCAL_FIXTURES = frozenset({"storage_connection", "auth_host"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Against a remote host (E2E_BASE_URL) only black-box HTTP tests run; the others say why they skip."""
    if remote_host() is None:
        return
    for item in items:
        marker = item.get_closest_marker("local_only")
        fixtures = set(getattr(item, "fixturenames", ()))
        if marker is not None:
            item.add_marker(pytest.mark.skip(reason=f"E2E_BASE_URL is a remote host; this test {marker.args[0]}"))
        elif "host" in fixtures and "tests/e2e/" not in item.nodeid:
            item.add_marker(pytest.mark.skip(reason="E2E_BASE_URL is a remote host: only tests/e2e runs against it"))
        elif LOCAL_FIXTURES & fixtures and "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.skip(reason="E2E_BASE_URL is a remote host; this test starts its own host"))


@pytest.fixture(scope="session")
def host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    """The app running on devhost (or `func start`) against the session's Azurite, on a free port; or, with
    E2E_BASE_URL, the host already running there (no Azurite is started then).

    One host serves the e2e, browser and conformance suites; they isolate themselves with fresh ids.
    """
    remote = remote_host()
    if remote is not None:
        yield remote
        return
    storage_connection = request.getfixturevalue("storage_connection")
    running = launch_host(storage_connection, tmp_path_factory.mktemp("host"))
    try:
        yield running
    finally:
        stop_host(running)


@pytest.fixture(scope="session")
def auth_host(storage_connection: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    """The app on a host that checks keys (--enableAuth) and allows one CORS origin with credentials.

    One for the session: the auth, CORS, client and browser tests share it with fresh ids.
    """
    running = launch_host(storage_connection, tmp_path_factory.mktemp("auth-host"),
                          extra_args=["--enableAuth", "--cors", ALLOWED_ORIGIN, "--cors-credentials"])
    try:
        yield running
    finally:
        stop_host(running)


@pytest.fixture(scope="session")
def auth_keys(auth_host: RunningHost) -> HostKeys:
    """The auth host's keys, read from storage where the Functions host keeps them."""
    return read_host_keys(auth_host.storage_connection, ["start_orchestration", "confirm_reservation",
                                                         "select_city", "get_instance_status"])


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
