"""What each kind of storage call devhost makes costs, and how that grows with what Azurite holds.

``python -m bench.storage_calls_cost [--calls N] [--repeats R] [--backlog M] [--rows K] [--only KINDS]
[--variant NAME:KEY=VALUE;...] [--gap-ms G]``

Starts a temporary Azurite (``bench.launcher.start_azurite``: as devhost starts it, in its disk mode),
opens a task hub on it as devhost does (its transport, its codec, its event loop) and makes N calls of
each kind one after another, through the hub's own methods with W1-sized payloads:

- queue put (visible, and invisible for an hour as a durable timer), get (one message, and empty),
  update visibility, delete;
- a history checkpoint (one ``$batch``: 1, 4 or 10 rows plus the sentinel), an Instances merge
  (``update_instance``), a whole-row upsert (``write_instance(replace=True)``), a point read.

For each kind: the latency p50 (each call timed on its own), this process's CPU per call
(``time.process_time``: devhost's side, signing, encoding and parsing included) and Azurite's
(``/proc/<pid>/stat``), each the least over R repeats (load only adds). Then again with M messages
waiting invisible in another queue (W4 leaves one timer message per waiting instance) and K more rows in
the tables, to show what grows with what Azurite holds.

``--variant`` adds an Azurite and a hub started with other environment settings, measured interleaved
with the default ones kind by kind (so machine load hits both alike): ``untuned:DEVHOST_AZURITE_TUNING=0``
compares with Azurite without devhost's fixes (``devhost/azurite_tuning.py``),
``aiohttp:DEVHOST_STORAGE_CLIENT=aiohttp`` with the hub's calls on aiohttp instead of its own client.

``--gap-ms`` leaves G idle milliseconds before each timed call. Back to back, each call finds the cores
warm; in W1 one at a time, every call comes after a moment in which its process waited, and on these
virtual machines a core that has been idle for a millisecond or two runs the next work slower.

Sequential on purpose: it isolates each side's cost per call. The figures are for comparing forms of a
call or ways of starting Azurite on this machine, not absolute truths.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bench.launcher import cpu_seconds, environment, memory_kib, start_azurite, stop_azurite
from devhost.azurite import AzuriteProcess
from devhost.durable.history import EventType, OrchestrationStatus, format_timestamp, utcnow
from devhost.durable.taskhub.azure_storage import AzureStorageTaskHub
from devhost.durable.taskhub.base import InstanceRow, InstanceUpdate, OutboundMessage, ReceivedMessage
from devhost.event_loop import loop_factory

HOUR = 3600.0


def _ts() -> str:
    return format_timestamp(utcnow())


def _started(instance_id: str) -> dict[str, Any]:
    """ExecutionStarted as the client sends it for ReserveTicket."""
    return {
        "EventType": int(EventType.ExecutionStarted), "EventId": -1, "IsPlayed": False, "Timestamp": _ts(),
        "OrchestrationInstance": {"InstanceId": instance_id, "ExecutionId": uuid.uuid4().hex},
        "Name": "ReserveTicket", "Version": "", "Input": '{"userId":"user-42","discountTimeout":3600}',
        "Tags": None, "Correlation": None, "ParentTraceContext": None, "ScheduledStartTime": None,
        "Generation": 0,
    }


def _episode_events(instance_id: str, rows: int) -> list[dict[str, Any]]:
    """``rows`` history events like the ones of W1's first episode (started, scheduled, ...)."""
    events = [
        {"EventType": int(EventType.OrchestratorStarted), "EventId": -1, "IsPlayed": False, "Timestamp": _ts()},
        _started(instance_id),
        {"EventType": int(EventType.TaskScheduled), "EventId": 0, "IsPlayed": False, "Timestamp": _ts(),
         "Name": "CalculateDiscount", "Version": "", "Input": '"user-42"', "Tags": None},
        {"EventType": int(EventType.OrchestratorCompleted), "EventId": -1, "IsPlayed": False, "Timestamp": _ts()},
    ]
    while len(events) < rows:
        n = len(events)
        events.insert(-1, {"EventType": int(EventType.TaskCompleted), "EventId": -1, "IsPlayed": False,
                           "Timestamp": _ts(), "TaskScheduledId": n, "Result": '{"discount":0.15,"code":"X1"}'})
    return events[:rows]


