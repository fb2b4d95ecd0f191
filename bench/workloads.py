"""The devhost workloads, driven over HTTP only, as a user's client would.

W1 the ReserveTicket flow (one at a time and with N concurrent clients), W2 per-instance shapes on the
bench app (sequence, fan-out/fan-in, external events), W3 status reads, W4 memory with 1,000 waiting
instances and the time to drain them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.launcher import memory_kib
from bench.peers.common import FlowTiming, phase_result
from bench.stats import Progress, summary_ms

DURABLE = "runtime/webhooks/durabletask"
ACTIVE = ("Pending", "Running")
FINAL = ("Completed", "Failed", "Terminated", "Canceled")
# Seconds between the instance listings W4 uses to watch 1,000 instances: a listing of up to 1,000 rows is
# real work for devhost and even more for Azurite (a table scan), so W4 looks rarely.
LIST_INTERVAL = 3.0


class HostError(RuntimeError):
    pass


@dataclass
class Client:
    """The few HTTP calls the workloads make; counts every request it sends."""

    session: aiohttp.ClientSession
    base: str
    requests: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)  # seconds per request, by kind

    async def _json(self, method: str, path: str, body: Any = None, *, expect: tuple[int, ...] = (200, 202),
                    kind: str = "other") -> Any:
        self.requests += 1
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        began = time.perf_counter()
        async with self.session.request(method, f"{self.base}/{path}", **kwargs) as reply:
            data = await reply.read()
            self.latencies.setdefault(kind, []).append(time.perf_counter() - began)
            if reply.status not in expect:
                raise HostError(f"{method} /{path} answered {reply.status}: {data[:300]!r}")
            return await reply.json(content_type=None) if data else None

    def latency_summary(self) -> dict[str, Any]:
        return {kind: summary_ms(values) for kind, values in self.latencies.items()}

    async def start_reserve_ticket(self, user: Any) -> str:
        """The app's own starter route (an HTTP function using the durable client binding)."""
        reply = await self._json("POST", "api/orchestrators/ReserveTicket", user, expect=(202,),
                                 kind="start (app route)")
        return str(reply["id"])

    async def start(self, orchestrator: str, value: Any) -> str:
        """The built-in Durable HTTP API's start route."""
        reply = await self._json("POST", f"{DURABLE}/orchestrators/{orchestrator}", value, expect=(202,),
                                 kind="start (durable API)")
        return str(reply["id"])

    async def status(self, instance_id: str, query: str = "") -> dict[str, Any]:
        reply = await self._json("GET", f"{DURABLE}/instances/{instance_id}{query}", expect=(200, 202),
                                 kind="status read")
        return dict(reply)

    async def raise_event(self, instance_id: str, name: str, value: Any) -> None:
        await self._json("POST", f"{DURABLE}/instances/{instance_id}/raiseEvent/{name}", value, expect=(202,),
                         kind="raise event")

    async def list_instances(self, query: str) -> list[dict[str, Any]]:
        """All pages of GET /instances?{query}."""
        rows: list[dict[str, Any]] = []
        token = ""
        while True:
            self.requests += 1
            headers = {"x-ms-continuation-token": token} if token else {}
            async with self.session.get(f"{self.base}/{DURABLE}/instances?{query}", headers=headers) as reply:
                if reply.status != 200:
                    raise HostError(f"listing instances answered {reply.status}: {(await reply.read())[:300]!r}")
                rows.extend(await reply.json(content_type=None))
                token = reply.headers.get("x-ms-continuation-token", "")
            if not token:
                return rows


def new_session(limit: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120))


async def poll_until(client: Client, instance_id: str, done: Callable[[dict[str, Any]], bool], interval: float,
                     limit_s: float = 120.0) -> tuple[dict[str, Any], int]:
    """Read the status every ``interval`` s until ``done`` holds; returns it and how many reads it took."""
    deadline = time.perf_counter() + limit_s
    polls = 0
    while True:
        status = await client.status(instance_id)
        polls += 1
        if done(status):
            return status, polls
        if status.get("runtimeStatus") in FINAL:
            raise HostError(f"{instance_id} ended {status.get('runtimeStatus')}: {str(status.get('output'))[:300]}")
        if time.perf_counter() > deadline:
            raise HostError(f"{instance_id}: condition not met within {limit_s} s; last {status}")
        await asyncio.sleep(interval)


def has_discount(status: dict[str, Any]) -> bool:
    custom = status.get("customStatus")
    return isinstance(custom, dict) and "discount" in custom


def is_completed(status: dict[str, Any]) -> bool:
    return status.get("runtimeStatus") == "Completed"


