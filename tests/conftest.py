"""Fixtures shared by every test layer."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.azurite import AzuriteProcess, start_temporary_azurite

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteProcess]:
    """One Azurite for the whole run: free ports and a temporary on-disk location.

    On disk (not --inMemoryPersistence) because in-memory Azurite freezes for seconds while it
    cleans up deleted queue messages. Tests isolate themselves with their own task hub names.
    """
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