def _row(instance_id: str) -> InstanceRow:
    now = utcnow()
    return InstanceRow(instance_id=instance_id, name="ReserveTicket", execution_id=uuid.uuid4().hex,
                       runtime_status=OrchestrationStatus.Pending, input='{"userId":"user-42"}',
                       created_time=now, last_updated_time=now)


def _update() -> InstanceUpdate:
    return InstanceUpdate(runtime_status=OrchestrationStatus.Running, last_updated_time=utcnow(),
                          custom_status='{"discount":0.15,"offerExpires":"2026-12-01T00:00:00Z"}')


@dataclass
class Figures:
    """One kind's figures over the repeats (least of each: load only adds)."""

    p50_ms: list[float] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)
    azurite_ms: list[float] = field(default_factory=list)

    def best(self) -> dict[str, float]:
        return {"p50_ms": round(min(self.p50_ms), 3), "client_cpu_ms": round(min(self.client_ms), 3),
                "azurite_cpu_ms": round(min(self.azurite_ms), 3)}


class Bench:
    """One hub on one Azurite; ``measure`` times N calls of one kind.

    The calls go to the first control queue and the work-item queue (emptied before each kind); the
    backlog of the second condition waits in the second control queue.
    """

    def __init__(self, hub: AzureStorageTaskHub, azurite_pid: int, calls: int, gap: float = 0.0) -> None:
        self.hub = hub
        self.pid = azurite_pid
        self.calls = calls
        self.gap = gap  # seconds of idle before each timed call
        self.control, self.backlog_queue = hub.control_queue_names[:2]
        self.work_items = hub.work_item_queue_name

    async def measure(self, prepare: Callable[[], Awaitable[Any]], call: Callable[[int], Awaitable[Any]],
                      figures: Figures) -> None:
        await self._clear(self.control)
        await self._clear(self.work_items)
        await prepare()
        await call(-1)  # warm-up: first use of a path, connection set-up
        latencies: list[float] = []
        azurite0 = cpu_seconds(self.pid)
        client = 0.0
        for i in range(self.calls):
            if self.gap:
                await asyncio.sleep(self.gap)
            began, cpu = time.perf_counter(), time.process_time()  # the sleep's own CPU is not the call's
            await call(i)
            client += time.process_time() - cpu
            latencies.append(time.perf_counter() - began)
        azurite = cpu_seconds(self.pid) - azurite0
        figures.p50_ms.append(statistics.median(latencies) * 1000)
        figures.client_ms.append(client * 1000 / self.calls)
        figures.azurite_ms.append(azurite * 1000 / self.calls)

    async def _clear(self, queue: str) -> None:
        await self.hub._queue_clients[queue].clear_messages()

    # -------------------------------------------------------------------------------------- queues
    def _instance_for(self, queue: str) -> str:
        while True:  # an id of the control queue ``queue`` (ids are spread over the queues by hash)
            instance_id = uuid.uuid4().hex
            if self.hub.control_queue_name(instance_id) == queue:
                return instance_id

    def _message(self, queue: str, *, delay: float | None = None) -> OutboundMessage:
        to_work_items = queue == self.work_items
        instance_id = uuid.uuid4().hex if to_work_items else self._instance_for(queue)
        visible_at = utcnow() + timedelta(seconds=delay) if delay else None
        return OutboundMessage(_started(instance_id), instance_id, None, to_work_items=to_work_items,
                               visible_at=visible_at)

    def queue_kinds(self) -> dict[str, tuple[Callable[[], Awaitable[Any]], Callable[[int], Awaitable[Any]]]]:
        hub = self.hub
        held: list[ReceivedMessage] = []
        # Built before the timed loop (index i + 1: the warm-up call is i = -1), so the loop times the
        # storage call alone: encoding, signing, the request and reading the reply.
        outbound: list[OutboundMessage] = []

        async def nothing() -> None:
            pass

        async def messages() -> None:
            outbound[:] = [self._message(self.work_items) for _ in range(self.calls + 1)]

        async def timers() -> None:
            outbound[:] = [self._message(self.control, delay=HOUR) for _ in range(self.calls + 1)]

        async def fill() -> None:
            await asyncio.gather(*(hub.send([self._message(self.work_items)]) for _ in range(self.calls + 1)))

        async def fill_and_receive() -> None:
            await fill()
            held.clear()
            while len(held) < self.calls + 1:
                held.extend(await hub.receive(self.work_items, 32, HOUR))

        async def put(i: int) -> None:
            await hub.send([outbound[i + 1]])

        async def get_one(_: int) -> None:
            got = await hub.receive(self.work_items, 1, HOUR)
            assert len(got) == 1, got

        async def get_empty(_: int) -> None:
            got = await hub.receive(self.control, 32, 30)
            assert not got, got

        async def update(i: int) -> None:
            await hub.set_visibility(held[i], HOUR)

        async def delete(i: int) -> None:
            await hub.delete(held[i])

        return {
            "queue put": (messages, put),
            "queue put (timer, 1 h)": (timers, put),
            "queue get (1 message)": (fill, get_one),
            "queue get (empty)": (nothing, get_empty),
            "queue update visibility": (fill_and_receive, update),
            "queue delete": (fill_and_receive, delete),
        }

    # -------------------------------------------------------------------------------------- tables
    def table_kinds(self) -> dict[str, tuple[Callable[[], Awaitable[Any]], Callable[[int], Awaitable[Any]]]]:
        hub = self.hub
        ids: list[str] = []
        episodes: list[tuple[str, list[dict[str, Any]]]] = []  # built before the timed loop, as above
        rows: list[InstanceRow] = []
        updates: list[InstanceUpdate] = []

        def events(count: int) -> Callable[[], Awaitable[None]]:
            async def build() -> None:
                instances = [uuid.uuid4().hex for _ in range(self.calls + 1)]
                episodes[:] = [(i, _episode_events(i, count)) for i in instances]
            return build

        async def checkpoint(i: int) -> None:
            instance_id, history = episodes[i + 1]
            await hub.append_history(instance_id, uuid.uuid4().hex, 0, history, None)

        async def nothing() -> None:
            pass

        async def new_rows() -> None:
            ids[:] = [uuid.uuid4().hex for _ in range(self.calls + 1)]
            rows[:] = [_row(i) for i in ids]

        async def new_updates() -> None:
            if len(ids) < self.calls + 1:  # the upsert kind was left out: write the rows to merge into
                await new_rows()
                await asyncio.gather(*(hub.write_instance(row, replace=True) for row in rows))
            updates[:] = [_update() for _ in range(self.calls + 1)]

        async def upsert(i: int) -> None:
            await hub.write_instance(rows[i + 1], replace=True)

        async def merge(i: int) -> None:
            await hub.update_instance(ids[i + 1], updates[i + 1])

        async def point_read(i: int) -> None:
            row = await hub.get_instance(ids[i])
            assert row is not None

        return {
            "table batch (1 row + sentinel)": (events(1), checkpoint),
            "table batch (4 rows + sentinel)": (events(4), checkpoint),
            "table batch (10 rows + sentinel)": (events(10), checkpoint),
            "table upsert (replace)": (new_rows, upsert),
            "table merge": (new_updates, merge),
            "table point read": (new_updates, point_read),
        }

    async def load(self, backlog: int, rows: int) -> None:
        """``backlog`` invisible timer messages in a control queue and ``rows`` more rows in the tables."""
        hub = self.hub
        for start in range(0, backlog, 50):
            await asyncio.gather(*(hub.send([self._message(self.backlog_queue, delay=HOUR)])
                                   for _ in range(min(50, backlog - start))))
        per_instance = 8
        instances = rows // (per_instance + 1)

        async def one() -> None:
            instance_id = uuid.uuid4().hex
            await hub.append_history(instance_id, uuid.uuid4().hex, 0, _episode_events(instance_id, per_instance),
                                     None)
            await hub.write_instance(_row(instance_id), replace=True)

        for start in range(0, instances, 25):
            await asyncio.gather(*(one() for _ in range(min(25, instances - start))))


