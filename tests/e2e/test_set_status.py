"""SetStatusTest end to end: progress in the custom status, step by step."""

from __future__ import annotations

from tests.e2e.flows import start, status
from tests.hosts import RunningHost
from tests.http_client import poll


def test_progress_is_visible_step_by_step(host: RunningHost) -> None:
    """A client polling every 100 ms sees the article's first status, then at least two progress states."""
    urls = start(host, "SetStatusTest", {"stepDelaySeconds": 1})
    seen: list[dict] = []

    def record(reply) -> bool:  # type: ignore[no-untyped-def]
        custom = (reply.json or {}).get("customStatus")
        if reply.status == 202 and isinstance(custom, dict) and custom not in seen:
            seen.append(custom)
        return reply.status == 200

    final = poll(lambda: status(urls), record, timeout=30, interval=0.1).json
    assert final["runtimeStatus"] == "Completed"
    # The first status stays for stepDelaySeconds before step A, so a poller must see it.
    assert seen[0] == {"nextActions": ["A", "B", "C"], "foo": 2}, seen
    assert all(s["foo"] == 2 for s in seen)
    intermediate = [s for s in seen if 0 < s.get("progress", 0) < 1]
    assert len(intermediate) >= 2, seen
    assert [s["progress"] for s in intermediate] == sorted(s["progress"] for s in intermediate)
    assert final["customStatus"]["progress"] == 1
    assert final["output"]["completedActions"] == ["A", "B", "C"]
