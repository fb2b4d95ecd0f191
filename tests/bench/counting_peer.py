"""A peer runner for the bench's turn-taking tests: each phase's flows take no time and count themselves."""

from __future__ import annotations

import os
from typing import Any

from bench.peers.common import FlowTiming, parse_args, phase_result, serve


def main() -> None:
    parse_args(__doc__ or "")

    def phase(label: str, instances: int, concurrency: int, offset: int) -> dict[str, Any]:
        timings = [FlowTiming((offset + i) / 1000, 0.002, 1) for i in range(instances)]
        result = phase_result(timings, 0.5, concurrency, [], False)
        result["label"] = label
        return result

    serve({"name": "counting", "version": "1", "setup": f"pid {os.getpid()}"}, phase)


if __name__ == "__main__":
    main()