@dataclass
class Variant:
    """One Azurite, started with extra environment settings (none: as devhost starts it)."""

    name: str
    env: dict[str, str]
    azurite: AzuriteProcess | None = None
    hub: AzureStorageTaskHub | None = None
    bench: Bench | None = None


def start_variant(variant: Variant) -> None:
    with environment(variant.env):
        variant.azurite = start_azurite()


Results = dict[str, dict[str, dict[str, dict[str, float]]]]  # condition -> kind -> variant -> figures


async def run(variants: list[Variant], calls: int, repeats: int, backlog: int, rows: int,
              only: set[str], gap: float = 0.0) -> Results:
    """Every kind on every variant, the variants interleaved call kind by call kind (load hits all alike)."""
    results: Results = {}
    try:
        for variant in variants:
            assert variant.azurite is not None
            with environment(variant.env):  # settings the hub reads (DEVHOST_STORAGE_CLIENT) apply too
                variant.hub = AzureStorageTaskHub(variant.azurite.connection_string, f"cost{uuid.uuid4().hex[:8]}",
                                                  2)
            await variant.hub.create_if_not_exists()
            variant.bench = Bench(variant.hub, variant.azurite.process.pid, calls, gap)
        conditions = [("empty", 0, 0)]
        if backlog or rows:
            conditions.append((f"{backlog} invisible messages, {rows} more rows", backlog, rows))
        for label, add_backlog, add_rows in conditions:
            kinds: dict[str, dict[str, Any]] = {}
            for variant in variants:
                assert variant.bench is not None
                if add_backlog or add_rows:
                    await variant.bench.load(add_backlog, add_rows)
                kinds[variant.name] = {**variant.bench.queue_kinds(), **variant.bench.table_kinds()}
            names = [k for k in kinds[variants[0].name] if not only or any(o in k for o in only)]
            figures = {kind: {v.name: Figures() for v in variants} for kind in names}
            for _ in range(repeats):
                for kind in names:
                    for variant in variants:
                        assert variant.bench is not None
                        prepare, call = kinds[variant.name][kind]
                        await variant.bench.measure(prepare, call, figures[kind][variant.name])
            results[label] = {kind: {name: f.best() for name, f in by.items()} for kind, by in figures.items()}
            _print(label, results[label], [v.name for v in variants])
            for variant in variants:
                assert variant.azurite is not None
                memory = memory_kib(variant.azurite.process.pid)
                print(f"Azurite {variant.name}: RSS {memory['VmRSS'] // 1024} MiB, peak {memory['VmHWM'] // 1024} MiB")
    finally:
        for variant in variants:
            if variant.hub is not None:
                await variant.hub.delete_if_exists()
                await variant.hub.close()
    return results


