"""Random ids (version 4 UUIDs) drawn without a system call.

``uuid.uuid4`` reads ``os.urandom``, and the ``getrandom`` call behind it lets go of the GIL. On the
host's loop thread that is a hazard: while a function runs in the worker's thread pool, the loop then
waits for the GIL again, up to the interpreter's switch interval (5 ms), in the middle of a request or
a checkpoint. These ids need to be unique, not secret, so a generator seeded from ``os.urandom`` once
(and again in a forked child) serves.
"""

from __future__ import annotations

import os
import random
import uuid

_generator = random.Random()
os.register_at_fork(after_in_child=_generator.seed)

_VERSION_4 = ~(0xF000 << 64) & ~(0xC000 << 48)
_VERSION_4_BITS = (0x4000 << 64) | (0x8000 << 48)


def _bits() -> int:
    return (_generator.getrandbits(128) & _VERSION_4) | _VERSION_4_BITS


def uuid4() -> uuid.UUID:
    """A random version 4 UUID, as ``uuid.uuid4`` gives, with the GIL held throughout."""
    return uuid.UUID(int=_bits())


def uuid4_hex() -> str:
    """``uuid4().hex``: 32 lower-case hex digits."""
    return f"{_bits():032x}"


def uuid4_text() -> str:
    """``str(uuid4())`` without building the UUID object: 8-4-4-4-12 lower-case hex digits."""
    h = uuid4_hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
