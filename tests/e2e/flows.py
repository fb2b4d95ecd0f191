"""Steps the e2e tests share: start a sample, follow its status URL, wait for a stage."""

from __future__ import annotations

from typing import Any

from tests.hosts import RunningHost
from tests.http_client import Reply, poll, request

ACTIVE = {"Pending", "Running", "Suspended", "ContinuedAsNew"}


def start(host: RunningHost, name: str, payload: Any) -> dict[str, Any]:
    """Start ``name`` through the app's starter and return its check-status payload."""
    reply = request("POST", host.api(f"orchestrators/{name}"), payload)
    assert reply.status == 202, reply.body
    assert reply.header("Location") == reply.json["statusQueryGetUri"]
    return reply.json


def status(urls: dict[str, Any]) -> Reply:
    return request("GET", urls["statusQueryGetUri"])


def wait_for_status(urls: dict[str, Any], predicate: Any, timeout: float = 20.0) -> dict[str, Any]:
    """Poll the built-in status API until ``predicate(body)`` holds; return that body."""
    reply = poll(lambda: status(urls), lambda r: r.status in (200, 202) and bool(predicate(r.json)),
                 timeout=timeout)
    return reply.json


def wait_for_custom(urls: dict[str, Any], key: str, timeout: float = 20.0) -> dict[str, Any]:
    """Wait until the custom status has ``key`` while the instance is still running (HTTP 202)."""
    reply = poll(lambda: status(urls),
                 lambda r: r.status == 202 and isinstance((r.json or {}).get("customStatus"), dict)
                 and key in r.json["customStatus"], timeout=timeout)
    assert reply.json["runtimeStatus"] == "Running"
    return reply.json


def wait_until_finished(urls: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    reply = poll(lambda: status(urls), lambda r: r.status == 200, timeout=timeout)
    assert reply.json["runtimeStatus"] not in ACTIVE
    return reply.json