def _print(label: str, figures: dict[str, dict[str, dict[str, float]]], names: list[str]) -> None:
    print(f"\n{label}: per call, least over the repeats")
    print(f"{'kind':<34} {'variant':<12} {'p50 ms':>8} {'devhost CPU ms':>15} {'Azurite CPU ms':>15}")
    for kind, by in figures.items():
        for i, name in enumerate(names):
            f = by[name]
            print(f"{kind if i == 0 else '':<34} {name:<12} {f['p50_ms']:8.2f} {f['client_cpu_ms']:15.3f} "
                  f"{f['azurite_cpu_ms']:15.3f}")


def _variant(text: str) -> Variant:
    name, _, settings = text.partition(":")
    env = dict(item.split("=", 1) for item in settings.split(";") if item)
    return Variant(name, env)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.storage_calls_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100, help="calls of each kind per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=1000, help="invisible messages for the second condition")
    parser.add_argument("--rows", type=int, default=9000, help="more table rows for the second condition")
    parser.add_argument("--only", default="", help="comma-separated substrings of the kinds to run")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE;...",
                        help="also an Azurite started with these environment settings, e.g. "
                             "untuned:DEVHOST_AZURITE_TUNING=0 (repeatable)")
    parser.add_argument("--gap-ms", type=float, default=0.0,
                        help="idle milliseconds before each timed call (W1's calls come after idle moments)")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()
    variants = [Variant("devhost", {}), *(_variant(v) for v in args.variant)]
    try:
        for variant in variants:
            start_variant(variant)
        only = {o.strip() for o in args.only.split(",") if o.strip()}
        # devhost's own event loop (uvloop when installed): the client CPU per call is devhost's.
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            results = runner.run(run(variants, args.calls, args.repeats, args.backlog, args.rows, only,
                                         args.gap_ms / 1000))
    finally:
        for variant in variants:
            if variant.azurite is not None:
                stop_azurite(variant.azurite)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
