"""The benchmark's spans: off unless asked for, bounded, written as JSON lines, storage calls among them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from devhost import spans
from devhost.durable.taskhub import call_counter
from devhost.durable.taskhub.storage_http import Reply


@pytest.fixture(autouse=True)
def no_spans_after() -> Iterator[None]:
    yield
    spans.stop()


class Answering:
    """A transport that answers every request at once (only the recording is under test)."""

    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes = b"", *,
                   table: bool) -> Reply:
        return Reply(201, {}, b"")


def test_nothing_is_recorded_without_the_variable(tmp_path: Path) -> None:
    """Without DEVHOST_SPANS_FILE, start leaves recording off and record keeps nothing."""
    spans.start({})
    spans.record("request", "GET /", time.monotonic())
    assert not spans.on
    assert not spans._spans


def test_spans_are_written_as_json_lines_and_read_back_in_order(tmp_path: Path) -> None:
    """Each span is [began, ended, kind, name]; reading sorts them by when they began."""
    target = tmp_path / "spans.jsonl"
    spans.start({spans.ENV_VAR: str(target)})
    late = time.monotonic()
    spans.record("commit", "instance-b", late)
    spans.record("episode", "instance-a", late - 0.5)
    spans.write()
    read = spans.read(target)
    assert [(kind, name) for _, _, kind, name in read] == [("episode", "instance-a"), ("commit", "instance-b")]
    assert all(ended >= began for began, ended, _, _ in read)


def test_what_is_kept_is_bounded() -> None:
    """A long session keeps its latest MAX_SPANS spans, never more."""
    assert spans._spans.maxlen == spans.MAX_SPANS


def test_storage_calls_are_spans_when_recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With spans on, the hub's transport is wrapped even without call counts, and a call is named by kind
    and resource."""
    monkeypatch.delenv(call_counter.ENV_VAR, raising=False)
    spans.start({spans.ENV_VAR: str(tmp_path / "spans.jsonl")})
    transport = call_counter.wrap(Answering())
    url = "http://127.0.0.1:10001/devstoreaccount1/hub-control-00/messages?messagettl=-1"
    asyncio.run(transport.send("POST", url, {}, b"<QueueMessage/>", table=False))
    [(_, _, kind, name)] = list(spans._spans)
    assert (kind, name) == ("storage", "queue put (control) hub-control-00/messages")


def test_a_timed_awaitable_is_one_span_even_when_it_fails(tmp_path: Path) -> None:
    """``timed`` records the span whether the work returns or raises, and passes either on."""
    spans.start({spans.ENV_VAR: str(tmp_path / "spans.jsonl")})

    async def fails() -> None:
        raise ValueError("no")

    async def scenario() -> None:
        assert await spans.timed("commit", "ok", asyncio.sleep(0, result=7)) == 7
        with pytest.raises(ValueError):
            await spans.timed("commit", "failed", fails())

    asyncio.run(scenario())
    assert [name for _, _, _, name in spans._spans] == ["ok", "failed"]
