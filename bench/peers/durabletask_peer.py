"""The W1 ReserveTicket flow on Microsoft's durabletask SDK with its in-memory backend (no persistence).

``durabletask.testing`` runs a real gRPC sidecar backend in this process; a ``TaskHubGrpcWorker`` and an
``AsyncTaskHubGrpcClient`` talk to it over loopback. The orchestration mirrors the app's: activity →
``set_custom_status`` → ``when_any(timer, wait_for_external_event)``. Client: schedule, poll
``get_orchestration_state`` until the custom status holds the discount, ``raise_orchestration_event``,
poll again until the instance has finished. Nothing is stored durably, so this is an upper reference. Runs
phases as the bench asks (``bench.peers.common.serve``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Generator
from datetime import timedelta
from importlib import metadata
from typing import Any

from bench.peers.common import BOOKING_URL, FlowTiming, discount_for, parse_args, phase_result, serve
from bench.stats import Progress


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_phase(label: str, address: str, instances: int, concurrency: int, poll: float, time_cap: float,
                    offset: int) -> dict[str, Any]:
    from durabletask.client import AsyncTaskHubGrpcClient, OrchestrationStatus

    client = AsyncTaskHubGrpcClient(host_address=address)
    finished = {OrchestrationStatus.COMPLETED, OrchestrationStatus.FAILED, OrchestrationStatus.TERMINATED}
    progress = Progress(label, instances)
    timings: list[FlowTiming] = []
    errors: list[str] = []
    pending = iter(range(instances))
    began = time.perf_counter()
    capped = False

    async def flow(i: int) -> FlowTiming:
        polls = 0
        t0 = time.perf_counter()
        instance_id = await client.schedule_new_orchestration("reserve_ticket", input=f"user-{offset + i}")
        while True:
            state = await client.get_orchestration_state(instance_id, fetch_payloads=True)
            polls += 1
            custom = state.serialized_custom_status if state is not None else None
            if custom and "discount" in json.loads(custom):
                break
            await asyncio.sleep(poll)
        t1 = time.perf_counter()
        await client.raise_orchestration_event(instance_id, "BookingConfirmed", data=True)
        # Polled as devhost's client polls. The backend's server-side wait (wait_for_orchestration_completion)
        # holds one of its gRPC server's 10 threads per waiting flow: with 32 clients on a slow machine, ten
        # waits leave no thread to take the completions they wait for, and every flow stalls until its deadline.
        deadline = t1 + 60
        while True:
            state = await client.get_orchestration_state(instance_id, fetch_payloads=False)
            polls += 1
            if state is not None and state.runtime_status in finished:
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{instance_id} did not complete within 60 s: {state}")
            await asyncio.sleep(poll)
        if state.runtime_status != OrchestrationStatus.COMPLETED:
            raise RuntimeError(f"{instance_id} did not complete: {state}")
        return FlowTiming(t1 - t0, time.perf_counter() - t1, polls)

    async def worker() -> None:
        nonlocal capped
        for i in pending:
            if time.perf_counter() - began > time_cap:
                capped = True
                return
            try:
                timings.append(await flow(i))
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                if len(errors) > 20:
                    return
            progress.advance()

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await client.close()
    wall = time.perf_counter() - began
    progress.close()
    return phase_result(timings, wall, concurrency, errors, capped)


def main() -> None:
    args = parse_args(__doc__ or "")
    from durabletask import task
    from durabletask.testing import create_test_backend
    from durabletask.worker import TaskHubGrpcWorker

    logging.disable(logging.INFO)  # the SDK logs every wait and completion at INFO
    port = free_port()
    address = f"localhost:{port}"
    backend = create_test_backend(port=port)
    quiet = logging.getLogger("bench.durabletask")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    worker = TaskHubGrpcWorker(host_address=address, logger=quiet)

    def calculate_discount(ctx: task.ActivityContext, user_id: str) -> int:
        return discount_for(user_id)

    def reserve_ticket(ctx: task.OrchestrationContext, user_id: str) -> Generator[task.Task[Any], Any, bool]:
        discount = yield ctx.call_activity(calculate_discount, input=user_id)
        ctx.set_custom_status({"discount": discount, "discountTimeout": 60, "bookingUrl": BOOKING_URL})
        timer = ctx.create_timer(timedelta(seconds=60))
        confirmation = ctx.wait_for_external_event("BookingConfirmed")
        winner = yield task.when_any([timer, confirmation])
        if winner is timer:
            ctx.set_custom_status({"outcome": "expired"})
            return False
        ctx.set_custom_status({"outcome": "confirmed"})
        return bool(confirmation.get_result())

    worker.add_orchestrator(reserve_ticket)
    worker.add_activity(calculate_discount)
    worker.start()
    poll = args.poll_ms / 1000.0

    def phase(label: str, instances: int, concurrency: int, offset: int) -> dict[str, Any]:
        return asyncio.run(run_phase(f"durabletask W1 {label}", address, instances, concurrency, poll,
                                     args.time_cap, offset))

    try:
        if args.warmup:
            asyncio.run(run_phase("durabletask W1 warm-up (untimed)", address, args.warmup, args.warmup_concurrency,
                                  poll, args.time_cap, 3_000_000))
        serve({"name": "durabletask", "version": metadata.version("durabletask"),
               "setup": "durabletask.testing in-memory backend (gRPC on loopback), worker and asyncio client in one"
                        f" process; status polled every {args.poll_ms:g} ms; no persistence"}, phase)
    finally:
        worker.stop()
        backend.stop()

if __name__ == "__main__":
    main()
