"""Blocking HTTP helpers for the conformance suite: one `DurableApi` per base path, polling with deadlines.

Standard library only, so what is asserted is exactly what went over the wire: status codes, raw header
values and body bytes. Requests never follow redirects and never add headers of their own beyond
`Content-Type` (when a body is sent) and the ones a test passes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from tests.hosts import RunningHost
from tests.http_client import NO_BODY as _NO_BODY
from tests.http_client import Reply, poll, request

STATUS_FIELDS = ["name", "instanceId", "runtimeStatus", "input", "customStatus", "output", "createdTime",
                 "lastUpdatedTime"]
CHECK_STATUS_FIELDS = ["id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri",
                       "restartPostUri", "suspendPostUri", "resumePostUri"]
STATUS_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
HISTORY_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$")
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
ACTIVE = ("Pending", "Running", "Suspended", "ContinuedAsNew")
TERMINAL = ("Completed", "Failed", "Terminated", "Canceled")


def new_id(prefix: str = "cf") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@dataclass
class DurableApi:
    """The Durable HTTP API under one base: the public webhook path or the RPC path."""

    host: RunningHost
    kind: str  # "webhook" or "rpc"

    @property
    def base(self) -> str:
        if self.kind == "rpc":
            return f"http://127.0.0.1:{self.host.port}/durabletask/"
        return f"{self.host.base_url}/runtime/webhooks/durabletask/"

    @property
    def links_base(self) -> str:
        """Where generated links point: the request's origin plus the public webhook path."""
        origin = f"http://127.0.0.1:{self.host.port}" if self.kind == "rpc" else self.host.base_url
        return f"{origin}/runtime/webhooks/durabletask"

    def url(self, path: str, query: dict[str, Any] | Iterable[tuple[str, Any]] | None = None) -> str:
        url = self.base + path.lstrip("/")
        if query:
            url += "?" + urlencode(query, quote_via=quote)
        return url

    def get(self, path: str, query: Any = None, **kwargs: Any) -> Reply:
        return request("GET", self.url(path, query), **kwargs)

    def post(self, path: str, body: Any = _NO_BODY, query: Any = None, **kwargs: Any) -> Reply:
        if body is _NO_BODY and "raw" not in kwargs:
            kwargs["raw"] = b""
            kwargs.setdefault("content_type", None)
        return request("POST", self.url(path, query), body, **kwargs)

    def delete(self, path: str, query: Any = None, **kwargs: Any) -> Reply:
        return request("DELETE", self.url(path, query), **kwargs)

    # -- instance helpers ---------------------------------------------------------------------
    def start(self, name: str, body: Any = _NO_BODY, instance_id: str | None = None, **kwargs: Any) -> str:
        path = f"orchestrators/{name}" + (f"/{quote(instance_id, safe='')}" if instance_id else "")
        reply = self.post(path, body, **kwargs)
        assert reply.status == 202, reply
        return str(reply.json["id"])

    def status(self, instance_id: str, **query: Any) -> Reply:
        return self.get(f"instances/{quote(instance_id, safe='')}", query or None)

    def wait(self, instance_id: str, until: Callable[[dict[str, Any]], bool], *, timeout: float = 20.0,
             what: str = "status", **query: Any) -> dict[str, Any]:
        def fetch() -> dict[str, Any] | Reply:
            reply = self.status(instance_id, **query)
            return reply.json if reply.status in (200, 202, 500) and reply.body else reply

        return poll(fetch, lambda s: isinstance(s, dict) and until(s), timeout=timeout,
                             what=f"{what} of {instance_id}")

    def wait_status(self, instance_id: str, *statuses: str, timeout: float = 20.0, **query: Any) -> dict[str, Any]:
        return self.wait(instance_id, lambda s: s["runtimeStatus"] in statuses, timeout=timeout,
                         what=f"runtimeStatus in {statuses}", **query)

    def wait_custom(self, instance_id: str, key: str, *, timeout: float = 20.0) -> dict[str, Any]:
        return self.wait(instance_id, lambda s: isinstance(s["customStatus"], dict) and key in s["customStatus"],
                         timeout=timeout, what=f"customStatus with {key!r}")

    def wait_all(self, instance_ids: Iterable[str], *statuses: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        return [self.wait_status(iid, *statuses, timeout=timeout) for iid in instance_ids]

    def waiting_ticket(self, instance_id: str | None = None, user: str = "conformance-user",
                       discount_timeout: int = 600) -> str:
        """A ReserveTicket instance that has shown its discount and now waits for BookingConfirmed."""
        ticket = {"userId": user, "discountTimeout": discount_timeout}
        iid = self.start("ReserveTicket", ticket, instance_id or new_id())
        self.wait_custom(iid, "discount")
        return iid

    def completed_steps(self, instance_id: str | None = None) -> str:
        """A SetStatusTest instance run to completion (no timers between its three steps)."""
        iid = self.start("SetStatusTest", {"stepDelaySeconds": 0}, instance_id or new_id())
        self.wait_status(iid, "Completed")
        return iid

    def failed_city(self, instance_id: str | None = None) -> str:
        """A CityRecommender instance started with an invalid choice, so the orchestrator raised."""
        iid = self.start("CityRecommender", 7, instance_id or new_id())
        self.wait_status(iid, "Failed")
        return iid

    def terminated_ticket(self, instance_id: str | None = None, reason: str = "done") -> str:
        iid = self.waiting_ticket(instance_id)
        assert self.post(f"instances/{iid}/terminate", query={"reason": reason}).status == 202
        self.wait_status(iid, "Terminated")
        return iid


def expected_links(api: DurableApi, instance_id: str) -> dict[str, str]:
    """The §3.3 links (before any `&code=` the host may append), on the request's origin and the public path."""
    prefix = f"{api.links_base}/instances/{instance_id}"
    suffix = f"taskHub={api.host.hub_name}&connection=Storage"
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{prefix}?{suffix}",
        "sendEventPostUri": f"{prefix}/raiseEvent/{{eventName}}?{suffix}",
        "terminatePostUri": f"{prefix}/terminate?reason={{text}}&{suffix}",
        "purgeHistoryDeleteUri": f"{prefix}?{suffix}",
        "restartPostUri": f"{prefix}/restart?{suffix}",
        "suspendPostUri": f"{prefix}/suspend?reason={{text}}&{suffix}",
        "resumePostUri": f"{prefix}/resume?reason={{text}}&{suffix}",
    }


def assert_check_status(api: DurableApi, reply: Reply, instance_id: str) -> dict[str, str]:
    """202, the eight fields in order (no rewindPostUri), `Location` = status URL, `Retry-After: 10`."""
    assert reply.status == 202, reply
    assert reply.header("Content-Type") == JSON_CONTENT_TYPE
    body = reply.json
    assert list(body) == CHECK_STATUS_FIELDS
    for field, value in expected_links(api, instance_id).items():
        assert body[field] == value or body[field].startswith(value + "&code="), (field, body[field])
    assert reply.header("Location") == body["statusQueryGetUri"]
    assert reply.header("Retry-After") == "10"
    return body
