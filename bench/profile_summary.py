"""Summarize py-spy's raw (collapsed-stack) output: top functions by self and cumulative samples, and by area."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
PROJECT = str(Path(__file__).resolve().parent.parent) + "/"
THIRD_PARTY: list[tuple[str, str]] = [  # (prefix after site-packages/, label); first match wins
    ("azure/durable_functions/", "azure-functions-durable SDK"),
    ("azure/functions/", "azure-functions SDK"),
    ("azure/data/tables/", "Azure storage SDKs (tables, queues, blobs)"),
    ("azure/storage/", "Azure storage SDKs (tables, queues, blobs)"),
    ("azure/core/", "azure-core pipeline"),
    ("aiohttp/", "aiohttp"),
    ("multidict/", "multidict/yarl"),
    ("yarl/", "multidict/yarl"),
    ("dateutil/", "dateutil"),
]
DEVHOST: list[tuple[str, str]] = [
    ("devhost/durable/taskhub/", "devhost/durable/taskhub (storage provider)"),
    ("devhost/durable/", "devhost/durable (engine, replay, API)"),
    ("devhost/worker/", "devhost/worker (function invocation)"),
    ("devhost/http/", "devhost/http (server, routes)"),
    ("devhost/", "devhost (other)"),
]
STDLIB: list[tuple[str, str]] = [
    ("asyncio/", "asyncio (event loop)"),
    ("json/", "json"),
    ("logging/", "logging"),
    ("concurrent/", "thread pool (concurrent.futures)"),
    ("threading.py", "thread pool (concurrent.futures)"),
    ("selectors.py", "sockets/selectors"),
    ("socket.py", "sockets/selectors"),
    ("ssl.py", "sockets/selectors"),
]
STDLIB_AREAS = {label for _, label in STDLIB} | {"other stdlib", "import machinery", "other"}


def short(frame: str) -> str:
    """``func (file:line)`` with site-packages and project prefixes removed."""
    match = FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", PROJECT, "lib/python3.11/", "lib/python3.12/", "lib/python3.13/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    line = match.group("line")
    return f"{match.group('func')} ({path}{':' + line if line else ''})"


def area_of(frame: str) -> str:
    match = FRAME.match(frame)
    path = match.group("file") if match else frame
    if "site-packages/" in path:
        inner = path.split("site-packages/", 1)[1]
        return next((label for prefix, label in THIRD_PARTY if inner.startswith(prefix)), "other libraries")
    if path.startswith(PROJECT):
        inner = path[len(PROJECT):]
        return next((label for prefix, label in DEVHOST if inner.startswith(prefix)),
                    "app code (orchestrators, activities, endpoints)")
    if path.startswith("<frozen"):
        return "import machinery"
    if "/lib/python3" in path:
        inner = path.split("/lib/python3", 1)[1].split("/", 1)[-1]
        return next((label for prefix, label in STDLIB if inner.startswith(prefix)), "other stdlib")
    return "other"


def read_stacks(paths: Iterable[Path]) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def summarize(paths: list[Path], *, seconds: float | None = None, rate: int = 250, top: int = 40) -> str:
    stacks = read_stacks(paths)
    total = sum(stacks.values())
    if total == 0:
        return "py-spy recorded no samples.\n"
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    leaf_areas: Counter[str] = Counter()
    owners: Counter[str] = Counter()
    for stack, count in stacks.items():
        leaf = stack[-1]
        own[leaf] += count
        # the area of the innermost frame that is not the standard library's, else the leaf's own area
        areas[_area_for_stack(stack)] += count
        leaf_areas[area_of(leaf)] += count
        owners[_devhost_owner(stack)] += count
        for frame in set(stack):
            cumulative[frame] += count

    def pct(n: int) -> str:
        return f"{100.0 * n / total:5.1f}%"

    lines = [f"py-spy samples (non-idle, {rate} Hz): {total}"]
    if seconds:
        busy = total / (rate * seconds)
        lines.append(f"over {seconds:.1f} s of workload: {busy:.2f} busy threads on average "
                     "(non-idle samples / (rate x seconds); 1.00 = one thread never idle)")
    lines += ["", "== By area of the sampled (innermost) frame ==", ""]
    for label, count in leaf_areas.most_common():
        lines.append(f"{pct(count)}  {count:7d}  {label}")
    lines += ["", "== By area, stdlib time charged to its innermost non-stdlib caller ==", ""]
    for label, count in areas.most_common():
        lines.append(f"{pct(count)}  {count:7d}  {label}")
    lines += ["", "== By the innermost devhost function on the stack (its own time plus the library calls it makes"
              " that are not under another devhost function) ==", ""]
    for frame, count in owners.most_common(top):
        lines.append(f"{pct(count)}  {count:7d}  {short(frame)}")
    lines += ["", f"== Top {top} functions by self time ==", "", "  self%   cum%  function"]
    for frame, count in own.most_common(top):
        lines.append(f"{pct(count)} {pct(cumulative[frame])}  {short(frame)}")
    lines += ["", f"== Top {top} functions by cumulative time ==", "", "   cum%  self%  function"]
    for frame, count in cumulative.most_common(top):
        lines.append(f"{pct(count)} {pct(own[frame])}  {short(frame)}")
    return "\n".join(lines) + "\n"


def _devhost_owner(stack: tuple[str, ...]) -> str:
    for frame in reversed(stack):
        if area_of(frame).startswith("devhost") and not any(
                f"devhost/{name}:" in frame for name in ("host.py", "cli.py", "__main__.py")):
            return frame
    return "(no devhost frame: event loop, thread pool or library callbacks)"


def _area_for_stack(stack: tuple[str, ...]) -> str:
    for frame in reversed(stack):
        area = area_of(frame)
        if area == "devhost (other)" and any(f"devhost/{name} " in frame or f"devhost/{name}:" in frame
                                             for name in ("host.py", "cli.py", "__main__.py")):
            return "asyncio (event loop)"  # reached the loop's entry point: the loop's own work
        if area not in STDLIB_AREAS:
            return area
    return area_of(stack[-1])
