"""The Durable HTTP API: one handler for ``/runtime/webhooks/durabletask/`` and the RPC path ``/durabletask/``.

Status codes, headers and bodies follow the extension's ``HttpApiHandler``. Where the extension
changed over time, this follows the current (3.x) behaviour: an active instance id given to start
answers 409, a start of an unknown orchestrator is accepted and the instance then fails, purging an
active instance answers 412.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web

from devhost.durable.client import DurableClient, InstanceExists
from devhost.durable.client_binding import DEFAULT_CONNECTION, management_urls
from devhost.durable.entities.api import handle_entities
from devhost.durable.history import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    OrchestrationStatus,
    parse_timestamp,
    parse_token,
    utcnow,
)
from devhost.durable.hub_clients import HubClients
from devhost.durable.status import history_events, status_object
from devhost.durable.taskhub.base import InstanceQuery, InstanceRow

log = logging.getLogger("devhost.durable")

JSON_TYPE = "application/json; charset=utf-8"
CONTINUATION_HEADER = "x-ms-continuation-token"
Handler = Callable[["Call"], Awaitable[web.StreamResponse]]


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Newtonsoft-style compact JSON with nulls written."""
    try:
        body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        # Stored text with a lone surrogate cannot be UTF-8: escaped as \ud800, every other row still shows.
        body = json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    # The encoded body and its Content-Type given at once: aiohttp then neither encodes it again nor
    # rebuilds the header twice (as setting content_type and charset afterwards would).
    all_headers = {**headers, "Content-Type": JSON_TYPE} if headers else {"Content-Type": JSON_TYPE}
    return web.Response(status=status, body=body, headers=all_headers)


def empty(status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, headers=headers)


def error(status: int, message: str, exception_message: str | None = None,
          exception_type: str = "System.ArgumentException") -> web.Response:
    body: dict[str, Any] = {"Message": message}
    if exception_message is not None:
        body.update({"ExceptionMessage": exception_message, "ExceptionType": exception_type, "StackTrace": None})
    return json_response(body, status)


def server_error(exception_message: str) -> web.Response:
    return error(500, "Something went wrong while processing your request", exception_message,
                 "System.InvalidOperationException")


def query_values(request: web.Request) -> dict[str, str]:
    """Query values by lower-cased name; repeated names joined with commas, as NameValueCollection does."""
    values: dict[str, str] = {}
    for key, value in request.query.items():
        lowered = key.lower()
        values[lowered] = f"{values[lowered]},{value}" if lowered in values else value
    return values


class Call:
    """One API request: decoded path segments and case-insensitive query values."""

    def __init__(self, request: web.Request, segments: list[str], query: dict[str, str], client: DurableClient,
                 connection: str) -> None:
        self.request = request
        self.segments = segments
        self.query = query
        self.client = client
        self.hub_name = client.hub.name
        self.connection = connection
        self.required_query = ""  # the webhook URL's query (code=<system key>), carried by the links

    def text(self, name: str) -> str | None:
        return self.query.get(name.lower())

    def flag(self, name: str, default: bool) -> bool:
        value = self.text(name)
        if value is None or value.strip().lower() not in ("true", "false"):
            return default  # bool.TryParse failing means "not supplied"
        return value.strip().lower() == "true"

    def number(self, name: str) -> float | None:
        value = self.text(name)
        try:
            number = float(value) if value is not None else None
        except ValueError:
            return None
        return number if number is not None and math.isfinite(number) else None

    def time(self, name: str) -> datetime | None:
        value = self.text(name)
        if not value:
            return None
        try:
            return parse_timestamp(value)
        except ValueError:
            return None

    def statuses(self) -> list[OrchestrationStatus]:
        statuses: list[OrchestrationStatus] = []
        for part in (self.text("runtimeStatus") or "").split(","):
            part = part.strip()
            if part in OrchestrationStatus.__members__:
                statuses.append(OrchestrationStatus[part])  # names are case-sensitive, as Enum.TryParse is here
            elif part.lstrip("-").isdigit():
                with contextlib.suppress(ValueError):
                    statuses.append(OrchestrationStatus(int(part)))
        return statuses

    def check_status_links(self, instance_id: str) -> dict[str, str]:
        """The API's own check-status response: 8 fields, links on the request's host, no rewind link."""
        base = f"{self.request.scheme}://{self.request.host}/runtime/webhooks/durabletask"
        links = management_urls(base, instance_id, self.hub_name, self.connection, self.required_query)
        links.pop("rewindPostUri")
        return links


