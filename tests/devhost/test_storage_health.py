"""StorageHealth: one log line per outage, recovery after it and when storage shows it lost writes."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import ClientConnectionError

from devhost.errors import TaskHubError
from devhost.storage_health import StorageHealth, lost_write_code, queue_endpoint, unreachable_reason


class CodedError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(f"HTTP 404 {code}")
        self.code = code


def wrapped(inner: BaseException) -> TaskHubError:
    try:
        raise TaskHubError("receiving failed") from inner
    except TaskHubError as exc:
        return exc


def test_one_line_per_outage_and_recovery_when_back(caplog: pytest.LogCaptureFixture) -> None:
    """A hundred failed polls log one error; the answer after them logs once and runs the recovery."""
    recovered: list[int] = []

    async def scenario() -> StorageHealth:
        health = StorageHealth()

        async def recovery() -> None:
            recovered.append(1)

        health.on_recovery(recovery)
        for _ in range(100):
            assert health.failed(wrapped(ClientConnectionError("Connect call failed")), "receiving")
        assert not health.available and health.failed_calls == 100
        assert not health.failed(ValueError("a bug, not an outage"))
        health.answered()
        await asyncio.sleep(0.05)
        return health

    with caplog.at_level(logging.INFO, logger="devhost.storage"):
        health = asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Storage is unreachable" in m for m in messages) == 1
    assert sum("reachable again" in m and "100 calls failed" in m for m in messages) == 1
    assert health.available and health.outages == 1 and recovered == [1]


def test_lost_writes_start_one_recovery() -> None:
    """QueueNotFound (Azurite lost the hub) drops caches and re-creates the hub; repeats are batched."""
    calls: list[int] = []

    async def scenario() -> None:
        health = StorageHealth()

        async def recovery() -> None:
            calls.append(1)
            await asyncio.sleep(0.05)

        health.on_recovery(recovery)
        for _ in range(20):
            assert health.lost_writes(wrapped(CodedError("QueueNotFound")))
        assert not health.lost_writes(wrapped(CodedError("InstanceNotFound")))
        await asyncio.sleep(0.01)  # the recovery is under way now
        assert health.lost_writes(wrapped(CodedError("TableNotFound")))
        await asyncio.sleep(1.5)

    asyncio.run(scenario())
    assert calls == [1, 1]  # one for the reports before it began, one more for those while it ran


def test_reasons_and_endpoints() -> None:
    assert unreachable_reason(wrapped(ConnectionRefusedError("refused"))) == "refused"
    assert unreachable_reason(ValueError("x")) is None
    assert lost_write_code(wrapped(CodedError("TableNotFound"))) == "TableNotFound"
    assert queue_endpoint("UseDevelopmentStorage=true") == ("127.0.0.1", 10001)
    assert queue_endpoint("AccountName=a;AccountKey=k;QueueEndpoint=http://127.0.0.1:5/a;") == ("127.0.0.1", 5)
    assert queue_endpoint("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=k") == \
        ("acct.queue.core.windows.net", 443)
