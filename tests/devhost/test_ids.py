"""The host's random ids: version 4 UUIDs in each form the host writes, drawn without a system call."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import pytest

from devhost import ids


@pytest.mark.parametrize(("draw", "text_of"), [
    (lambda: str(ids.uuid4()), str),
    (ids.uuid4_text, str),
    (ids.uuid4_hex, lambda parsed: parsed.hex),
])
def test_ids_are_version_4_uuids_that_differ(draw: Callable[[], str], text_of: Callable[[uuid.UUID], str]) -> None:
    """Each form parses as an RFC 4122 version 4 UUID and reads back as the text drawn; 1,000 draws differ."""
    drawn = {draw() for _ in range(1000)}
    assert len(drawn) == 1000
    for text in drawn:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert text_of(parsed) == text


def test_ids_make_no_system_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drawing an id never reads os.urandom, whose system call would let go of the host loop's GIL."""
    def refuse(size: int) -> bytes:
        raise AssertionError("os.urandom was called")

    monkeypatch.setattr(os, "urandom", refuse)
    ids.uuid4()
    ids.uuid4_text()
    ids.uuid4_hex()


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    """The generator is seeded again in a forked child, so parent and child never share ids."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write_end, ids.uuid4_hex().encode())
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != ids.uuid4_hex()