def api_segments(tail: str) -> list[str]:
    """The path after the API base as the extension routes it: the whole path decoded first, then split
    (so an encoded ``/`` separates segments and a ``+`` is a space)."""
    return [s for s in unquote_plus(tail).split("/") if s]


class DurableApi:
    """Routes API requests to the client of the task hub they name (the app's by default)."""

    def __init__(self, clients: HubClients) -> None:
        self.clients = clients
        self.required_query = ""  # set by the host when keys are checked: code=<system key>

    async def handle(self, request: web.Request, tail: str, *, rpc: bool) -> web.StreamResponse:
        """Serve one request; ``tail`` is the still-encoded path after the API base (decoded here, once)."""
        if not rpc and request.method not in ("GET", "POST", "DELETE"):
            return empty(405)  # the host's webhook route takes these three methods only
        # The current extension runs WebUtility.UrlDecode over the whole path before it matches its route
        # templates: `+` is a space, and an encoded `/` splits segments as a plain one would.
        segments = api_segments(tail)
        query = query_values(request)
        hub_name = query.get("taskhub", "").strip() or self.clients.app_hub_name
        connection = query.get("connection") or DEFAULT_CONNECTION
        try:
            client = self.clients.client_for(hub_name)
        except ValueError as exc:
            return error(400, "One or more of the arguments submitted is incorrect", str(exc))
        call = Call(request, segments, query, client, connection)
        call.required_query = self.required_query
        try:
            return await self.route(call)
        except InstanceExists as exc:
            return json_response({"Message": str(exc)}, 409)

    async def route(self, call: Call) -> web.StreamResponse:
        segs = call.segments
        first = segs[0].lower() if segs else ""
        method = call.request.method
        if first == "orchestrators" and len(segs) in (2, 3):
            return await self.start(call, segs[1], segs[2] if len(segs) == 3 else None) if method == "POST" \
                else empty(404)
        if first == "entities" and len(segs) <= 3:
            return await handle_entities(call)
        if first == "makeprimary" and len(segs) == 1:
            return empty(200)
        if first != "instances" or len(segs) > 4:
            return empty(404)
        if len(segs) == 1:
            if method == "GET":
                return await self.list_instances(call)
            if method == "DELETE":
                return await self.purge_by_filter(call)
            return empty(404)
        instance_id = segs[1]
        if len(segs) == 2:
            if method == "GET":
                return await self.get_status(call, instance_id)
            if method == "DELETE":
                return await self.purge(call, instance_id)
            return empty(404)
        operation = segs[2].lower()
        if method != "POST":
            return empty(404)
        if operation == "raiseevent":
            return await self.raise_event(call, instance_id, segs[3]) if len(segs) == 4 else empty(404)
        if len(segs) != 3:
            return empty(404)
        handlers: dict[str, Callable[[Call, str], Awaitable[web.StreamResponse]]] = {
            "terminate": self.terminate, "suspend": self.suspend, "resume": self.resume,
            "rewind": self.rewind, "restart": self.restart,
        }
        handler = handlers.get(operation)
        return await handler(call, instance_id) if handler else empty(404)

    # -- start ---------------------------------------------------------------------------------
    async def start(self, call: Call, name: str, instance_id: str | None) -> web.StreamResponse:
        raw = await call.request.read()
        input_text: str | None = None
        if raw:
            text = raw.decode("utf-8-sig", errors="replace")
            try:
                json.loads(text)
            except json.JSONDecodeError as exc:
                return error(400, "Invalid JSON content", str(exc), "Newtonsoft.Json.JsonReaderException")
            input_text = text  # current: the body text is the ExecutionStarted input as sent
        new_id = await call.client.start(name, instance_id, input_text)
        return await self.check_status_or_wait(call, new_id)

    async def check_status_or_wait(self, call: Call, instance_id: str) -> web.StreamResponse:
        timeout = call.number("timeout")
        interval = call.number("pollingInterval")
        if timeout is not None and interval is not None:
            if interval > timeout:
                return error(400, "One or more of the arguments submitted is incorrect",
                             "pollingInterval must not be greater than timeout")
            row = await call.client.wait_for_terminal(instance_id, timeout)
            if row is not None:
                if row.runtime_status == OrchestrationStatus.Completed:
                    return json_response(parse_token(row.output), 200)
                return self.status_response(call, row, None)
        links = call.check_status_links(instance_id)
        return json_response(links, 202, {"Location": links["statusQueryGetUri"], "Retry-After": "10"})

    # -- status --------------------------------------------------------------------------------
    def status_response(self, call: Call, row: InstanceRow, history: list[dict[str, Any]] | None) -> web.Response:
        body = status_object(row, show_input=call.flag("showInput", True), history=history)
        status = row.runtime_status
        if status in ACTIVE_STATUSES:
            return json_response(body, 202, {"Location": str(call.request.url), "Retry-After": "5"})
        if status == OrchestrationStatus.Failed and call.flag("returnInternalServerErrorOnFailure", False):
            return json_response(body, 500)
        if status in TERMINAL_STATUSES:
            return json_response(body, 200)
        return json_response(body, 500)

    async def get_status(self, call: Call, instance_id: str) -> web.StreamResponse:
        show_input = call.flag("showInput", True)
        row = await call.client.get(instance_id, fetch_input=show_input)
        if row is None:
            return empty(404)
        history = None
        if call.flag("showHistory", False) and row.runtime_status != OrchestrationStatus.Pending:
            events = await call.client.history(instance_id)
            history = history_events(events, show_input=show_input,
                                     show_output=call.flag("showHistoryOutput", False))
        return self.status_response(call, row, history)

    async def list_instances(self, call: Call) -> web.StreamResponse:
        top = call.number("top")
        query = InstanceQuery(
            runtime_status=call.statuses(), created_from=call.time("createdTimeFrom"),
            created_to=call.time("createdTimeTo"), instance_id_prefix=call.text("instanceIdPrefix") or None,
            top=int(top) if top and top > 0 else 100,
            continuation=call.request.headers.get(CONTINUATION_HEADER) or None,
            fetch_input=call.flag("showInput", True),
        )
        rows, token = await call.client.query(query)
        body = []
        for row in rows:
            try:
                body.append(status_object(row, show_input=query.fetch_input))
            except Exception as exc:  # one row that cannot be rendered must not take the listing down
                log.warning("Instance '%s' left out of a listing: its row cannot be rendered (%s)",
                            row.instance_id, exc)
        return json_response(body, 200, {CONTINUATION_HEADER: token or ""})

    # -- purge ---------------------------------------------------------------------------------
    async def purge(self, call: Call, instance_id: str) -> web.StreamResponse:
        row = await call.client.get(instance_id, fetch_input=False)
        if row is None:
            return empty(404)
        if row.runtime_status not in TERMINAL_STATUSES:
            return json_response(
                "Only orchestrations in a terminal state can be purged, but the orchestration with instance ID "
                f"{instance_id} has status {row.runtime_status.name}", 412)
        deleted = await call.client.purge(instance_id)
        return json_response({"instancesDeleted": 1 if deleted else 0}, 200)

    async def purge_by_filter(self, call: Call) -> web.StreamResponse:
        created_from = call.time("createdTimeFrom")
        if created_from is None:
            return json_response("Please provide value for 'createdTimeFrom' parameter.", 400)
        query = InstanceQuery(runtime_status=call.statuses(), created_from=created_from,
                              created_to=call.time("createdTimeTo") or utcnow(), top=500, fetch_input=False)
        deleted = 0
        while True:
            rows, token = await call.client.query(query)
            for row in rows:
                if await call.client.purge(row.instance_id):
                    deleted += 1
            if not token:
                break
            query.continuation = token
        if deleted == 0:
            return empty(404)
        return json_response({"instancesDeleted": deleted}, 200)

    # -- instance operations -------------------------------------------------------------------------
    async def _active_row(self, call: Call, instance_id: str) -> InstanceRow | web.Response:
        row = await call.client.get(instance_id, fetch_input=False)
        if row is None:
            return empty(404)
        if row.runtime_status in TERMINAL_STATUSES:
            return empty(410)
        return row

    async def raise_event(self, call: Call, instance_id: str, event_name: str) -> web.StreamResponse:
        row = await self._active_row(call, instance_id)
        if isinstance(row, web.Response):
            return row
        if call.request.content_type.lower() != "application/json":
            return json_response({"Message": "Only application/json request content is supported"}, 400)
        text = (await call.request.read()).decode("utf-8-sig", errors="replace")
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            return error(400, "Invalid JSON content", str(exc) or "empty body",
                         "Newtonsoft.Json.JsonReaderException")
        await call.client.raise_event(row, event_name, text.strip())
        return empty(202)

    async def terminate(self, call: Call, instance_id: str) -> web.StreamResponse:
        row = await self._active_row(call, instance_id)
        if isinstance(row, web.Response):
            return row
        await call.client.terminate(row, call.text("reason"))
        return empty(202)

    async def suspend(self, call: Call, instance_id: str) -> web.StreamResponse:
        row = await self._active_row(call, instance_id)
        if isinstance(row, web.Response):
            return row
        if row.runtime_status == OrchestrationStatus.Suspended:
            return server_error(f"Cannot suspend orchestration instance {instance_id}: it is already suspended.")
        await call.client.suspend(row, call.text("reason"))
        return empty(202)

    async def resume(self, call: Call, instance_id: str) -> web.StreamResponse:
        row = await self._active_row(call, instance_id)
        if isinstance(row, web.Response):
            return row
        if row.runtime_status != OrchestrationStatus.Suspended:
            return server_error(f"Cannot resume orchestration instance {instance_id}: it is not suspended "
                                f"(status {row.runtime_status.name}).")
        await call.client.resume(row, call.text("reason"))
        return empty(202)

    async def rewind(self, call: Call, instance_id: str) -> web.StreamResponse:
        row = await call.client.get(instance_id, fetch_input=False)
        if row is None:
            return json_response(f'No orchestration with instance ID "${instance_id}" found.', 404)
        if row.runtime_status != OrchestrationStatus.Failed:
            return json_response(
                f'This orchestration has status {row.runtime_status.name}, but only orchestrations in the "Failed" '
                "state can be rewound.", 412)
        await call.client.rewind(row, call.text("reason"))
        return empty(202)

    async def restart(self, call: Call, instance_id: str) -> web.StreamResponse:
        row = await call.client.get(instance_id)
        if row is None:
            return error(400, "InstanceId does not match a valid orchestration instance.",
                         f"An orchestrastion with the instanceId {instance_id} was not found.")
        new_id = None if call.flag("restartWithNewInstanceId", True) else instance_id
        try:
            started = await call.client.start(row.name, new_id, row.input)
        except InstanceExists:
            return error(409, "A non-terminal instance with this instance ID already exists.",
                         f"An Orchestration instance with the status {row.runtime_status.name} already exists.",
                         "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException")
        return await self.check_status_or_wait(call, started)
