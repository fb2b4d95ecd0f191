"""Counts of the hot storage calls by kind, for the benchmark (off unless ``DEVHOST_STORAGE_CALLS_FILE`` is set),
and each call as a span when the benchmark records spans (``devhost.spans``).

The benchmark reports how many Azurite calls one flow costs and which kinds they are. With the
variable set, every request on a hub's hot-call transport is counted by kind (``queue put``,
``table batch``, an empty ``queue get`` apart from one that returned messages, ...), the counts are
snapshot when the host reports Running (``mark_started``), and both are written to that file as JSON
when the process exits, with the summed latency of each kind (``latency_us_total``, start-up
included). With neither set, ``wrap`` returns the transport itself: no cost on the hot path.
"""

from __future__ import annotations

import atexit
import json
import os
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devhost import spans
from devhost.durable.taskhub.storage_http import Reply, Transport

ENV_VAR = "DEVHOST_STORAGE_CALLS_FILE"

counts: Counter[str] = Counter()
# Wall time from sending to the whole reply, summed per kind (microseconds): what each kind of call
# adds to the path that waits for it, event loop delays on both sides included.
latency_us: Counter[str] = Counter()
_startup: dict[str, int] | None = None
_registered = False


def call_kind(method: str, url: str, table: bool, reply: Reply) -> str:
    """A short name for one storage request, from its method and URL (and, for receives, its reply)."""
    path = url.split("?", 1)[0]
    if table:
        if path.endswith("$batch"):
            return "table batch"
        if method == "GET":
            return "table point read" if path.endswith(")") and "(PartitionKey=" in path else "table query"
        return {"PUT": "table upsert (replace)", "PATCH": "table merge", "POST": "table insert",
                "DELETE": "table delete"}.get(method, f"table {method}")
    queue = "work items" if path.rsplit("/messages", 1)[0].endswith("-workitems") else "control"
    if method == "POST":
        return f"queue put ({queue})"
    if method == "GET":
        got = b"<QueueMessage>" in reply.content
        return f"queue get ({queue}, {'messages' if got else 'empty'})"
    if method == "DELETE":
        return f"queue delete ({queue})"
    return f"queue update visibility ({queue})"


class CountingTransport:
    """A ``Transport`` that counts each request it forwards."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes = b"", *,
                   table: bool) -> Reply:
        began = time.monotonic()
        reply = await self.inner.send(method, url, headers, body, table=table)
        kind = call_kind(method, url, table, reply)
        counts[kind] += 1
        latency_us[kind] += round((time.monotonic() - began) * 1e6)
        if spans.on:
            spans.record("storage", f"{kind} {_resource(url)}", began)
        return reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # close() and the like


def _resource(url: str) -> str:
    # The queue or the table row a call names (a row's keys name its instance), without the account.
    path = url.split("?", 1)[0].split("://", 1)[-1]
    return path.split("/", 2)[-1][:160]


def enabled() -> bool:
    return bool(os.environ.get(ENV_VAR))


def wrap(transport: Transport) -> Transport:
    """``transport`` itself, or a counting wrapper when the benchmark asked for counts or spans."""
    global _registered
    if not enabled():
        return CountingTransport(transport) if spans.on else transport
    if not _registered:
        _registered = True
        atexit.register(_write)
    return CountingTransport(transport)


def mark_started() -> None:
    """The calls made so far are start-up's (creating the hub); the rest are the workload's."""
    global _startup
    if enabled():
        _startup = dict(counts)


def _write() -> None:
    target = os.environ.get(ENV_VAR)
    if target:
        Path(target).write_text(json.dumps({"startup": _startup or {}, "total": dict(counts),
                                            "latency_us_total": dict(latency_us)}, indent=1))
