"""The benchmark's storage call counter: off by default, and each request named by its kind."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from devhost.durable.taskhub import call_counter
from devhost.durable.taskhub.storage_http import Reply

Q = "http://127.0.0.1:10001/devstoreaccount1/hub-control-00"
W = "http://127.0.0.1:10001/devstoreaccount1/hub-workitems"
T = "http://127.0.0.1:10002/devstoreaccount1/"


class FakeTransport:
    """Answers every request with a fixed body (only the counter's own logic is under test here)."""

    def __init__(self, content: bytes = b"") -> None:
        self.content = content

    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes = b"", *,
                   table: bool) -> Reply:
        return Reply(200, {}, self.content)


def test_without_the_variable_the_transport_is_not_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset, ``wrap`` hands back the transport itself: the hot path pays nothing."""
    monkeypatch.delenv(call_counter.ENV_VAR, raising=False)
    transport = FakeTransport()
    assert call_counter.wrap(transport) is transport


@pytest.mark.parametrize(("method", "url", "table", "content", "kind"), [
    ("POST", f"{Q}/messages?messagettl=-1", False, b"", "queue put (control)"),
    ("POST", f"{W}/messages?messagettl=-1", False, b"", "queue put (work items)"),
    ("GET", f"{Q}/messages?numofmessages=32", False, b"<QueueMessagesList></QueueMessagesList>",
     "queue get (control, empty)"),
    ("GET", f"{W}/messages?numofmessages=1", False, b"<QueueMessagesList><QueueMessage>", "queue get (work items, "
                                                                                        "messages)"),
    ("DELETE", f"{Q}/messages/abc?popreceipt=x", False, b"", "queue delete (control)"),
    ("PUT", f"{W}/messages/abc?popreceipt=x&visibilitytimeout=5", False, b"", "queue update visibility (work items)"),
    ("POST", f"{T}$batch", True, b"", "table batch"),
    ("GET", f"{T}hubInstances(PartitionKey='a',RowKey='')", True, b"", "table point read"),
    ("GET", f"{T}hubHistory()?$filter=PartitionKey%20eq%20'a'", True, b"", "table query"),
    ("PATCH", f"{T}hubInstances(PartitionKey='a',RowKey='')", True, b"", "table merge"),
    ("PUT", f"{T}hubInstances(PartitionKey='a',RowKey='')", True, b"", "table upsert (replace)"),
])
def test_each_request_is_named_by_its_kind(method: str, url: str, table: bool, content: bytes, kind: str) -> None:
    """Queue calls by queue kind (and receives by whether they got anything), table calls by operation."""
    assert call_counter.call_kind(method, url, table, Reply(200, {}, content)) == kind


def test_counts_since_start_up_are_written_at_exit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With the variable set, calls are counted, start-up is snapshot, and the file holds both."""
    target = tmp_path / "calls.json"
    monkeypatch.setenv(call_counter.ENV_VAR, str(target))
    monkeypatch.setattr(call_counter, "counts", type(call_counter.counts)())
    monkeypatch.setattr(call_counter, "latency_us", type(call_counter.latency_us)())
    monkeypatch.setattr(call_counter, "_registered", True)  # no atexit hook from a test
    transport = call_counter.wrap(FakeTransport())

    async def calls() -> None:
        await transport.send("POST", f"{T}$batch", {}, table=True)
        call_counter.mark_started()
        await transport.send("POST", f"{T}$batch", {}, table=True)
        await transport.send("DELETE", f"{Q}/messages/a?popreceipt=b", {}, table=False)

    asyncio.run(calls())
    call_counter._write()
    written = json.loads(target.read_text())
    latency = written.pop("latency_us_total")
    assert written == {"startup": {"table batch": 1}, "total": {"table batch": 2, "queue delete (control)": 1}}
    assert set(latency) == {"table batch", "queue delete (control)"} and all(v >= 0 for v in latency.values())