# -- W1 -------------------------------------------------------------------------------------------------
@dataclass
class FlowMarks:
    """When each step of one ReserveTicket flow ended, on ``time.monotonic`` (devhost's spans use it too)."""

    start_sent: float
    start_answered: float
    visible: float  # the read that showed the discount returned
    raise_answered: float
    completed: float  # the read that showed Completed returned
    polls: int


async def reserve_ticket_marks(client: Client, user: str, poll: float) -> FlowMarks:
    """Start, read until the discount shows, raise BookingConfirmed, read until Completed (with ``true``)."""
    sent = time.monotonic()
    instance_id = await client.start_reserve_ticket(user)
    answered = time.monotonic()
    _, polls_a = await poll_until(client, instance_id, has_discount, poll)
    visible = time.monotonic()
    await client.raise_event(instance_id, "BookingConfirmed", True)
    raised = time.monotonic()
    final, polls_b = await poll_until(client, instance_id, is_completed, poll)
    completed = time.monotonic()
    if final.get("output") is not True:
        raise HostError(f"{instance_id} completed with {final.get('output')!r}, expected true")
    return FlowMarks(sent, answered, visible, raised, completed, polls_a + polls_b)


async def reserve_ticket_flow(client: Client, user: str, poll: float) -> FlowTiming:
    marks = await reserve_ticket_marks(client, user, poll)
    return FlowTiming(marks.visible - marks.start_sent, marks.completed - marks.visible, marks.polls)


async def run_pool(label: str, count: int, concurrency: int, time_cap: float,
                   job: Callable[[int], Awaitable[Any]]) -> tuple[list[Any], list[str], float, bool]:
    """Run ``job(i)`` for i < count on ``concurrency`` workers; stop starting new jobs after ``time_cap`` s."""
    progress = Progress(label, count)
    results: list[Any] = []
    errors: list[str] = []
    indexes = iter(range(count))
    began = time.perf_counter()
    capped = False

    async def worker() -> None:
        nonlocal capped
        for i in indexes:
            if time.perf_counter() - began > time_cap:
                capped = True
                return
            try:
                results.append(await job(i))
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:500])
                if len(errors) > 20:
                    return
            progress.advance()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - began
    progress.close("(time cap reached)" if capped else "")
    return results, errors, wall, capped


