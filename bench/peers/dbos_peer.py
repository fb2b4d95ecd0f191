"""The W1 ReserveTicket flow on DBOS: SQLite system database in WAL mode, 10 ms notification polling.

Workflow: step ``calculate_discount`` → ``set_event("status", {...discount})`` → ``recv("BookingConfirmed")``
→ return. Client (same process, as DBOS is a library): ``start_workflow``, ``get_event`` until the status
is visible, ``send``, ``get_result``. Runs phases as the bench asks (``bench.peers.common.serve``).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.peers.common import BOOKING_URL, FlowTiming, discount_for, parse_args, run_threaded_phase, serve


def main() -> None:
    args = parse_args(__doc__ or "")
    from dbos import DBOS, DBOSConfig

    logging.disable(logging.INFO)
    database = Path(args.workdir) / "dbos-system.sqlite"
    with sqlite3.connect(database) as connection:  # WAL is a property of the file: set it before DBOS opens it
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    config: DBOSConfig = {
        "name": "bench-reserve-ticket",
        "system_database_url": f"sqlite:///{database}",
        "notification_listener_polling_interval_sec": 0.01,
        "log_level": "WARNING",
        "console_log_level": "WARNING",
    }
    DBOS(config=config)

    @DBOS.step()
    def calculate_discount(user_id: str) -> int:
        return discount_for(user_id)

    @DBOS.workflow()
    def reserve_ticket(user_id: str) -> bool:
        discount = calculate_discount(user_id)
        DBOS.set_event("status", {"discount": discount, "discountTimeout": 60, "bookingUrl": BOOKING_URL})
        confirmed = DBOS.recv("BookingConfirmed", timeout_seconds=60)
        if confirmed is None:
            DBOS.set_event("status", {"outcome": "expired"})
            return False
        DBOS.set_event("status", {"outcome": "confirmed" if confirmed else "declined"})
        return bool(confirmed)

    DBOS.launch()

    def flow(i: int) -> FlowTiming:
        t0 = time.perf_counter()
        handle = DBOS.start_workflow(reserve_ticket, f"user-{i}")
        status: Any = DBOS.get_event(handle.workflow_id, "status", timeout_seconds=60)
        if not isinstance(status, dict) or "discount" not in status:
            raise RuntimeError(f"no discount status for {handle.workflow_id}: {status!r}")
        t1 = time.perf_counter()
        DBOS.send(handle.workflow_id, True, "BookingConfirmed")
        if handle.get_result() is not True:
            raise RuntimeError(f"workflow {handle.workflow_id} did not confirm")
        t2 = time.perf_counter()
        return FlowTiming(t1 - t0, t2 - t1)

    def phase(label: str, instances: int, concurrency: int, offset: int) -> dict[str, Any]:
        return run_threaded_phase(f"DBOS W1 {label}", flow, instances, concurrency, args.time_cap, offset)

    try:
        if args.warmup:
            run_threaded_phase("DBOS W1 warm-up (untimed)", flow, args.warmup, args.warmup_concurrency,
                               args.time_cap, 3_000_000)
        serve({"name": "DBOS", "version": metadata.version("dbos"),
               "setup": f"SQLite system database (journal_mode={mode}), notification_listener_polling_interval_sec"
                        "=0.01; workflows and client threads in one process"}, phase)
    finally:
        DBOS.destroy()

if __name__ == "__main__":
    main()
