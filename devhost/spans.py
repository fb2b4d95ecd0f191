"""Timed spans of devhost's work, for the benchmark's critical-path breakdown (off unless ``DEVHOST_SPANS_FILE``
is set).

``python -m bench.critical_path`` sets the variable, runs ReserveTicket flows one at a time and lines the
spans up with each flow's client timestamps: HTTP requests, storage calls, episodes, their commits and
function invocations. Times come from ``time.monotonic``, the clock the bench's client reads as well
(on Linux one ``CLOCK_MONOTONIC`` serves every process), so both sides can be compared.

Unset, ``on`` stays False and the hooks skip recording: the hot path pays one attribute test. Set, at most
``MAX_SPANS`` spans are kept (the oldest are dropped) and written as JSON lines
(``[began, ended, kind, name]``) when the process exits.
"""

from __future__ import annotations

import atexit
import json
import os
import time
from collections import deque
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ENV_VAR = "DEVHOST_SPANS_FILE"
MAX_SPANS = 200_000  # a few thousand flows; a long session keeps its latest spans only

on = False
_spans: deque[tuple[float, float, str, str]] = deque(maxlen=MAX_SPANS)
_target: Path | None = None


def start(environ: Mapping[str, str] = os.environ) -> None:
    """Record from now on when the environment names a file, and write it when the process exits."""
    global on, _target
    target = environ.get(ENV_VAR, "").strip()
    if not target or on:
        return
    _target = Path(target)
    on = True
    atexit.register(write)


def record(kind: str, name: str, began: float) -> None:
    """One span that began at ``began`` (``time.monotonic()``) and ends now."""
    if on:
        _spans.append((began, time.monotonic(), kind, name))


async def timed(kind: str, name: str, work: Awaitable[T]) -> T:
    """Await ``work`` as one span (callers test ``on`` first, so that nothing wraps it otherwise)."""
    began = time.monotonic()
    try:
        return await work
    finally:
        record(kind, name, began)


def write() -> None:
    """Write the spans kept so far to the file the environment named."""
    if _target is None:
        return
    with _target.open("w", encoding="utf-8") as out:
        for span in _spans:
            out.write(json.dumps(span) + "\n")


def read(path: Path) -> list[tuple[float, float, str, str]]:
    """The spans a devhost wrote, in the order they began."""
    spans = []
    for line in path.read_text(encoding="utf-8").splitlines():
        began, ended, kind, name = json.loads(line)
        spans.append((float(began), float(ended), str(kind), str(name)))
    spans.sort()
    return spans


def stop() -> None:
    """Stop recording and forget what was kept (tests)."""
    global on, _target
    on = False
    _target = None
    _spans.clear()
