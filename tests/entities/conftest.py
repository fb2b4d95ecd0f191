"""The entity test app on devhost: one host for the session, and helpers to start and finish its orchestrations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hosts import RunningHost, launch_host, stop_host
from tests.http_client import poll, request

APP_DIR = Path(__file__).resolve().parent / "app"


@pytest.fixture(scope="session")
def entity_host(storage_connection: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    """devhost running the entity test app on its own task hub."""
    running = launch_host(storage_connection, tmp_path_factory.mktemp("entities"), app_dir=APP_DIR)
    try:
        yield running
    finally:
        stop_host(running)


def start(host: RunningHost, name: str, value: Any) -> str:
    reply = request("POST", host.api(f"start/{name}"), value)
    assert reply.status == 202, reply
    return reply.json["id"]


def output_of(host: RunningHost, instance_id: str) -> Any:
    final = poll(lambda: request("GET", host.durable(f"instances/{instance_id}")),
                 lambda r: r.status == 200, timeout=60, what=f"instance {instance_id} finished").json
    assert final["runtimeStatus"] == "Completed", final.get("output")
    return final["output"]
