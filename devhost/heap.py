"""devhost's start-up heap, kept out of the garbage collector's full collections.

Why: a full (generation 2) collection walks every container object Python tracks, and most of devhost's
are made once at start-up and live as long as the host: the modules of aiohttp, the Azure SDKs and the
app, their classes, functions and tables. Each full collection walked them all while every thread of
devhost waited. In W1 one at a time (``python -m bench.critical_path``, 400 flows after 200 warm-up
ones) one came about every ten seconds and stopped devhost for 79-83 ms: the slowest flow of the run.

What it does: once ``devhost start`` has started the host, one collection clears start-up's garbage and
``gc.freeze()`` moves everything left to the permanent generation, which collections skip; later full
collections walk only what was allocated since. A frozen object is never collected as part of a cycle,
so this is done once, for objects that live as long as the process (a restart on file changes starts a
new one), and not for hosts run inside other programs (tests). ``DEVHOST_GC_FREEZE=0`` leaves the
collector as it is.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping

from devhost.config import switched_on

ENV_SWITCH = "DEVHOST_GC_FREEZE"


def freeze_startup_heap(environ: Mapping[str, str] | None = None) -> int:
    """Collect once, then freeze what is left; returns how many objects are frozen (0 when switched off)."""
    if not switched_on(ENV_SWITCH, environ):
        return 0
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