def chunks(total: int, rounds: int) -> list[tuple[int, int]]:
    """``total`` flows cut into ``rounds`` runs as even as can be: (first index, count) each, none empty."""
    rounds = max(1, min(rounds, total))
    return [(total * r // rounds, total * (r + 1) // rounds - total * r // rounds) for r in range(rounds)]


async def w1_reserve_ticket(base: str, instances: int, concurrency: int, poll: float, time_cap: float,
                            offset: int = 0, rounds: int = 1, between: Callable[[int], None] | None = None
                            ) -> dict[str, Any]:
    """W1's flows on devhost. With ``rounds`` > 1 they run in that many chunks, and ``between(r)`` runs after
    chunk r (the peers' turns, while devhost idles); the figures cover the chunks only, their walls added."""
    label = f"devhost W1 {'one at a time' if concurrency == 1 else f'{concurrency} clients'}, {poll * 1000:g} ms polls"
    async with new_session(max(32, concurrency)) as session:
        client = Client(session, base)
        timings: list[FlowTiming] = []
        errors: list[str] = []
        wall = 0.0
        capped = False
        plan = chunks(instances, rounds)
        for r, (first, count) in enumerate(plan):
            done, failed, took, capped = await run_pool(
                label if len(plan) == 1 else f"{label}, round {r + 1}/{len(plan)}", count, concurrency,
                time_cap - wall, lambda i, first=first: reserve_ticket_flow(client, f"user-{offset + first + i}", poll))
            timings += done
            errors += failed
            wall += took
            if between is not None:
                between(r)
            if capped or len(errors) > 20:
                break
        result = phase_result(timings, wall, concurrency, errors, capped)
        result["chunks"] = len(plan)
        result["http_requests_per_s"] = round(client.requests / wall, 1)
        result["poll_interval_ms"] = poll * 1000
        result["request_latency"] = client.latency_summary()
        return result


# -- W2 -------------------------------------------------------------------------------------------------
async def _history_count(client: Client, instance_id: str, event_type: str) -> int:
    status = await client.status(instance_id, "?showHistory=true&showHistoryOutput=false")
    return sum(1 for e in status.get("historyEvents") or [] if e.get("EventType") == event_type)


async def w2_sequence(base: str, n: int, poll: float, time_cap: float) -> dict[str, Any]:
    async with new_session(8) as session:
        client = Client(session, base)
        t0 = time.perf_counter()
        instance_id = await client.start("Sequence100", n)
        try:
            await poll_until(client, instance_id, is_completed, poll, limit_s=time_cap)
        except HostError:
            done = await _history_count(client, instance_id, "TaskCompleted")
            elapsed = time.perf_counter() - t0
            return {"activities": n, "finished": False, "completed_in_time": done, "elapsed_s": round(elapsed, 2),
                    "activities_per_s": round(done / elapsed, 2)}
        elapsed = time.perf_counter() - t0
        return {"activities": n, "finished": True, "elapsed_s": round(elapsed, 3),
                "activities_per_s": round(n / elapsed, 2)}


async def w2_chains(base: str, steps: int, runs: int, poll: float, time_cap: float) -> dict[str, Any]:
    """``runs`` chains of ``steps`` activities (``Sequence100`` with input ``steps``), one after another.

    A short chain measures devhost's per-step path; in the 100-step chain the SDK's replay of the whole
    history every episode costs more with every step.
    """
    async with new_session(8) as session:
        client = Client(session, base)
        per_chain: list[float] = []
        began = time.perf_counter()
        for _ in range(runs):
            if time.perf_counter() - began > time_cap:
                break
            t0 = time.perf_counter()
            instance_id = await client.start("Sequence100", steps)
            await poll_until(client, instance_id, is_completed, poll, limit_s=time_cap)
            per_chain.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - began
        done = len(per_chain) * steps
        return {"steps": steps, "chains": len(per_chain), "finished": len(per_chain) == runs,
                "elapsed_s": round(elapsed, 3), "activities_per_s": round(done / elapsed, 2),
                "chain": summary_ms(per_chain)}


async def w2_fan_out(base: str, n: int, poll: float, time_cap: float) -> dict[str, Any]:
    async with new_session(8) as session:
        client = Client(session, base)
        t0_wall = time.time()
        t0 = time.perf_counter()
        instance_id = await client.start("FanOutFanIn", n)
        try:
            final, _ = await poll_until(client, instance_id, is_completed, poll, limit_s=time_cap)
        except HostError:
            done = await _history_count(client, instance_id, "TaskCompleted")
            elapsed = time.perf_counter() - t0
            return {"activities": n, "finished": False, "completed_in_time": done, "elapsed_s": round(elapsed, 2),
                    "fan_out_activities_per_s": round(done / elapsed, 2)}
        elapsed = time.perf_counter() - t0
        done_wall = t0_wall + elapsed
        output = final.get("output") or {}
        first, last = float(output["firstRan"]), float(output["lastRan"])
        return {
            "activities": n,
            "finished": True,
            "elapsed_s": round(elapsed, 3),
            # the whole shape: start → all N activities ran → the orchestration saw every result → Completed
            "fan_out_activities_per_s": round(n / elapsed, 2),
            "first_activity_after_s": round(first - t0_wall, 3),
            "last_activity_after_s": round(last - t0_wall, 3),
            # results processed from the moment the first one existed until the orchestration completed
            "fan_in_responses_per_s": round(n / max(done_wall - first, 1e-6), 2),
            "after_last_activity_s": round(done_wall - last, 3),
        }


async def w2_events(base: str, n: int, poll: float, time_cap: float, senders: int = 8) -> dict[str, Any]:
    async with new_session(max(8, senders)) as session:
        client = Client(session, base)
        instance_id = await client.start("EventSink", n)
        await poll_until(client, instance_id, lambda s: s.get("runtimeStatus") == "Running", poll)
        t0 = time.perf_counter()
        _, errors, raise_wall, _ = await run_pool(
            f"devhost W2 raise {n} Ping events", n, senders, time_cap,
            lambda i: client.raise_event(instance_id, "Ping", i))
        if errors:
            raise HostError(f"raising events failed: {errors[:3]}")
        try:
            await poll_until(client, instance_id, is_completed, poll, limit_s=time_cap)
        except HostError:
            done = await _history_count(client, instance_id, "EventRaised")
            elapsed = time.perf_counter() - t0
            return {"events": n, "finished": False, "processed_in_time": done, "elapsed_s": round(elapsed, 2),
                    "events_per_s": round(done / elapsed, 2)}
        elapsed = time.perf_counter() - t0
        return {"events": n, "finished": True, "senders": senders, "elapsed_s": round(elapsed, 3),
                "raised_per_s": round(n / raise_wall, 2), "events_per_s": round(n / elapsed, 2)}


# -- W3 -------------------------------------------------------------------------------------------------
async def w3_status_reads(base: str, clients: int, seconds: float) -> dict[str, Any]:
    async with new_session(max(32, clients)) as session:
        client = Client(session, base)
        ids = [await client.start_reserve_ticket({"userId": f"reader-{i}", "discountTimeout": 3600})
               for i in range(clients)]
        for instance_id in ids:
            await poll_until(client, instance_id, has_discount, 0.02)
        latencies: list[float] = []
        progress = Progress(f"devhost W3 status reads, {clients} clients", int(seconds * 10))
        stop_at = time.perf_counter() + seconds

        async def reader(instance_id: str) -> None:
            while time.perf_counter() < stop_at:
                began = time.perf_counter()
                status = await client.status(instance_id)
                latencies.append(time.perf_counter() - began)
                if not has_discount(status):
                    raise HostError(f"unexpected status {status}")

        async def ticker() -> None:
            while time.perf_counter() < stop_at:
                await asyncio.sleep(0.1)
                progress.set(min(int((seconds - (stop_at - time.perf_counter())) * 10), progress.total))

        began = time.perf_counter()
        await asyncio.gather(ticker(), *(reader(i) for i in ids))
        wall = time.perf_counter() - began
        progress.close()
        for instance_id in ids:
            await client.raise_event(instance_id, "BookingConfirmed", False)
        return {"clients": clients, "seconds": round(wall, 2), "reads": len(latencies),
                "reads_per_s": round(len(latencies) / wall, 1), "latency": summary_ms(latencies)}


# -- W4 -------------------------------------------------------------------------------------------------
async def w4_memory_and_drain(base: str, pid: int, count: int, concurrency: int, time_cap: float) -> dict[str, Any]:
    def mib(kib: int) -> float:
        return round(kib / 1024, 1)

    result: dict[str, Any] = {"instances": count, "concurrency": concurrency}
    result["rss_idle_mib"] = mib(memory_kib(pid)["VmRSS"])
    async with new_session(max(32, concurrency)) as session:
        client = Client(session, base)
        ids: list[str] = []

        async def start(i: int) -> None:
            ids.append(await client.start_reserve_ticket({"userId": f"w4-{i}", "discountTimeout": 3600}))

        _, errors, start_wall, _ = await run_pool(f"devhost W4 start {count}", count, concurrency, time_cap,
                                                       start)
        if errors:
            raise HostError(f"starting failed: {errors[:3]}")
        result["starts_per_s"] = round(len(ids) / start_wall, 1)
        # All of them waiting for their event: the custom status with the discount is visible.
        began = time.perf_counter()
        progress = Progress(f"devhost W4 {len(ids)} reach waiting", len(ids))
        waiting = 0
        while time.perf_counter() - began < time_cap:
            rows = await client.list_instances("runtimeStatus=Running&top=1000&showInput=false")
            waiting = sum(1 for row in rows if has_discount(row))
            progress.set(waiting)
            if waiting >= len(ids):
                break
            await asyncio.sleep(LIST_INTERVAL)
        progress.close()
        result["waiting"] = waiting
        result["all_waiting"] = waiting >= count
        result["waiting_after_s"] = round(time.perf_counter() - began + start_wall, 2)  # from the first start
        result["waiting_after_last_start_s"] = round(time.perf_counter() - began, 2)
        result["rss_waiting_mib"] = mib(memory_kib(pid)["VmRSS"])
        # Confirm all of them, then time until every confirmed one is Completed.
        t0 = time.perf_counter()
        confirmed: set[str] = set()

        async def confirm(i: int) -> None:
            await client.raise_event(ids[i], "BookingConfirmed", True)
            confirmed.add(ids[i])

        _, errors, raise_wall, _ = await run_pool(f"devhost W4 confirm {len(ids)}", len(ids), concurrency, time_cap,
                                                  confirm)
        if errors:
            raise HostError(f"raising events failed: {errors[:3]}")
        result["confirmed"] = len(confirmed)
        result["raises_per_s"] = round(len(confirmed) / raise_wall, 1)
        progress = Progress(f"devhost W4 drain {len(confirmed)}", len(confirmed))
        completed = 0
        while time.perf_counter() - t0 < raise_wall + time_cap:
            # the instances not completed yet: a listing that shrinks as the drain goes on
            rows = await client.list_instances("runtimeStatus=Pending,Running&top=1000&showInput=false")
            open_confirmed = sum(1 for row in rows if row.get("instanceId") in confirmed)
            completed = len(confirmed) - open_confirmed
            progress.set(completed)
            if open_confirmed == 0:
                break
            await asyncio.sleep(LIST_INTERVAL)
        drain = time.perf_counter() - t0
        progress.close()
        result["completed"] = completed
        result["drained"] = completed >= len(confirmed)
        # from the first confirmation until a listing showed every confirmed instance Completed
        result["drain_s"] = round(drain, 2)
        result["drain_per_s"] = round(completed / drain, 1)
        result["list_interval_s"] = LIST_INTERVAL
        memory = memory_kib(pid)
        result["rss_after_drain_mib"] = mib(memory["VmRSS"])
        result["rss_peak_mib"] = mib(memory["VmHWM"])
        return result
